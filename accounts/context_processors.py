from django.conf import settings
from django.utils.functional import SimpleLazyObject

from accounts.selectors import workspaces_for_user

# The side menu's section for pages whose view does not name one (their URL name decides). The
# account pages of allauth (e-mail, password, two-factor) belong under Settings.
NAV_BY_URL_NAME = {
    "billing_plan": "plan",
    "billing_plan_cancel": "plan",
    "workspace_detail": "members",
    "dashboard": "workspaces",
    "tokens": "tokens",
    "account_email": "settings",
    "account_change_password": "settings",
    "account_set_password": "settings",
    "account_reset_password": "settings",
    "account_reset_password_done": "settings",
    "account_reauthenticate": "settings",
    "account_email_verification_sent": "settings",
    "mfa_index": "settings",
    "mfa_reauthenticate": "settings",
    "mfa_activate_totp": "settings",
    "mfa_deactivate_totp": "settings",
    "mfa_view_recovery_codes": "settings",
    "mfa_generate_recovery_codes": "settings",
}

MANAGER_ROLES = ("owner", "admin")


def workspaces(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"my_workspaces": workspaces_for_user(user=user)}


def _menu_workspace(user, last_workspace: str):
    """The workspace whose sections the side menu lists on pages of no workspace: the last one
    opened, else the personal one. The menu keeps one shape on every page (Files, Trash, Plan...
    are never missing on Settings or an account page)."""
    choices = list(workspaces_for_user(user=user))
    chosen = next((w for w in choices if str(w.pk) == last_workspace), None)
    chosen = chosen or next((w for w in choices if w.kind == "personal"), None) or (choices[0] if choices else None)
    if chosen is not None:
        chosen.permission = "manage" if chosen.role in MANAGER_ROLES else ""
    return chosen


def site(request) -> dict:
    """The product name, the side menu's current section, and the workspace last opened.

    The workspace picker shows the last workspace on pages that belong to no workspace (Settings,
    Shared with me), instead of falling back to "Choose…"."""
    context = {"site_name": settings.SITE_NAME}
    match = getattr(request, "resolver_match", None)
    if match is not None:
        context["nav"] = NAV_BY_URL_NAME.get(match.url_name, "")
        session = getattr(request, "session", None)
        workspace_id = match.kwargs.get("workspace_id")
        if session is not None and workspace_id is not None:
            if session.get("last_workspace") != str(workspace_id):
                session["last_workspace"] = str(workspace_id)
        context["last_workspace"] = session.get("last_workspace", "") if session is not None else ""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        last = context.get("last_workspace", "")
        # Lazy: only pages without a workspace of their own read it.
        context["menu_workspace"] = SimpleLazyObject(lambda: _menu_workspace(user, last))
    return context
