"""Browser pages of the dashboard: the file browser, shared with me, trash, search, usage, settings.

The pages are server-rendered shells: Django decides who may open a page (through files.access, as
every view does) and renders the frame; the page's scripts (static/js/) then talk to the REST API
with the session cookie and the CSRF header, so the dashboard and API clients share one contract.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET

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
from files.trash import trash_retention
from files.vault_rules import vault_of

# Content types a preview may render inline; anything else is shown as plain text or not at all,
# so an uploaded HTML or SVG file can never run script in the site's origin.
INLINE_TYPES = {
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/avif",
    "image/bmp",
    "application/pdf",
}
TEXT_PREVIEW_LIMIT = 512 * 1024
logger = logging.getLogger(__name__)


def _app_context(request: HttpRequest, workspace, **extra) -> dict:
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
    is_member = workspace_permission(user=request.user, workspace_id=workspace_id) is not None
    crumbs = _breadcrumbs(user=request.user, folder=folder)
    return render(
        request,
        "files/browser.html",
        _app_context(
            request,
            folder.workspace if is_member else None,
            nav="files",
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
    return render(request, "files/shared.html", _app_context(request, None, nav="shared"))


@login_required
def trash_page(request: HttpRequest, workspace_id) -> HttpResponse:
    workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
    return render(
        request,
        "files/trash.html",
        _app_context(
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
        request, "files/search.html", _app_context(request, workspace, nav="search", q=request.GET.get("q", ""))
    )


@login_required
def usage_page(request: HttpRequest, workspace_id) -> HttpResponse:
    workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
    return render(request, "files/usage.html", _app_context(request, workspace, nav="usage"))


@login_required
def settings_page(request: HttpRequest) -> HttpResponse:
    from accounts.models import ApiToken
    from accounts.second_factor import user_has_second_factor

    context = _app_context(request, None, nav="settings")
    context["two_factor_on"] = user_has_second_factor(user=request.user)
    # Every live token with its last use, so a token nobody recognises can be revoked from here.
    context["tokens"] = ApiToken.objects.filter(user=request.user, revoked_at__isnull=True).order_by("-created_at")
    return render(request, "files/settings.html", context)


@login_required
@require_GET
@xframe_options_sameorigin
def file_preview(request: HttpRequest, node_id) -> HttpResponse:
    """A file's current content for the preview pane: images and PDF inline, text as text/plain.

    The download endpoint of the API sends attachments; a preview needs the browser to render the
    bytes in an <img> or <iframe> of our own page, hence this small same-origin view."""
    node = node_get_for_user(user=request.user, node_id=node_id)
    if not node.is_file or node.current_version_id is None:
        raise Http404
    if vault_of(node=node) is not None:
        return HttpResponse("Vault files are previewed on the vault's page.", status=415, content_type="text/plain")
    from disks.store import StoreError, manifest_open

    version = node.current_version
    mime = (version.mime_type or "").split(";")[0].strip().lower()
    if mime in INLINE_TYPES:
        content_type, end = mime, None
    elif mime.startswith("text/") or mime in ("application/json", "application/xml", "application/javascript"):
        content_type, end = "text/plain; charset=utf-8", TEXT_PREVIEW_LIMIT
    else:
        return HttpResponse("No preview for this type of file.", status=415, content_type="text/plain")
    try:
        stream = manifest_open(manifest=version.manifest, end=end)
    except StoreError:
        logger.exception("preview of %s could not be read", node.pk)
        return HttpResponse("This file cannot be read right now.", status=503, content_type="text/plain")
    response = StreamingHttpResponse(stream, content_type=content_type)
    response["Content-Disposition"] = "inline"
    response["X-Content-Type-Options"] = "nosniff"
    # Even if a type slipped through, the content runs in an opaque origin without scripts.
    response["Content-Security-Policy"] = "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"
    response["Cache-Control"] = "private, max-age=60"
    return response


def pricing_context() -> dict:
    return {
        "price_per_gb_cents": settings.BILLING_PRICE_PER_GB_CENTS,
        "currency": settings.BILLING_CURRENCY,
        "min_gb": MIN_PAID_GB,
        "max_gb": MAX_PAID_GB,
        "free_gb": getattr(settings, "CLOUDSTORAGE_FREE_GB", 1),
    }
