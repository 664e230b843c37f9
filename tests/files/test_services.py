"""The namespace's core writes: names, folders, uploads, versions, quota."""

from __future__ import annotations

import io

import pytest

from cloudstorage.errors import ServiceError
from disks.store import manifest_open
from files.folders import folder_create, folder_ensure
from files.models import FileVersion, Node
from files.trash import node_trash
from files.uploads import file_upload, file_upload_version
from files.versions import version_restore


def content_of(node: Node) -> bytes:
    node.refresh_from_db()
    return b"".join(manifest_open(manifest=node.current_version.manifest))


@pytest.mark.parametrize("bad", ["", " ", ".", "..", "a/b", "a\\b", "a\0b", "a\nb", "x" * 256, "é" * 128, " lead"])
def test_bad_names_are_refused_and_change_nothing(owner, root, bad):
    before = Node.objects.count()
    with pytest.raises(ServiceError) as caught:
        folder_create(user=owner, parent=root, name=bad)
    assert caught.value.code == "invalid_name"
    assert caught.value.status_code == 400
    assert Node.objects.count() == before


def test_sibling_names_are_unique_case_insensitively_but_case_is_kept(owner, root):
    folder = folder_create(user=owner, parent=root, name="Reports")
    assert folder.name == "Reports"
    with pytest.raises(ServiceError) as caught:
        folder_create(user=owner, parent=root, name="reports")
    assert caught.value.status_code == 409


def test_upload_twice_makes_a_second_version_and_counts_both(owner, root, owner_workspace):
    first = file_upload(user=owner, parent=root, name="a.txt", stream=io.BytesIO(b"one"))
    second = file_upload(user=owner, parent=root, name="A.txt", stream=io.BytesIO(b"second"))
    assert first.node_id == second.node_id
    assert (first.number, second.number) == (1, 2)
    assert content_of(second.node) == b"second"
    owner_workspace.refresh_from_db()
    assert owner_workspace.used_bytes == 3 + 6


def test_rollback_makes_a_new_version_equal_to_the_old_one(owner, root):
    v1 = file_upload(user=owner, parent=root, name="doc.md", stream=io.BytesIO(b"# first"))
    file_upload_version(user=owner, node=v1.node, stream=io.BytesIO(b"# second"))
    v3 = version_restore(user=owner, node=v1.node, number=1)
    assert v3.number == 3 and v3.restored_from == 1
    assert content_of(v1.node) == b"# first"
    assert list(FileVersion.objects.filter(node=v1.node).values_list("number", flat=True)) == [3, 2, 1]


def test_over_quota_upload_is_refused_before_storing_and_leaves_nothing(owner, root, owner_workspace):
    owner_workspace.used_bytes = owner_workspace.quota_bytes - 10
    owner_workspace.save(update_fields=["used_bytes"])
    with pytest.raises(ServiceError) as caught:
        file_upload(user=owner, parent=root, name="big.bin", stream=io.BytesIO(b"x" * 11), size=11)
    assert caught.value.code == "quota_exceeded" and caught.value.status_code == 413
    with pytest.raises(ServiceError):
        file_upload(user=owner, parent=root, name="big.bin", stream=io.BytesIO(b"x" * 11))
    owner_workspace.refresh_from_db()
    assert owner_workspace.used_bytes == owner_workspace.quota_bytes - 10
    assert not Node.objects.filter(name="big.bin").exists()


def test_folder_ensure_creates_missing_folders_once(owner, root):
    leaf = folder_ensure(user=owner, parent=root, names=["a", "b", "c"])
    again = folder_ensure(user=owner, parent=root, names=["A", "b", "c"])
    assert leaf.pk == again.pk
    assert Node.objects.filter(workspace=root.workspace, kind="folder").count() == 4


def test_trash_hides_the_subtree_and_frees_the_name(owner, root):
    folder = folder_ensure(user=owner, parent=root, names=["docs", "inner"])
    node_trash(user=owner, node=folder.parent)
    assert Node.objects.filter(trashed_in=folder.parent).count() == 2
    folder_create(user=owner, parent=root, name="docs")
