"""Search within the caller's workspaces, and the usage analytics."""

from __future__ import annotations

import pytest

from files.selectors import FILE_TYPES
from tests.files.api_helpers import make_file, make_folder, url

PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452") + b"\0" * 32


def search(api, workspace, **params):
    response = api.get(f"/api/v1/workspaces/{workspace.pk}/search/", params)
    assert response.status_code == 200, response.content
    return sorted(item["name"] for item in response.json()["results"])


@pytest.fixture
def tree(api, owner, root):
    docs = make_folder(owner, root, "Documents")
    report = make_file(owner, docs, "Annual Report.pdf", b"%PDF-1.4 report")
    make_file(owner, docs, "notes.txt", b"plain notes")
    make_file(owner, root, "holiday.png", PNG)
    gone = make_file(owner, root, "report-old.txt", b"old")
    api.patch(url(report), {"tags": ["Finance"], "description": "the yearly numbers"}, format="json")
    api.delete(url(gone))
    return docs


def test_search_by_name_description_tag_and_type(api, owner_workspace, tree):
    assert search(api, owner_workspace, q="REPORT") == ["Annual Report.pdf"]  # the trashed one is left out
    assert search(api, owner_workspace, q="yearly") == ["Annual Report.pdf"]
    assert search(api, owner_workspace, q="financ") == ["Annual Report.pdf"]
    assert search(api, owner_workspace, tag="finance") == ["Annual Report.pdf"]
    assert search(api, owner_workspace, type="image") == ["holiday.png"]
    assert search(api, owner_workspace, type="pdf") == ["Annual Report.pdf"]
    assert search(api, owner_workspace, type="folder") == ["Documents"]
    assert search(api, owner_workspace, type="text/plain") == ["notes.txt"]
    assert search(api, owner_workspace, q="o", type="file") == ["Annual Report.pdf", "holiday.png", "notes.txt"]


def test_search_results_have_paths(api, owner_workspace, tree):
    response = api.get(f"/api/v1/workspaces/{owner_workspace.pk}/search/", {"q": "notes"})
    assert response.json()["results"][0]["path"] == "/Documents/notes.txt"


def test_search_is_members_only(outsider_api, owner_workspace, tree):
    assert outsider_api.get(f"/api/v1/workspaces/{owner_workspace.pk}/search/", {"q": "report"}).status_code == 404


def test_usage_splits_current_versions_and_trash(api, owner, root, owner_workspace):
    node = make_file(owner, root, "a.bin", b"a" * 1000)
    api.put(url(node, "content"), b"b" * 600, content_type="application/octet-stream")
    gone = make_file(owner, root, "gone.bin", b"c" * 300)
    api.delete(url(gone))
    make_file(owner, root, "same.bin", b"a" * 1000)  # identical content: stored once
    body = api.get(f"/api/v1/workspaces/{owner_workspace.pk}/usage/").json()
    assert body["current_bytes"] == 600 + 1000
    assert body["versions_bytes"] == 1000
    assert body["trash_bytes"] == 300
    assert body["used_bytes"] == body["logical_bytes"] == 2900
    assert body["quota_bytes"] == owner_workspace.quota_bytes
    assert body["free_bytes"] == owner_workspace.quota_bytes - 2900
    assert body["stored_bytes"] == 1900  # a*1000 once, b*600, c*300
    assert body["dedup_saved_bytes"] == 1000
    assert body["files"] == 2 and body["folders"] == 0


def test_usage_by_file_type(api, owner, root, owner_workspace):
    make_file(owner, root, "a.png", PNG)
    make_file(owner, root, "b.png", PNG)
    make_file(owner, root, "c.txt", b"hello")
    body = api.get(f"/api/v1/workspaces/{owner_workspace.pk}/usage/file-types/").json()
    assert {row["type"]: (row["count"], row["bytes"]) for row in body["types"]} == {
        "image": (2, 2 * len(PNG)),
        "text": (1, 5),
    }
    assert {row["mime_type"] for row in body["mime_types"]} == {"image/png", "text/plain"}


def test_usage_is_members_only(outsider_api, teammate_api, team, owner_workspace):
    assert outsider_api.get(f"/api/v1/workspaces/{owner_workspace.pk}/usage/").status_code == 404
    assert outsider_api.get(f"/api/v1/workspaces/{owner_workspace.pk}/usage/file-types/").status_code == 404
    assert teammate_api.get(f"/api/v1/workspaces/{team.pk}/usage/").status_code == 200


def test_recent_files_come_newest_first(api, owner, owner_workspace, root):
    from datetime import timedelta

    from django.utils import timezone

    from files.models import Node

    now = timezone.now()
    for age, name in enumerate(["newest.txt", "middle.txt", "oldest.txt"]):
        node = make_file(owner, root, name)
        Node.objects.filter(pk=node.pk).update(modified_at=now - timedelta(hours=age))
    make_folder(owner, root, "A folder")
    address = f"/api/v1/workspaces/{owner_workspace.pk}/search/"
    recent = api.get(address, {"type": "file", "ordering": "-modified"}).json()
    assert [n["name"] for n in recent["results"]] == ["newest.txt", "middle.txt", "oldest.txt"]
    by_name = api.get(address, {"type": "file"}).json()
    assert [n["name"] for n in by_name["results"]] == ["middle.txt", "newest.txt", "oldest.txt"]


@pytest.mark.parametrize("kind", ["bogus", "images", "text/", "/plain", "text plain", "x" * 300])
def test_search_refuses_an_unknown_type_and_lists_the_accepted_ones(api, owner_workspace, tree, kind):
    response = api.get(f"/api/v1/workspaces/{owner_workspace.pk}/search/", {"type": kind})

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid" and "folder, file, image" in error["message"]
    assert "text/plain" in error["message"]
    assert error["details"]["accepted"] == ["folder", "file", *FILE_TYPES, "other"]


def test_search_accepts_every_listed_type_and_any_mime_type(api, owner_workspace, tree):
    for kind in ["folder", "file", *FILE_TYPES, "other", "application/vnd.ms-excel", "TEXT/PLAIN"]:
        response = api.get(f"/api/v1/workspaces/{owner_workspace.pk}/search/", {"type": kind})
        assert response.status_code == 200, (kind, response.content)
