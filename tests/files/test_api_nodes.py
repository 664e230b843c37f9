"""The node routes: read, rename, move, metadata, delete, copy, children (list and create folder)."""

from __future__ import annotations

import pytest

from files.models import Node, Tag
from tests.files.api_helpers import make_file, make_folder, url, workspace_root


def test_get_node_has_the_contract_fields(api, owner, root):
    node = make_file(owner, make_folder(owner, root, "Docs"), "a.txt", b"abc")
    response = api.get(url(node))
    assert response.status_code == 200
    body = response.json()
    assert set(body) >= {
        "id",
        "type",
        "name",
        "parent",
        "path",
        "size",
        "mime_type",
        "sha256",
        "version",
        "created_at",
        "modified_at",
        "tags",
        "description",
        "permission",
    }
    assert body["type"] == "file" and body["path"] == "/Docs/a.txt" and body["size"] == 3
    assert body["permission"] == "manage" and body["version"] == 1 and body["mime_type"] == "text/plain"


def test_rename_keeps_case_and_refuses_a_sibling_name(api, owner, root):
    node = make_file(owner, root, "a.txt")
    make_file(owner, root, "B.txt")
    assert api.patch(url(node), {"name": "Report.TXT"}, format="json").json()["name"] == "Report.TXT"
    response = api.patch(url(node), {"name": "b.TXT"}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "name_conflict"
    assert Node.objects.get(pk=node.pk).name == "Report.TXT"


@pytest.mark.parametrize("bad", ["a/b", "a\\b", "a\0b", "a\x07b", ".", "..", "x" * 256, "é" * 128, "", " x"])
def test_bad_names_are_refused_and_change_nothing(api, owner, root, bad):
    node = make_file(owner, root, "keep.txt")
    response = api.patch(url(node), {"name": bad}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] in ("invalid_name", "invalid")
    assert Node.objects.get(pk=node.pk).name == "keep.txt"
    before = Node.objects.count()
    response = api.post(url(root, "children/"), {"type": "folder", "name": bad}, format="json")
    assert response.status_code == 400
    assert Node.objects.count() == before


def test_move_is_one_update_and_the_subtree_follows(api, owner, root):
    source = make_folder(owner, root, "src")
    inner = make_folder(owner, source, "inner")
    leaf = make_file(owner, inner, "leaf.txt")
    target = make_folder(owner, root, "dst")
    response = api.patch(url(source), {"parent": str(target.pk)}, format="json")
    assert response.status_code == 200
    assert response.json()["path"] == "/dst/src"
    assert api.get(url(leaf)).json()["path"] == "/dst/src/inner/leaf.txt"


def test_move_into_itself_or_a_descendant_is_refused(api, owner, root):
    folder = make_folder(owner, root, "a")
    child = make_folder(owner, folder, "b")
    for target in (folder, child):
        response = api.patch(url(folder), {"parent": str(target.pk)}, format="json")
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_move"
    assert Node.objects.get(pk=folder.pk).parent_id == root.pk


def test_move_to_unknown_or_foreign_parent_is_refused(api, owner, root, outsider):
    node = make_file(owner, root, "a.txt")
    foreign = make_folder(outsider, workspace_root(outsider.memberships.get().workspace), "theirs")
    for parent in ("7d8f0c5e-0000-4000-8000-000000000000", str(foreign.pk)):
        response = api.patch(url(node), {"parent": parent}, format="json")
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_parent"
    assert Node.objects.get(pk=node.pk).parent_id == root.pk


def test_move_onto_a_name_taken_in_the_target_is_refused(api, owner, root):
    node = make_file(owner, root, "a.txt")
    target = make_folder(owner, root, "t")
    make_file(owner, target, "A.txt")
    response = api.patch(url(node), {"parent": str(target.pk)}, format="json")
    assert response.status_code == 409
    assert Node.objects.get(pk=node.pk).parent_id == root.pk


def test_root_cannot_be_renamed_moved_or_deleted(api, owner, root):
    other = make_folder(owner, root, "x")
    assert api.patch(url(root), {"name": "r"}, format="json").status_code == 400
    assert api.patch(url(root), {"parent": str(other.pk)}, format="json").status_code == 400
    assert api.delete(url(root)).status_code == 400


def test_tags_and_description_are_set_and_replaced(api, owner, root):
    node = make_file(owner, root, "a.txt")
    body = api.patch(url(node), {"tags": ["Q4", "finance", "q4"], "description": "numbers"}, format="json").json()
    assert body["tags"] == ["Q4", "finance"] and body["description"] == "numbers"
    body = api.patch(url(node), {"tags": ["other"]}, format="json").json()
    assert body["tags"] == ["other"] and body["description"] == "numbers"
    assert api.patch(url(node), {"tags": ["x" * 65]}, format="json").status_code == 400
    assert list(Tag.objects.filter(node=node).values_list("name", flat=True)) == ["other"]


def test_delete_moves_to_the_trash_and_hides_the_node(api, owner, root):
    node = make_file(owner, root, "a.txt")
    assert api.delete(url(node)).status_code == 204
    assert api.get(url(node)).status_code == 404
    assert Node.objects.get(pk=node.pk).deleted_at is not None


def test_create_folder_and_duplicate_is_409(api, root):
    response = api.post(url(root, "children/"), {"type": "folder", "name": "Projects"}, format="json")
    assert response.status_code == 201
    assert response.json()["type"] == "folder" and response.json()["path"] == "/Projects"
    again = api.post(url(root, "children/"), {"type": "folder", "name": "projects"}, format="json")
    assert again.status_code == 409
    assert Node.objects.filter(parent=root).count() == 1


def test_create_folder_in_a_file_is_refused(api, owner, root):
    node = make_file(owner, root, "a.txt")
    response = api.post(url(node, "children/"), {"type": "folder", "name": "x"}, format="json")
    assert response.status_code == 400


def _names(response):
    return [item["name"] for item in response.json()["results"]]


def test_children_are_cursor_paginated_in_every_ordering(api, owner, root):
    sizes = {"b.txt": 30, "a.txt": 10, "C.txt": 20, "d.txt": 40, "e.txt": 5}
    for name, size in sizes.items():
        make_file(owner, root, name, b"x" * size)
    make_folder(owner, root, "Zfolder")
    seen = []
    next_url = url(root, "children/?page_size=2")
    while next_url:
        response = api.get(next_url)
        assert response.status_code == 200
        seen += _names(response)
        next_url = response.json()["next"]
    assert seen == ["a.txt", "b.txt", "C.txt", "d.txt", "e.txt", "Zfolder"]
    assert _names(api.get(url(root, "children/?ordering=-name&page_size=3"))) == ["Zfolder", "e.txt", "d.txt"]
    assert _names(api.get(url(root, "children/?ordering=size")))[:3] == ["Zfolder", "e.txt", "a.txt"]
    by_size_desc = []
    next_url = url(root, "children/?ordering=-size&page_size=2")
    while next_url:
        response = api.get(next_url)
        by_size_desc += _names(response)
        next_url = response.json()["next"]
    assert by_size_desc == ["d.txt", "b.txt", "C.txt", "a.txt", "e.txt", "Zfolder"]
    newest_first = _names(api.get(url(root, "children/?ordering=-modified")))
    assert newest_first[0] == "Zfolder" and newest_first[-1] == "b.txt"
    assert api.get(url(root, "children/?ordering=colour")).status_code == 400


def test_children_list_leaves_out_the_trash(api, owner, root):
    gone = make_file(owner, root, "gone.txt")
    make_file(owner, root, "kept.txt")
    api.delete(url(gone))
    assert _names(api.get(url(root, "children/"))) == ["kept.txt"]


def test_copy_file_shares_chunks_and_costs_quota(api, owner, root, owner_workspace):
    node = make_file(owner, root, "a.txt", b"y" * 5000)
    target = make_folder(owner, root, "t")
    owner_workspace.refresh_from_db()
    used = owner_workspace.used_bytes
    response = api.post(url(node, "copy/"), {"parent": str(target.pk)}, format="json")
    assert response.status_code == 201
    assert response.json()["path"] == "/t/a.txt" and response.json()["size"] == 5000
    owner_workspace.refresh_from_db()
    assert owner_workspace.used_bytes == used + 5000
    again = api.post(url(node, "copy/"), {"parent": str(root.pk)}, format="json")
    assert again.json()["name"] == "a (copy).txt"
    clash = api.post(url(node, "copy/"), {"parent": str(root.pk), "name": "A.TXT"}, format="json")
    assert clash.status_code == 409


def test_copy_folder_copies_the_live_tree(api, owner, root):
    folder = make_folder(owner, root, "src")
    make_file(owner, make_folder(owner, folder, "in"), "deep.txt", b"deep")
    trashed = make_file(owner, folder, "trashed.txt")
    api.delete(url(trashed))
    response = api.post(url(folder, "copy/"), {"parent": str(root.pk), "name": "dst"}, format="json")
    assert response.status_code == 201
    copy = Node.objects.get(pk=response.json()["id"])
    assert [n.name for n in Node.objects.filter(parent=copy)] == ["in"]
    deep = Node.objects.get(parent__parent=copy, name="deep.txt")
    assert api.get(url(deep, "content")).getvalue() == b"deep"


def test_copy_into_itself_or_over_quota_is_refused(api, owner, root, owner_workspace):
    folder = make_folder(owner, root, "src")
    make_file(owner, folder, "a.bin", b"z" * 1000)
    response = api.post(url(folder, "copy/"), {"parent": str(folder.pk)}, format="json")
    assert response.status_code == 400
    owner_workspace.used_bytes = owner_workspace.quota_bytes - 10
    owner_workspace.save(update_fields=["used_bytes"])
    before = Node.objects.count()
    response = api.post(url(folder, "copy/"), {"parent": str(root.pk)}, format="json")
    assert response.status_code == 413 and response.json()["error"]["code"] == "quota_exceeded"
    assert Node.objects.count() == before
    owner_workspace.refresh_from_db()
    assert owner_workspace.used_bytes == owner_workspace.quota_bytes - 10


@pytest.fixture
def team_root(team):
    return workspace_root(team)


@pytest.fixture
def viewer_api(db):
    from tests.conftest import _client_for
    from tests.factories import UserFactory

    viewer = UserFactory(email="viewer@example.com")
    client = _client_for(viewer)
    client.user = viewer
    return client


def test_viewer_can_read_but_not_write(api, owner, team, team_root, viewer_api):
    from accounts.models import Membership

    Membership.objects.create(workspace=team, user=viewer_api.user, role="viewer")
    node = make_file(owner, team_root, "a.txt")
    assert viewer_api.get(url(node)).status_code == 200
    assert viewer_api.get(url(team_root, "children/")).status_code == 200
    attempts = [
        viewer_api.patch(url(node), {"name": "b.txt"}, format="json"),
        viewer_api.delete(url(node)),
        viewer_api.post(url(node, "copy/"), {"parent": str(team_root.pk)}, format="json"),
        viewer_api.post(url(team_root, "children/"), {"type": "folder", "name": "x"}, format="json"),
        viewer_api.post(url(team_root, "children/"), {"file": [_upload("v.txt")]}, format="multipart"),
        viewer_api.put(url(team_root, "children/v.txt"), b"data", content_type="application/octet-stream"),
        viewer_api.put(url(node, "content"), b"data", content_type="application/octet-stream"),
        viewer_api.post(url(node, "versions/1/restore/")),
        viewer_api.patch(url(node, "versions/1/"), {"pinned": True}, format="json"),
    ]
    assert [r.status_code for r in attempts] == [403] * len(attempts)
    assert sorted(Node.objects.filter(parent=team_root).values_list("name", flat=True)) == ["a.txt"]
    team.refresh_from_db()
    assert team.used_bytes == 5


def _upload(name: str, data: bytes = b"data"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data)


def test_outsider_gets_404_on_every_node_route(owner, root, outsider_api):
    folder = make_folder(owner, root, "f")
    node = make_file(owner, folder, "a.txt")
    calls = [
        outsider_api.get(url(node)),
        outsider_api.patch(url(node), {"name": "x"}, format="json"),
        outsider_api.delete(url(node)),
        outsider_api.post(url(node, "copy/"), {"parent": str(folder.pk)}, format="json"),
        outsider_api.get(url(folder, "children/")),
        outsider_api.post(url(folder, "children/"), {"type": "folder", "name": "x"}, format="json"),
        outsider_api.post(url(folder, "children/"), {"file": [_upload("x.txt")]}, format="multipart"),
        outsider_api.put(url(folder, "children/x.txt"), b"data", content_type="application/octet-stream"),
        outsider_api.get(url(node, "content")),
        outsider_api.put(url(node, "content"), b"data", content_type="application/octet-stream"),
        outsider_api.get(url(folder, "zip")),
        outsider_api.get(url(node, "versions/")),
        outsider_api.post(url(node, "versions/1/restore/")),
        outsider_api.patch(url(node, "versions/1/"), {"pinned": True}, format="json"),
        outsider_api.delete(url(node, "versions/1/")),
    ]
    assert [r.status_code for r in calls] == [404] * len(calls)
    assert all(r["Content-Type"].startswith("application/json") for r in calls)
    assert Node.objects.filter(parent=folder).count() == 1


def test_anonymous_is_refused(anon_api, root):
    assert anon_api.get(url(root)).status_code == 401


def test_team_member_moves_within_team_but_not_into_own_workspace(teammate_api, teammate, team, owner):
    team_root = workspace_root(team)
    node = make_file(owner, team_root, "a.txt")
    personal = workspace_root(teammate.memberships.get(workspace__kind="personal").workspace)
    response = teammate_api.patch(url(node), {"parent": str(personal.pk)}, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_parent"
    sub = make_folder(owner, team_root, "sub")
    assert teammate_api.patch(url(node), {"parent": str(sub.pk)}, format="json").status_code == 200


def test_read_only_workspace_refuses_writes_but_serves_reads(api, owner, root, owner_workspace):
    node = make_file(owner, root, "a.txt", b"abc")
    owner_workspace.read_only = True
    owner_workspace.save(update_fields=["read_only"])
    attempts = [
        api.patch(url(node), {"name": "b.txt"}, format="json"),
        api.patch(url(node), {"tags": ["x"]}, format="json"),
        api.post(url(root, "children/"), {"type": "folder", "name": "x"}, format="json"),
        api.put(url(root, "children/new.txt"), b"x", content_type="text/plain"),
        api.put(url(node, "content"), b"x", content_type="text/plain"),
        api.post(url(node, "copy/"), {"parent": str(root.pk)}, format="json"),
    ]
    assert [r.status_code for r in attempts] == [403] * len(attempts)
    assert {r.json()["error"]["code"] for r in attempts} == {"workspace_read_only"}
    assert api.get(url(node, "content")).status_code == 200
    assert Node.objects.filter(parent=root).count() == 1


def test_listing_shows_each_childs_own_tags(api, owner, root):
    tagged = make_file(owner, root, "a.txt")
    make_file(owner, root, "b.txt")
    folder = make_folder(owner, root, "c")
    api.patch(url(tagged), {"tags": ["Q4", "finance", 'ünïcode, with "quotes"']}, format="json")
    api.patch(url(folder), {"tags": ["projects"]}, format="json")
    rows = {row["name"]: row for row in api.get(f"/api/v1/nodes/{root.pk}/children/").json()["results"]}
    assert rows["a.txt"]["tags"] == ["Q4", "finance", 'ünïcode, with "quotes"']
    assert rows["b.txt"]["tags"] == []
    assert rows["c"]["tags"] == ["projects"]
