"""WebDAV locks seen from another member: a 423 Locked names the lock's root as the caller sees it,
never the lock storage's key; a DELETE or MOVE of a folder holding another's lock changes nothing;
a lock belongs to the account, however the e-mail is spelt at login (the WSGI app called in
process, as WsgiDAV is mounted by cloudstorage/wsgi.py; tests/files/test_webdav.py drives a live
server with real clients)."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest

from accounts.services import token_create
from files.dav.app import DavDispatcher
from files.folders import folder_create
from files.models import DavEntry, Node
from tests.files.api_helpers import make_file
from tests.files.dav_helpers import dav_request

LOCKINFO = (
    b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
    b"<D:locktype><D:write/></D:locktype><D:owner>owner</D:owner></D:lockinfo>"
)


@pytest.fixture(autouse=True)
def connection_kept(monkeypatch):
    """DavDispatcher closes stale connections before and after a request, as Django does; inside a
    test's transaction that is the test's own connection (autocommit is off), which SQLite's
    in-memory database survives and PostgreSQL's does not."""
    monkeypatch.setattr("files.dav.app.close_old_connections", lambda: None)


def dav_as(user, login: str | None = None):
    """``call(method, path, body, **environ)`` -> (status code, headers, body) as ``user``, logged in
    with ``login`` as the user name (their e-mail unless told)."""
    app = DavDispatcher(lambda environ, start_response: [])
    raw = token_create(user=user, name="dav").raw
    auth = base64.b64encode(f"{login or user.email}:{raw}".encode()).decode()

    def call(method: str, path: str, body: bytes = b"", **extra) -> tuple[int, dict, bytes]:
        return dav_request(app, auth, method, "/dav" + path, body, **extra)

    return call


def lock(call, path: str, depth: str = "infinity") -> str:
    """Lock ``path``; its token."""
    status, headers, body = call("LOCK", path, LOCKINFO, CONTENT_TYPE="application/xml", HTTP_DEPTH=depth)
    assert status in (200, 201), body
    return headers["Lock-Token"].strip("<>")


def tagged(path: str, token: str) -> str:
    """An If header presenting ``token`` for ``path``, as clients send it."""
    return f"<http://testserver/dav{path}> (<{token}>)"


def live(folder: Node, *names: str) -> bool:
    folder.refresh_from_db()
    return folder.deleted_at is None and all(
        Node.objects.filter(parent=folder, name=name, deleted_at__isnull=True).exists() for name in names
    )


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


@pytest.fixture
def tree(owner, docs):
    """docs/a.txt, docs/b.txt and docs/sub/c.txt."""
    make_file(owner, docs, "b.txt", b"also kept")
    sub = folder_create(user=owner, parent=docs, name="sub")
    make_file(owner, sub, "c.txt", b"deep")
    return docs


@pytest.mark.parametrize(
    ("locked", "depth"), [("/Acme/docs/a.txt", "0"), ("/Acme/docs/sub/c.txt", "0"), ("/Acme/docs", "0")]
)
def test_a_delete_of_a_folder_holding_another_members_lock_is_423_and_changes_nothing(
    owner, teammate, team, tree, locked, depth
):
    """It was a 207 with a 423 for the locked file, and the whole folder, locked file included, went
    to the trash: WsgiDAV's file-by-file delete skips the parents of a failed member by a path with
    a trailing slash ("/Acme/docs/"), ours has none, and a folder's delete trashes its subtree. A
    folder locked with depth 0 lost its members one by one."""
    token = lock(dav_as(owner), locked, depth=depth)
    teammate_dav = dav_as(teammate)
    status, _, answer = teammate_dav("DELETE", "/Acme/docs")
    assert status == 423, answer
    assert_names_only(answer, "/dav" + locked, team)
    assert live(tree, "a.txt", "b.txt", "sub")
    assert live(Node.objects.get(parent=tree, name="sub"), "c.txt")
    # The lock is still there and still protects.
    assert teammate_dav("PUT", locked + ("/new.txt" if locked.endswith("docs") else ""), b"theirs")[0] == 423
    assert dav_as(owner)("UNLOCK", locked, HTTP_LOCK_TOKEN=f"<{token}>")[0] == 204


def test_a_delete_reads_only_the_locks_at_and_below_its_path(owner, teammate, team, tree):
    """The check of a folder's subtree read (and unpickled) every lock row of every tenant, for
    every DELETE, files included: the locks below a path are now found by their keys' prefix."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    elsewhere = folder_create(user=owner, parent=tree.parent, name="elsewhere")
    make_file(owner, elsewhere, "x.txt", b"x")
    owner_dav = dav_as(owner)
    lock(owner_dav, "/Acme/elsewhere/x.txt", depth="0")
    make_file(owner, tree, "gone.txt", b"x")
    for path in ("/Acme/docs/gone.txt", "/Acme/docs/sub"):
        with CaptureQueriesContext(connection) as queries:
            status, _, answer = owner_dav("DELETE", path)
        assert status == 204, answer
        reads = [q["sql"] for q in queries if "files_daventry" in q["sql"] and q["sql"].lstrip().startswith("SELECT")]
        assert reads and all('"key"' in sql.split("WHERE", 1)[-1] for sql in reads), reads


def test_the_lock_owner_deletes_the_folder_presenting_the_token(owner, team, tree):
    owner_dav = dav_as(owner)
    token = lock(owner_dav, "/Acme/docs/a.txt", depth="0")
    status, _, answer = owner_dav("DELETE", "/Acme/docs")
    assert status == 423, answer  # a lock stops its owner too when the token is not presented
    assert live(tree, "a.txt", "b.txt", "sub")
    status, _, answer = owner_dav("DELETE", "/Acme/docs", HTTP_IF=tagged("/Acme/docs/a.txt", token))
    assert status == 204, answer
    tree.refresh_from_db()
    assert tree.deleted_at is not None  # in the trash, in one piece
    assert Node.objects.filter(parent=tree, deleted_at__isnull=True).count() == 3
    assert not DavEntry.objects.filter(table="lock").exists()


def test_a_move_of_a_folder_holding_another_members_lock_is_423(owner, teammate, team, tree):
    """WsgiDAV asks MOVE's source with depth infinity: this passed before too."""
    lock(dav_as(owner), "/Acme/docs/sub/c.txt", depth="0")
    root = tree.parent
    other = folder_create(user=owner, parent=root, name="other")
    teammate_dav = dav_as(teammate)
    for source, destination in (("/Acme/docs", "/Acme/moved"), ("/Acme/other", "/Acme/docs")):
        status, _, answer = teammate_dav("MOVE", source, HTTP_DESTINATION=f"http://testserver/dav{destination}")
        assert status == 423, answer
        assert_names_only(answer, "/dav/Acme/docs/sub/c.txt", team)
    assert live(root, "docs", "other")
    assert not Node.objects.filter(parent=root, name="moved").exists()
    other.refresh_from_db()
    assert other.parent_id == root.pk


def test_a_lock_belongs_to_the_account_however_the_email_is_spelt(owner, team, docs):
    """WsgiDAV's principal was the user name as typed: a lock taken as OWNER@example.com was no
    lock of owner@example.com's (423 with its own token, 403 to UNLOCK it)."""
    token = lock(dav_as(owner, login="OWNER@Example.com"), "/Acme/docs/a.txt", depth="0")
    owner_dav = dav_as(owner)
    if_header = tagged("/Acme/docs/a.txt", token)
    status, _, answer = owner_dav("PUT", "/Acme/docs/a.txt", b"mine", HTTP_IF=if_header)
    assert status == 204, answer
    status, _, answer = owner_dav("UNLOCK", "/Acme/docs/a.txt", HTTP_LOCK_TOKEN=f"<{token}>")
    assert status == 204, answer


def test_an_account_whose_email_folds_to_anothers_cannot_take_over_their_lock(owner, team, docs):
    """Log-in compares e-mails casefolded, and "ß" folds to "ss": the member ann@straße.example
    could log in as "ann@strasse.example" with their own token, and so be, to WsgiDAV, the principal
    of ann@strasse.example's locks (whose tokens any member reads in a PROPFIND)."""
    from accounts.models import Membership
    from tests.factories import UserFactory

    ann = UserFactory(email="ann@strasse.example")
    other_ann = UserFactory(email="ann@straße.example")
    for user in (ann, other_ann):
        Membership.objects.create(workspace=team, user=user, role=Membership.Role.MEMBER)
    token = lock(dav_as(ann), "/Acme/docs/a.txt", depth="0")
    impostor = dav_as(other_ann, login="ann@strasse.example")
    status, _, answer = impostor("PUT", "/Acme/docs/a.txt", b"theirs", HTTP_IF=tagged("/Acme/docs/a.txt", token))
    assert status == 423, answer
    assert impostor("UNLOCK", "/Acme/docs/a.txt", HTTP_LOCK_TOKEN=f"<{token}>")[0] == 403
    assert Node.objects.get(parent=docs, name="a.txt").size == len(b"kept")


def test_a_folder_delete_refused_for_some_members_keeps_them_and_their_folders(owner, team, tree):
    """WsgiDAV deletes member by member when a member is refused (here an untagged If header that
    only a.txt's ETag meets): it answered 207 with 412 for b.txt and sub/c.txt, yet trashed sub and
    docs, and so them (the parents it skips are named "/Acme/docs/", ours were "/Acme/docs")."""
    a = Node.objects.get(parent=tree, name="a.txt")
    status, _, answer = dav_as(owner)("DELETE", "/Acme/docs", HTTP_IF=f'(["{a.sha256}"])')
    assert status == 207, answer
    assert answer.count(b"412 Precondition Failed") == 2, answer
    assert live(tree, "b.txt", "sub")
    assert live(Node.objects.get(parent=tree, name="sub"), "c.txt")
    assert not live(tree, "a.txt")  # the member that met the condition went, as RFC 4918 §9.6.1 has it
