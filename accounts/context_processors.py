from django.conf import settings

from accounts.selectors import workspaces_for_user

# The side menu's section for pages whose view does not name one (their URL name decides).
NAV_BY_URL_NAME = {
    "billing_plan": "plan",
    "billing_plan_cancel": "plan",
    "workspace_detail": "members",
    "dashboard": "workspaces",
    "tokens": "tokens",
}


def workspaces(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"my_workspaces": workspaces_for_user(user=user)}


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
    return context
