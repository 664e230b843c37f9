"""The change feed: every kind of change through the real API, in order, paged, with a 410 for a cursor
older than the kept history, and a long-poll that answers as soon as something changes."""

from __future__ import annotations

import io
import threading
import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from files.changes import changes_prune
from files.folders import folder_create
from files.models import Change
from files.nodes import node_update
from files.uploads import file_upload
from tests.files.api_helpers import make_file, make_folder, url


def feed_url(workspace) -> str:
    return f"/api/v1/workspaces/{workspace.pk}/changes/"


def start(api, workspace) -> str:
    response = api.get(feed_url(workspace))
    assert response.status_code == 200 and response.json()["changes"] == []
    return response.json()["cursor"]


def follow(api, workspace, cursor: str, **params) -> dict:
    response = api.get(feed_url(workspace), {"cursor": cursor, **params})
    assert response.status_code == 200, response.content
    return response.json()


def kinds(page: dict) -> list[tuple[str, str]]:
    return [(change["kind"], change["path"]) for change in page["changes"]]


def test_every_kind_of_change_in_order(api, owner, root, owner_workspace):
    cursor = start(api, owner_workspace)
    folder = api.post(url(root, "children/"), {"type": "folder", "name": "docs"}, format="json").json()
    created = api.put(f"/api/v1/nodes/{folder['id']}/children/a.txt", b"one", content_type="text/plain").json()
    api.put(url(created["id"], "content"), b"two", content_type="text/plain")
    api.patch(url(created["id"]), {"name": "b.txt"}, format="json")
    api.patch(url(created["id"]), {"parent": str(root.pk)}, format="json")
    api.post(url(created["id"], "copy/"), {"parent": folder["id"]}, format="json")
    api.post(url(created["id"], "versions/1/restore/"))
    api.delete(url(folder["id"]))
    api.post(f"/api/v1/trash/{folder['id']}/restore/")
    api.delete(url(folder["id"]))
    api.delete(f"/api/v1/trash/{folder['id']}/")

    page = follow(api, owner_workspace, cursor)
    assert kinds(page) == [
        ("create", "/docs"),
        ("create", "/docs/a.txt"),
        ("update", "/docs/a.txt"),
        ("rename", "/docs/b.txt"),
        ("move", "/b.txt"),
        ("create", "/docs/b.txt"),
        ("update", "/b.txt"),
        ("trash", "/docs"),
        ("restore", "/docs"),
        ("trash", "/docs"),
        ("purge", "/docs"),
    ]
    changes = page["changes"]
    assert changes[3]["from_path"] == "/docs/a.txt" and changes[4]["from_path"] == "/docs/b.txt"
    assert changes[2]["version"] == 2 and changes[2]["size"] == 3 and len(changes[2]["sha256"]) == 64
    assert changes[0]["type"] == "folder" and changes[1]["parent"] == folder["id"]
    assert [int(change["position"]) for change in changes] == sorted(int(change["position"]) for change in changes)
    assert page["cursor"] == changes[-1]["position"] and page["has_more"] is False
    assert follow(api, owner_workspace, page["cursor"])["changes"] == []


def test_tag_and_description_edits_are_metadata_entries(api, owner, root, owner_workspace):
    """A PATCH of tags or description left the feed untouched, so a client syncing metadata never
    learnt of it. Now each is an entry of kind metadata, shaped like a rename's; an edit that changes
    nothing, or one refused, adds none."""
    docs = make_folder(owner, root, "docs")
    created = make_file(owner, docs, "a.txt")
    cursor = start(api, owner_workspace)
    assert api.patch(url(created), {"tags": ["work", "q3"]}, format="json").status_code == 200
    assert api.patch(url(created), {"description": "the draft"}, format="json").status_code == 200
    assert api.patch(url(docs), {"tags": ["team"], "description": "shared"}, format="json").status_code == 200
    page = follow(api, owner_workspace, cursor)
    assert kinds(page) == [("metadata", "/docs/a.txt"), ("metadata", "/docs/a.txt"), ("metadata", "/docs")]
    entry = page["changes"][0]
    assert set(entry) == {
        "position", "kind", "node", "type", "parent", "name", "path", "from_path", "size", "sha256", "version", "at"
    }  # fmt: skip
    assert (entry["node"], entry["type"], entry["parent"], entry["name"]) == (
        str(created.pk),
        "file",
        str(docs.pk),
        "a.txt",
    )
    assert entry["from_path"] == "" and entry["version"] == 1 and len(entry["sha256"]) == 64
    assert page["changes"][2]["type"] == "folder"
    # The same values again (tags in another order), and a refused edit: nothing new.
    cursor = page["cursor"]
    assert (
        api.patch(url(created), {"tags": ["q3", "work"], "description": "the draft"}, format="json").status_code == 200
    )
    refused = api.patch(url(created), {"tags": ["ok", "x" * 65]}, format="json")
    assert refused.status_code == 400
    stale = api.patch(url(created), {"tags": ["late"]}, format="json", HTTP_IF_MATCH='"' + "0" * 64 + '"')
    assert stale.status_code == 412
    assert follow(api, owner_workspace, cursor)["changes"] == []
    # A rename with new tags: the rename, then the metadata at the new path.
    api.patch(url(created), {"name": "b.txt", "tags": ["final"]}, format="json")
    assert kinds(follow(api, owner_workspace, cursor)) == [("rename", "/docs/b.txt"), ("metadata", "/docs/b.txt")]


def test_a_metadata_edit_rolled_back_leaves_no_entry(owner, root, owner_workspace):
    node = make_file(owner, root, "m.txt")
    with pytest.raises(RuntimeError), transaction.atomic():
        node_update(user=owner, node=node, tags=["gone"], description="gone")
        raise RuntimeError("the request failed after the edit")
    assert not Change.objects.filter(workspace=owner_workspace, kind="metadata").exists()


def test_a_metadata_edit_of_a_node_trashed_meanwhile_is_refused(owner, root, owner_workspace):
    from cloudstorage.errors import ServiceError
    from files.trash import node_trash

    node = make_file(owner, root, "t.txt")
    stale = type(node).objects.get(pk=node.pk)  # as the request read it
    node_trash(user=owner, node=node)
    with pytest.raises(ServiceError) as refused:
        node_update(user=owner, node=stale, tags=["late"], description="late")
    assert refused.value.code == "in_trash"
    stale.refresh_from_db()
    assert stale.description == "" and not stale.tags.exists()
    assert not Change.objects.filter(workspace=owner_workspace, kind="metadata").exists()


def test_a_copied_tree_is_one_create_per_node_parents_first(api, owner, root, owner_workspace):
    docs = make_folder(owner, root, "docs")
    make_file(owner, make_folder(owner, docs, "sub"), "x.txt")
    cursor = start(api, owner_workspace)
    api.post(url(docs, "copy/"), {"parent": str(root.pk), "name": "docs2"}, format="json")
    assert kinds(follow(api, owner_workspace, cursor)) == [
        ("create", "/docs2"),
        ("create", "/docs2/sub"),
        ("create", "/docs2/sub/x.txt"),
    ]


def test_pages_follow_each_other_without_gaps(api, owner, root, owner_workspace):
    cursor = start(api, owner_workspace)
    for n in range(7):
        make_file(owner, root, f"f{n}.txt")
    seen = []
    while True:
        page = follow(api, owner_workspace, cursor, limit=3)
        seen += [change["name"] for change in page["changes"]]
        cursor = page["cursor"]
        if not page["has_more"]:
            break
    assert seen == [f"f{n}.txt" for n in range(7)]


def test_a_cursor_older_than_the_kept_history_is_410(api, owner, root, owner_workspace):
    cursor = start(api, owner_workspace)
    make_file(owner, root, "old.txt")
    Change.objects.filter(workspace=owner_workspace).update(created_at=timezone.now() - timedelta(days=31))
    make_file(owner, root, "new.txt")
    assert changes_prune() == 1
    response = api.get(feed_url(owner_workspace), {"cursor": cursor})
    assert response.status_code == 410
    assert response.json()["error"]["code"] == "cursor_expired"
    assert "List the workspace again" in response.json()["error"]["message"]
    fresh = start(api, owner_workspace)
    assert follow(api, owner_workspace, fresh)["changes"] == []
    assert [c["name"] for c in follow(api, owner_workspace, str(int(fresh) - 1))["changes"]] == ["new.txt"]


@pytest.mark.parametrize("bad", ["abc", "-1", "1.5", "9" * 30])
def test_a_bad_cursor_is_400(api, owner_workspace, bad):
    response = api.get(feed_url(owner_workspace), {"cursor": bad})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_cursor"


def test_a_cursor_past_the_newest_change_is_400_and_the_head_still_follows(api, owner, root, owner_workspace):
    """It was echoed back with 200 and no changes, so a client keeping it missed every change until
    the feed caught up with that number."""
    head = start(api, owner_workspace)
    make_file(owner, root, "seen.txt")
    newest = follow(api, owner_workspace, head)["cursor"]
    for ahead in (int(newest) + 1, int(newest) + 10_000_000):
        for params in ({}, {"wait": "1"}):
            response = api.get(feed_url(owner_workspace), {"cursor": str(ahead), **params})
            assert response.status_code == 400, response.content
            error = response.json()["error"]
            assert error["code"] == "invalid_cursor" and "past the newest change" in error["message"]
    assert follow(api, owner_workspace, newest)["changes"] == []  # the newest position itself is fine
    make_file(owner, root, "later.txt")
    assert [c["name"] for c in follow(api, owner_workspace, newest)["changes"]] == ["later.txt"]


def test_bad_wait_or_limit_is_400(api, owner_workspace):
    assert api.get(feed_url(owner_workspace), {"cursor": "0", "wait": "61"}).status_code == 400
    assert api.get(feed_url(owner_workspace), {"cursor": "0", "limit": "0"}).status_code == 400


def test_outsider_gets_404_and_a_viewer_may_follow(api, outsider_api, teammate_api, team):
    assert outsider_api.get(feed_url(team)).status_code == 404
    assert teammate_api.get(feed_url(team)).status_code == 200


def test_the_feed_is_per_workspace(api, owner, root, owner_workspace, team):
    cursor = start(api, team)
    make_file(owner, root, "personal.txt")
    assert follow(api, team, cursor)["changes"] == []


@pytest.mark.django_db(transaction=True)
def test_long_poll_answers_as_soon_as_something_changes(api, owner, root, owner_workspace):
    cursor = start(api, owner_workspace)

    def later():
        time.sleep(0.5)
        folder_create(user=owner, parent=root, name="late")

    writer = threading.Thread(target=later)
    began = time.monotonic()
    writer.start()
    page = follow(api, owner_workspace, cursor, wait=20)
    writer.join()
    assert kinds(page) == [("create", "/late")]
    assert time.monotonic() - began < 10


@pytest.mark.django_db(transaction=True)
def test_long_poll_with_nothing_new_answers_after_the_wait(api, owner_workspace):
    cursor = start(api, owner_workspace)
    began = time.monotonic()
    page = follow(api, owner_workspace, cursor, wait=1)
    assert page["changes"] == [] and page["cursor"] == cursor
    assert time.monotonic() - began >= 1


def test_when_every_waiting_slot_is_taken_the_client_is_told_to_back_off(api, owner_workspace, monkeypatch):
    from files import changes

    monkeypatch.setattr(changes, "_waiters", threading.BoundedSemaphore(1))
    changes._waiters.acquire()
    page = follow(api, owner_workspace, start(api, owner_workspace), wait=30)
    assert page["changes"] == [] and page["backoff"] == changes.BACKOFF_SECONDS


def test_a_change_rolled_back_leaves_no_entry(owner, root, owner_workspace):
    with pytest.raises(RuntimeError), transaction.atomic():
        file_upload(user=owner, parent=root, name="t.txt", stream=io.BytesIO(b"x"))
        raise RuntimeError("the request failed after the upload")
    assert not Change.objects.filter(workspace=owner_workspace, name="t.txt").exists()
