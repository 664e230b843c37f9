"""Dashboard page for a workspace's owners and admins: every public link (with last access and a
revoke button), the link policy, and the activity log. Plain forms, no script needed."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.selectors import workspaces_for_user
from cloudstorage.errors import ServiceError
from files.access import link_get_for_user, links_mark_creator_access, workspace_get_for_user
from files.activity import node_path
from files.links import link_policy_get, link_policy_update, link_revoke, link_state, links_for_workspace
from files.models import Activity

PAGE_ROWS = 200


def _managed(request: HttpRequest, workspace_id):
    """The workspace if the caller is one of its owners or admins: 404 to outsiders, 403 to others."""
    try:
        return workspace_get_for_user(user=request.user, workspace_id=workspace_id, need="manage")
    except ServiceError as error:
        raise PermissionDenied(error.message) from error


def _days(raw: str) -> int | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise ServiceError(code="invalid", message="Days and downloads are whole numbers (or empty).", status_code=400)
    return int(raw)


@login_required
def workspace_links_page(request: HttpRequest, workspace_id) -> HttpResponse:
    workspace = _managed(request, workspace_id)
    show_revoked = request.GET.get("revoked") == "1"
    links = links_mark_creator_access(
        links=list(links_for_workspace(workspace=workspace, include_revoked=show_revoked)[:PAGE_ROWS])
    )
    for link in links:
        link.state = link_state(link=link)
        link.path = node_path(node=link.node)
    context = {
        "workspace": workspace,
        "my_workspaces": workspaces_for_user(user=request.user),
        "nav": "links",
        "links": links,
        "show_revoked": show_revoked,
        "policy": link_policy_get(workspace_id=workspace.pk),
        "activity": Activity.objects.filter(workspace=workspace).select_related("actor")[:PAGE_ROWS],
    }
    return render(request, "files/workspace_links.html", context)


@login_required
@require_POST
def workspace_link_revoke(request: HttpRequest, workspace_id, link_id) -> HttpResponse:
    workspace = _managed(request, workspace_id)
    link = link_get_for_user(user=request.user, link_id=link_id)
    if link.workspace_id != workspace.pk:
        raise Http404
    if link_revoke(actor=request.user, link=link):
        messages.success(request, f"The link to “{link.node.name}” no longer works.")
    else:
        messages.info(request, f"The link to “{link.node.name}” was already switched off.")
    return redirect("files_links", workspace_id=workspace.pk)


@login_required
@require_POST
def workspace_link_policy(request: HttpRequest, workspace_id) -> HttpResponse:
    workspace = _managed(request, workspace_id)
    try:
        link_policy_update(
            actor=request.user,
            workspace=workspace,
            default_expiry_days=_days(request.POST.get("default_expiry_days")),
            max_expiry_days=_days(request.POST.get("max_expiry_days")),
            password_required=request.POST.get("password_required") == "on",
            default_max_downloads=_days(request.POST.get("default_max_downloads")),
        )
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Link policy saved.")
    return redirect("files_links", workspace_id=workspace.pk)
