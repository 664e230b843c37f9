"""Browser pages of the dashboard: the file browser, shared with me, trash, search, usage, settings.

The pages are server-rendered shells: Django decides who may open a page (through files.access, as
every view does) and renders the frame; the page's scripts (static/js/) then talk to the REST API
with the session cookie and the CSRF header, so the dashboard and API clients share one contract.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET, require_http_methods

from accounts.selectors import workspaces_for_user
from billing.plans import MAX_PAID_GB, MIN_PAID_GB
from files.access import (
    node_ancestor_ids,
    node_get_for_user,
    node_permission,
    workspace_get_for_user,
    workspace_permission,
)
from files.models import Node
from files.previews import preview_response, thumbnail_response
from files.trash import trash_retention
from files.vault_rules import vault_of


def app_context(request: HttpRequest, workspace, **extra) -> dict:
    """What every app page needs: the current workspace (for the switcher and the side menu)."""
    return {"workspace": workspace, "my_workspaces": workspaces_for_user(user=request.user), **extra}


def _root_of(workspace) -> Node:
    return Node.objects.get(workspace=workspace, parent__isnull=True)


@login_required
def files_home(request: HttpRequest) -> HttpResponse:
    """/app/files/: the personal workspace's root folder (the first workspace otherwise)."""
    workspaces = list(workspaces_for_user(user=request.user))
    if not workspaces:
        return redirect("dashboard")
    personal = next((w for w in workspaces if getattr(w, "kind", "") == "personal"), workspaces[0])
    return redirect("files_workspace", workspace_id=personal.pk)


@login_required
def workspace_switch(request: HttpRequest) -> HttpResponse:
    """The workspace switcher's form target (works without JavaScript)."""
    workspace = workspace_get_for_user(user=request.user, workspace_id=request.GET.get("workspace", ""))
    return redirect("files_workspace", workspace_id=workspace.pk)


@login_required
def workspace_files(request: HttpRequest, workspace_id) -> HttpResponse:
    workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
    return redirect("files_folder", workspace_id=workspace.pk, folder_id=_root_of(workspace).pk)


def _breadcrumbs(*, user, folder: Node) -> list[Node]:
    """The folder's ancestors the caller may see, root first.

    A member sees the whole chain; someone with a share sees it from the shared folder down, so the
    names of folders above a share are not revealed."""
    ids = node_ancestor_ids(node=folder)
    nodes = {n.pk: n for n in Node.objects.filter(pk__in=ids)}
    chain = [nodes[i] for i in reversed(ids) if i in nodes]
    visible = []
    for node in reversed(chain):
        visible.append(node)
        if node.parent_id is not None and node_permission(user=user, node=nodes[node.parent_id]) is None:
            break
    return list(reversed(visible))


@login_required
def folder_page(request: HttpRequest, workspace_id, folder_id) -> HttpResponse:
    folder = node_get_for_user(user=request.user, node_id=folder_id)
    if folder.workspace_id != workspace_id:
        raise Http404
    if not folder.is_folder:
        return redirect("files_folder", workspace_id=workspace_id, folder_id=folder.parent_id)
    vault = vault_of(node=folder)
    if vault is not None:  # its files are ciphertext: only the vault page can show them
        return redirect(f"{reverse('files_vault', args=[vault.node_id])}?folder={folder.pk}")
    member_permission = workspace_permission(user=request.user, workspace_id=workspace_id)
    is_member = member_permission is not None
    folder.workspace.permission = member_permission  # the side menu shows managers' sections
    crumbs = _breadcrumbs(user=request.user, folder=folder)
    return render(
        request,
        "files/browser.html",
        app_context(
            request,
            folder.workspace if is_member else None,
            nav="files" if is_member else "shared",  # someone else's folder, reached through a share
            folder=folder,
            crumbs=crumbs,
            picker_root=crumbs[0],
            can_edit=folder.permission in ("edit", "manage"),
            tus_threshold=settings.DASHBOARD_TUS_THRESHOLD,
            tus_chunk=settings.DASHBOARD_TUS_CHUNK,
            upload_parallel=settings.DASHBOARD_UPLOAD_PARALLEL,
        ),
    )


@login_required
def node_open(request: HttpRequest, node_id) -> HttpResponse:
    """Where a node lives in the dashboard: a folder's page, or a file's folder when the caller may
    see that folder (a file shared alone opens its preview)."""
    node = node_get_for_user(user=request.user, node_id=node_id)
    if node.is_folder:
        return redirect("files_folder", workspace_id=node.workspace_id, folder_id=node.pk)
    parent = Node.objects.filter(pk=node.parent_id).first()
    if parent is not None and node_permission(user=request.user, node=parent) is not None:
        return redirect("files_folder", workspace_id=node.workspace_id, folder_id=parent.pk)
    return redirect("files_preview", node_id=node.pk)


@login_required
def shared_page(request: HttpRequest) -> HttpResponse:
    return render(request, "files/shared.html", app_context(request, None, nav="shared"))


@login_required
def trash_page(request: HttpRequest, workspace_id) -> HttpResponse:
    workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
    return render(
        request,
        "files/trash.html",
        app_context(
            request,
            workspace,
            nav="trash",
            trash_days=trash_retention().days,
            can_edit=workspace.permission in ("edit", "manage"),
            can_manage=workspace.permission == "manage",
        ),
    )


@login_required
def search_page(request: HttpRequest, workspace_id) -> HttpResponse:
    workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
    return render(
        request, "files/search.html", app_context(request, workspace, nav="search", q=request.GET.get("q", ""))
    )


@login_required
def starred_page(request: HttpRequest) -> HttpResponse:
    """The caller's starred files and folders, in every workspace."""
    return render(request, "files/starred.html", app_context(request, None, nav="starred"))


@login_required
def recent_page(request: HttpRequest, workspace_id) -> HttpResponse:
    """The files changed most recently, newest first (the search API, ordered by time)."""
    workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
    return render(request, "files/recent.html", app_context(request, workspace, nav="recent"))


@login_required
def usage_page(request: HttpRequest, workspace_id) -> HttpResponse:
    workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
    return render(request, "files/usage.html", app_context(request, workspace, nav="usage"))


@login_required
def settings_page(request: HttpRequest) -> HttpResponse:
    from accounts.models import ApiToken
    from accounts.second_factor import user_has_second_factor

    context = app_context(request, None, nav="settings")
    context["two_factor_on"] = user_has_second_factor(user=request.user)
    # Every live token with its last use, so a token nobody recognises can be revoked from here.
    context["tokens"] = ApiToken.objects.filter(user=request.user, revoked_at__isnull=True).order_by("-created_at")
    return render(request, "files/settings.html", context)


@login_required
@require_http_methods(["GET", "HEAD"])
@xframe_options_sameorigin
def file_preview(request: HttpRequest, node_id) -> HttpResponse:
    """A file's current content for the preview pane (files.previews says which types and how).

    The download endpoint of the API sends attachments; a preview needs the browser to render the
    bytes in an <img>, <video> or <iframe> of our own page, hence this small same-origin view."""
    node = node_get_for_user(user=request.user, node_id=node_id)
    if not node.is_file or node.current_version_id is None:
        raise Http404
    if vault_of(node=node) is not None:
        return HttpResponse("Vault files are previewed on the vault's page.", status=415, content_type="text/plain")
    return preview_response(request, node)


@login_required
@require_GET
def file_thumbnail(request: HttpRequest, node_id) -> HttpResponse:
    """A file's thumbnail for the grid and the details panel; 404 while the worker has made none."""
    node = node_get_for_user(user=request.user, node_id=node_id)
    if not node.is_file:
        raise Http404
    return thumbnail_response(node)


def pricing_context() -> dict:
    return {
        "price_per_gb_cents": settings.BILLING_PRICE_PER_GB_CENTS,
        "currency": settings.BILLING_CURRENCY,
        "min_gb": MIN_PAID_GB,
        "max_gb": MAX_PAID_GB,
        "free_gb": getattr(settings, "CLOUDSTORAGE_FREE_GB", 1),
    }
