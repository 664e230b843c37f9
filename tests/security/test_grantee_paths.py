"""Finding D: someone given a share saw the names of the owner's folders above it.

``NodeOut.path`` was always the path from the workspace root, so bob, given
``/Layoffs-2027/Names/shared-sub``, read "Layoffs-2027" and "Names" in every answer about the
share (and the dashboard's details panel shows that path). A grantee's paths now start at the
highest node shared with them (``/shared-sub/...``); members still see paths from the root.
"""

from __future__ import annotations

import pytest
from django.test import Client

from files.access import node_get_for_user
from files.models import Node
from files.sharing import share_create
from tests.factories import UserFactory, team_workspace
from tests.files.sharing_helpers import client_for, folder, root_of, upload

SECRET_NAMES = (b"Layoffs-2027", b"Names")


@pytest.fixture
def people(db):
    return {
        "alice": UserFactory(email="alice@example.com"),
        "bob": UserFactory(email="bob@example.com"),
        "vera": UserFactory(email="vera@example.com"),
    }


@pytest.fixture
def tree(people):
    """Alice's team folder /Layoffs-2027/Names/shared-sub (with inner/list.txt), shared with bob;
    vera is a viewer of the team."""
    team = team_workspace(people["alice"], "HR", members={people["vera"]: "viewer"})
    sub = folder(people["alice"], root_of(team), "Layoffs-2027/Names/shared-sub")
    inner = folder(people["alice"], sub, "inner")
    listed = upload(people["alice"], inner, "list.txt", b"names")
    return {"team": team, "sub": sub, "inner": inner, "file": listed}


def _share(people, node: Node, permission: str) -> None:
    alice_view = node_get_for_user(user=people["alice"], node_id=node.pk)
    share_create(actor=people["alice"], node=alice_view, email="bob@example.com", permission=permission)


def _hides_the_folders_above(response) -> None:
    assert response.status_code < 400, response.content
    for name in SECRET_NAMES:
        assert name not in response.content, response.content


def test_grantee_sees_paths_from_the_shared_folder(people, tree):
    _share(people, tree["sub"], "view")
    bob = client_for(people["bob"])

    shared = bob.get(f"/api/v1/nodes/{tree['sub'].pk}/")
    inside = bob.get(f"/api/v1/nodes/{tree['file'].pk}/")
    listing = bob.get(f"/api/v1/nodes/{tree['inner'].pk}/children/")

    assert shared.json()["path"] == "/shared-sub"
    assert inside.json()["path"] == "/shared-sub/inner/list.txt"
    assert [item["path"] for item in listing.json()["results"]] == ["/shared-sub/inner/list.txt"]
    for response in (shared, inside, listing, bob.get("/api/v1/shared-with-me/")):
        _hides_the_folders_above(response)


def test_grantee_paths_start_at_the_highest_share(people, tree):
    _share(people, tree["inner"], "edit")
    _share(people, tree["sub"], "view")

    response = client_for(people["bob"]).get(f"/api/v1/nodes/{tree['file'].pk}/")

    assert response.json()["path"] == "/shared-sub/inner/list.txt"


def test_a_file_shared_alone_is_its_own_top(people, tree):
    _share(people, tree["file"], "view")

    response = client_for(people["bob"]).get(f"/api/v1/nodes/{tree['file'].pk}/")

    assert response.json()["path"] == "/list.txt"


def test_grantee_with_edit_never_gets_the_folders_above_in_answers_to_writes(people, tree):
    _share(people, tree["sub"], "edit")
    bob = client_for(people["bob"])
    sub, inner, listed = tree["sub"], tree["inner"], tree["file"]

    created = bob.post(f"/api/v1/nodes/{sub.pk}/children/", {"type": "folder", "name": "new"}, format="json")
    put = bob.put(f"/api/v1/nodes/{sub.pk}/children/put.txt", data=b"1", content_type="application/octet-stream")
    posted = bob.post(f"/api/v1/nodes/{inner.pk}/children/", {"file": [_file("m.txt")]}, format="multipart")
    content = bob.put(f"/api/v1/nodes/{listed.pk}/content", data=b"v2", content_type="application/octet-stream")
    moved = bob.patch(f"/api/v1/nodes/{listed.pk}/", {"parent": str(created.json()["id"])}, format="json")
    renamed = bob.patch(f"/api/v1/nodes/{sub.pk}/", {"name": "renamed-sub"}, format="json")
    copied = bob.post(f"/api/v1/nodes/{inner.pk}/copy/", {"parent": str(sub.pk)}, format="json")
    restored = bob.post(f"/api/v1/nodes/{listed.pk}/versions/1/restore/")

    assert created.json()["path"] == "/shared-sub/new"
    assert put.json()["path"] == "/shared-sub/put.txt"
    assert [node["path"] for node in posted.json()["nodes"]] == ["/shared-sub/inner/m.txt"]
    assert content.json()["path"] == "/shared-sub/inner/list.txt"
    assert moved.json()["path"] == "/shared-sub/new/list.txt"
    assert renamed.json()["path"] == "/renamed-sub"
    assert copied.json()["path"] == "/renamed-sub/inner (copy)"
    assert restored.json()["path"] == "/renamed-sub/new/list.txt"
    for response in (created, put, posted, content, moved, renamed, copied, restored):
        _hides_the_folders_above(response)


@pytest.mark.parametrize("member", ["alice", "vera"])
def test_members_still_see_paths_from_the_root(people, tree, member):
    _share(people, tree["sub"], "view")
    client = client_for(people[member])

    response = client.get(f"/api/v1/nodes/{tree['file'].pk}/")
    listing = client.get(f"/api/v1/nodes/{tree['inner'].pk}/children/")
    found = client.get(f"/api/v1/workspaces/{tree['team'].pk}/search/", {"q": "list"})

    expected = "/Layoffs-2027/Names/shared-sub/inner/list.txt"
    assert response.json()["path"] == expected
    assert [item["path"] for item in listing.json()["results"]] == [expected]
    assert [item["path"] for item in found.json()["results"]] == [expected]


def test_grantee_cannot_search_the_owners_workspace(people, tree):
    """Search (API and dashboard) is for members: a grantee gets nothing to read paths from."""
    _share(people, tree["sub"], "view")

    response = client_for(people["bob"]).get(f"/api/v1/workspaces/{tree['team'].pk}/search/", {"q": "list"})

    assert response.status_code == 404


def test_dashboard_pages_of_a_grantee_hide_the_folders_above(people, tree):
    _share(people, tree["sub"], "view")
    browser = Client()
    browser.force_login(people["bob"])

    page = browser.get(f"/app/w/{tree['team'].pk}/f/{tree['inner'].pk}/")

    _hides_the_folders_above(page)
    assert b"shared-sub" in page.content


def _file(name: str):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, b"multipart", content_type="text/plain")
