"""Odd but possible WebDAV requests get a clear 4xx, never a 500: the WSGI app called in process
(tests/files/test_webdav.py drives a live server with real clients)."""

from __future__ import annotations

import base64

import pytest

from accounts.services import token_create
from files.models import Node
from tests.files.dav_helpers import dav_request


@pytest.fixture
def dav(owner):
    """``dav(method, path, **environ)`` -> (status code, body), authenticated as the owner."""
    from files.dav.app import dav_app_create

    app = dav_app_create()
    raw = token_create(user=owner, name="dav").raw
    auth = base64.b64encode(f"{owner.email}:{raw}".encode()).decode()

    def call(method: str, path: str, **extra) -> tuple[int, bytes]:
        status, _headers, body = dav_request(app, auth, method, path, script_name="/dav", **extra)
        return status, body

    return call


def test_a_put_declaring_a_size_past_any_integer_is_a_413_and_stores_nothing(dav, owner_workspace):
    """It reached the reserving UPDATE, which overflowed (SQLite: OverflowError): a 500."""
    status, body = dav(
        "PUT",
        f"/{owner_workspace.name}/huge.bin",
        CONTENT_LENGTH=str(10**26),
        CONTENT_TYPE="application/octet-stream",
    )
    assert status == 413, body[:300]
    assert b"too_large" in body
    assert not Node.objects.filter(name="huge.bin").exists()
    owner_workspace.refresh_from_db()
    assert owner_workspace.used_bytes == 0


@pytest.mark.parametrize("path", ["/", ""])
@pytest.mark.parametrize("method", ["DELETE", "MOVE", "COPY", "PUT"])
def test_a_write_to_the_list_of_workspaces_is_a_403_and_changes_nothing(dav, owner, owner_workspace, method, path):
    """WsgiDAV asked for the parent of "/", None, and the provider split it: a 500. (MKCOL and LOCK
    there were already refused.)"""
    from files.folders import folder_create

    root = Node.objects.get(workspace=owner_workspace, parent__isnull=True)
    kept = folder_create(user=owner, parent=root, name="kept")
    status, body = dav(method, path, HTTP_DESTINATION=f"http://testserver/dav/{owner_workspace.name}/elsewhere")
    assert status == 403, body[-300:]
    kept.refresh_from_db()
    assert (kept.parent_id, kept.trashed_in_id) == (root.pk, None)
    assert Node.objects.filter(workspace=owner_workspace).count() == 2
