"""Another request changing what a request has already read: the second one runs at the exact point
where a second web process can (between two statements of the first), on SQLite and PostgreSQL
alike. Whatever the order, an acknowledged file is readable, nothing acknowledged disappears, and
the quota equals what the workspace really holds."""

from __future__ import annotations

import pytest
from django.db.models import Sum

from cloudstorage.errors import ServiceError
from disks.store import manifest_open
from files import nodes as nodes_module
from files import versions as versions_module
from files.models import FilesPolicy, FileVersion, Node, QuotaHold
from files.nodes import node_copy
from files.versions import version_delete, version_restore, versions_thin
from tests.files.sharing_helpers import folder, upload


def held(workspace) -> int:
    """What used_bytes must be: every version (the trash's included) and every quota hold."""
    versions = FileVersion.objects.filter(workspace=workspace).aggregate(s=Sum("size"))["s"] or 0
    holds = QuotaHold.objects.filter(workspace=workspace).aggregate(s=Sum("bytes"))["s"] or 0
    return versions + holds


def used(workspace) -> int:
    workspace.refresh_from_db(fields=["used_bytes"])
    return workspace.used_bytes


def readable(node: Node) -> bytes:
    node.refresh_from_db()
    return b"".join(manifest_open(manifest=node.current_version.manifest))


def test_restoring_a_version_dropped_meanwhile_is_a_404_and_changes_nothing(owner, root, owner_workspace, monkeypatch):
    node = upload(owner, root, "a.txt", b"version one " * 500)
    upload(owner, root, "a.txt", b"version two")
    first = FileVersion.objects.get(node=node, number=1)
    real_clone = versions_module.manifest_clone

    def clone_after_a_delete(*, manifest):
        # Another request deletes version 1 after the restore read it.
        version_delete(version=FileVersion.objects.select_related("workspace", "manifest").get(pk=first.pk))
        return real_clone(manifest=manifest)

    monkeypatch.setattr(versions_module, "manifest_clone", clone_after_a_delete)
    with pytest.raises(ServiceError) as refused:
        version_restore(user=owner, node=node, number=1)
    assert refused.value.status_code == 404
    node.refresh_from_db()
    assert node.version == 2 and readable(node) == b"version two"
    assert used(owner_workspace) == held(owner_workspace)


def test_copying_a_file_whose_version_is_thinned_meanwhile_is_a_409_and_changes_nothing(
    owner, root, owner_workspace, monkeypatch
):
    source = upload(owner, root, "src.txt", b"precious " * 1000)
    dest = folder(owner, root, "dest")
    FilesPolicy.objects.create(workspace=owner_workspace, keep_versions=1)
    real_clone = nodes_module.manifest_clone

    def clone_after_a_new_version(*, manifest):
        # Another request uploads a new version of the source; its thinning drops the one read.
        upload(owner, root, "src.txt", b"new content")
        versions_thin(node_id=source.pk)
        return real_clone(manifest=manifest)

    monkeypatch.setattr(nodes_module, "manifest_clone", clone_after_a_new_version)
    with pytest.raises(ServiceError) as refused:
        node_copy(user=owner, node=Node.objects.get(pk=source.pk), parent=dest)
    assert refused.value.status_code == 409 and refused.value.code == "changed_meanwhile"
    assert not Node.objects.filter(parent=dest).exists()
    # (Here the other request ran inside this one's transaction, so its new version went too.)
    assert readable(source) in (b"precious " * 1000, b"new content")
    assert used(owner_workspace) == held(owner_workspace)
    monkeypatch.undo()
    copy = node_copy(user=owner, node=Node.objects.get(pk=source.pk), parent=dest)  # the retry
    assert readable(copy) == readable(source)
