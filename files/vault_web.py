"""The dashboard's vault pages: a vault's browser and the form to create one.

Server-rendered shells like the rest of the dashboard (files/web.py), but everything that touches
content happens in the page's scripts (static/js/vault.js, vault-crypto.js): the server renders
names and ids, never a key or a plaintext byte.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from files.access import node_get_for_user, vault_get_for_user, workspace_permission
from files.vault_rules import vault_of
from files.web import app_context


def _workspace_if_member(request: HttpRequest, node):
    """The vault's workspace for the side menu when the user is a member (with ``.permission``, so
    managers see their sections as on every other page), else None."""
    permission = workspace_permission(user=request.user, workspace_id=node.workspace_id)
    if permission is None:
        return None
    workspace = node.workspace
    workspace.permission = permission
    return workspace


@login_required
def vault_page(request: HttpRequest, vault_id) -> HttpResponse:
    vault = vault_get_for_user(user=request.user, vault_id=vault_id)
    folder = vault.node
    return render(
        request,
        "files/vault.html",
        app_context(
            request,
            _workspace_if_member(request, folder),
            nav="files",
            vault=vault,
            folder=folder,
            can_edit=folder.permission in ("edit", "manage"),
            tus_threshold=settings.DASHBOARD_TUS_THRESHOLD,
            tus_chunk=settings.DASHBOARD_TUS_CHUNK,
        ),
    )


@login_required
def vault_new(request: HttpRequest) -> HttpResponse:
    """The form to create a vault in ``?parent=`` (the script does the key work and the API call)."""
    parent = node_get_for_user(user=request.user, node_id=request.GET.get("parent", ""), need="edit")
    inside = vault_of(node=parent)
    if inside is not None:
        return redirect("files_vault", vault_id=inside.node_id)
    return render(
        request,
        "files/vault_new.html",
        app_context(request, _workspace_if_member(request, parent), nav="files", parent=parent),
    )
