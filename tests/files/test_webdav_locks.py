"""WebDAV locks seen from another member: a 423 Locked names the lock's root as the caller sees it,
never the lock storage's key (the WSGI app called in process, as WsgiDAV is mounted by
cloudstorage/wsgi.py; tests/files/test_webdav.py drives a live server with real clients)."""

from __future__ import annotations

import base64
import io
from datetime import timedelta

import pytest

from accounts.services import token_create
from files.dav.app import DavDispatcher
from files.folders import folder_create
from files.models import Node
from tests.files.api_helpers import make_file

LOCKINFO = (
    b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
    b"<D:locktype><D:write/></D:locktype><D:owner>owner</D:owner></D:lockinfo>"
)


def dav_as(user):
    """``call(method, path, body, **environ)`` -> (status code, headers, body) as ``user``."""
    app = DavDispatcher(lambda environ, start_response: [])
    raw = token_create(user=user, name="dav").raw
    auth = base64.b64encode(f"{user.email}:{raw}".encode()).decode()

    def call(method: str, path: str, body: bytes = b"", **extra) -> tuple[int, dict, bytes]:
        environ = {
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": "",
            "PATH_INFO": "/dav" + path,
            "QUERY_STRING": "",
            "SERVER_NAME": "testserver",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "testserver",
            "HTTP_AUTHORIZATION": f"Basic {auth}",
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": io.StringIO(),
            "wsgi.url_scheme": "http",
            "wsgi.version": (1, 0),
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            **extra,
        }
        seen = {}

        def start_response(status, headers, exc_info=None):
            seen["status"], seen["headers"] = status, dict(headers)

        out = b"".join(app(environ, start_response))
        return int(seen["status"].split()[0]), seen["headers"], out

    return call


def lock(call, path: str, depth: str = "infinity") -> None:
    status, _, body = call("LOCK", path, LOCKINFO, CONTENT_TYPE="application/xml", HTTP_DEPTH=depth)
    assert status in (200, 201), body


@pytest.fixture
def docs(owner, team):
    """/Acme/docs/a.txt in the team workspace the owner and the teammate (a member) share."""
    root = Node.objects.get(workspace=team, parent__isnull=True)
    folder = folder_create(user=owner, parent=root, name="docs")
    make_file(owner, folder, "a.txt", b"kept")
    return folder


def assert_names_only(body: bytes, href: str, team) -> None:
    assert f"<ns0:no-conflicting-lock><ns0:href>{href}</ns0:href></ns0:no-conflicting-lock>" in body.decode(), body
    assert str(team.pk) not in body.decode()


def test_a_write_to_a_file_another_member_locked_is_423_naming_its_href(owner, teammate, team, docs):
    """The body named the lock's storage key, /<workspace id>/docs/a.txt: the workspace's internal
    id and no address of this server."""
    lock(dav_as(owner), "/Acme/docs/a.txt", depth="0")
    teammate_dav = dav_as(teammate)
    for method, body in (("PUT", b"theirs"), ("LOCK", LOCKINFO)):
        status, headers, answer = teammate_dav(method, "/Acme/docs/a.txt", body, CONTENT_TYPE="application/xml")
        assert status == 423, answer
        assert headers["Content-Type"].startswith("application/xml")
        assert_names_only(answer, "/dav/Acme/docs/a.txt", team)
    assert Node.objects.get(parent=docs, name="a.txt").size == len(b"kept")


def test_a_write_under_a_locked_folder_is_423_naming_the_folder(owner, teammate, team, docs):
    lock(dav_as(owner), "/Acme/docs")
    status, _, answer = dav_as(teammate)("PUT", "/Acme/docs/new.txt", b"new")
    assert status == 423, answer
    assert_names_only(answer, "/dav/Acme/docs", team)
    assert not Node.objects.filter(parent=docs, name="new.txt").exists()


def test_the_href_is_the_callers_name_of_the_workspace(owner, teammate, team, docs):
    """Workspaces are shown by name, a duplicate numbered per caller: the teammate's own "Acme"
    is older, so the team's is "Acme (2)" to them (and "Acme" to the owner who locked it)."""
    from accounts.models import Workspace
    from accounts.services import workspace_create_team

    theirs = workspace_create_team(owner=teammate, name="Acme")
    Workspace.objects.filter(pk=theirs.pk).update(created_at=team.created_at - timedelta(days=1))
    lock(dav_as(owner), "/Acme/docs/a.txt", depth="0")
    teammate_dav = dav_as(teammate)
    listing = teammate_dav("PROPFIND", "/", HTTP_DEPTH="1")[2].decode()
    assert "/dav/Acme%20(2)/" in listing or "/dav/Acme (2)/" in listing, listing
    status, _, answer = teammate_dav("PUT", "/Acme (2)/docs/a.txt", b"theirs")
    assert status == 423, answer
    assert_names_only(answer, "/dav/Acme%20(2)/docs/a.txt", team)
