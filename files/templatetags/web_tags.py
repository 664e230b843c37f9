"""Template helpers of the dashboard pages."""

from django import template

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
