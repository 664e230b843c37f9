"""Template helpers of the dashboard pages."""

from django import template
from django.conf import settings
from django.utils.html import format_html

from files.web import pricing_context

register = template.Library()


@register.simple_tag
def pricing() -> dict:
    """Price per GB and plan bounds from the billing settings, for the landing page."""
    ctx = pricing_context()
    cents = ctx["price_per_gb_cents"]
    ctx["min_price_cents"] = cents * ctx["min_gb"]
    ctx["max_price_cents"] = cents * ctx["max_gb"]
    return ctx


@register.simple_tag
def site_name() -> str:
    """The product name, for e-mails (rendered without a request, so without context processors)."""
    return settings.SITE_NAME


# Activity as the people reading it say it (the log stores short codes).
ACTIVITY_WORDS = {
    "copied": "copied",
    "copy": "copied",
    "create_folder": "created a folder",
    "delete": "moved to the trash",
    "delete_version": "deleted a version",
    "link_access": "opened a public link",
    "link_create": "created a public link",
    "link_download": "downloaded through a public link",
    "link_policy": "changed the link policy",
    "link_revoke": "switched off a public link",
    "link_upload": "uploaded through a public link",
    "moved": "moved",
    "pin": "pinned a version",
    "unpin": "unpinned a version",
    "purge": "deleted forever",
    "restore": "restored from the trash",
    "restore_version": "restored an earlier version",
    "share": "shared",
    "share_change": "changed a share",
    "unshare": "stopped sharing",
    "upload": "uploaded",
}


@register.filter
def activity_words(verb: str) -> str:
    return ACTIVITY_WORDS.get(verb, verb.replace("_", " "))


@register.filter
def when(value) -> str:
    """A date in the one format of the dashboard: the script rewrites it in the reader's locale
    (relative for the last day); without script the UTC time stays readable."""
    if not value:
        return ""
    return format_html(
        '<time datetime="{}" data-local>{} UTC</time>', value.isoformat(), value.strftime("%d %b %Y, %H:%M")
    )
