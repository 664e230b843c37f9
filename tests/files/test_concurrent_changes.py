"""Another request changing what a request has already read: the second one runs at the exact point
where a second web process can (between two statements of the first), on SQLite and PostgreSQL
alike. Whatever the order, an acknowledged file is readable, nothing acknowledged disappears, and
the quota equals what the workspace really holds."""

from __future__ import annotations

import io

import pytest
from django.db.models import Sum

from cloudstorage.errors import ServiceError
from disks.models import Manifest
from disks.store import manifest_open
from files import nodes as nodes_module
from files import versions as versions_module
from files.folders import folder_create
from files.models import FilesPolicy, FileVersion, Node, QuotaHold
from files.nodes import node_copy, node_update
from files.trash import node_purge, node_trash
from files.uploads import file_upload
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


class _TrashingBody(io.BytesIO):
    """A request body during whose streaming another request trashes ``folder``."""

    def __init__(self, data: bytes, *, user, folder: Node):
        super().__init__(data)
        self.user, self.folder, self.done = user, folder, False

    def read(self, size=-1):
        if not self.done:
            self.done = True
            node_trash(user=self.user, node=Node.objects.get(pk=self.folder.pk))
        return super().read(size)


def _nothing_lost_nor_leaked(workspace) -> None:
    assert used(workspace) == held(workspace)
    referenced = set(FileVersion.objects.values_list("manifest_id", flat=True))
    assert not Manifest.objects.filter(workspace=workspace, state=Manifest.State.READY).exclude(pk__in=referenced)


@pytest.mark.parametrize("depth", ["the folder itself", "a folder above it"])
def test_an_upload_into_a_folder_trashed_while_it_streams_is_a_409_and_leaves_nothing(
    owner, root, owner_workspace, depth
):
    docs = folder(owner, root, "docs")
    inner = folder(owner, docs, "inner")
    parent = Node.objects.get(pk=(docs if depth == "the folder itself" else inner).pk)  # read by the view
    with pytest.raises(ServiceError) as refused:
        file_upload(
            user=owner, parent=parent, name="late.txt", stream=_TrashingBody(b"L" * 5000, user=owner, folder=docs)
        )
    assert refused.value.status_code == 409 and refused.value.code == "in_trash"
    assert not Node.objects.filter(name="late.txt").exists()
    _nothing_lost_nor_leaked(owner_workspace)
    assert node_purge(user=owner, node=Node(pk=docs.pk))
    _nothing_lost_nor_leaked(owner_workspace)


def test_a_move_or_a_copy_into_a_folder_trashed_meanwhile_is_a_409(owner, root, owner_workspace):
    docs = folder(owner, root, "docs")
    report = upload(owner, root, "report.txt", b"r" * 7000)
    target = Node.objects.get(pk=docs.pk)  # read by the view...
    node_trash(user=owner, node=Node.objects.get(pk=docs.pk))  # ...then another request trashes it
    for move_or_copy in (
        lambda: node_update(user=owner, node=Node.objects.get(pk=report.pk), parent=target),
        lambda: node_copy(user=owner, node=Node.objects.get(pk=report.pk), parent=target),
        lambda: folder_create(user=owner, parent=target, name="new"),
    ):
        with pytest.raises(ServiceError) as refused:
            move_or_copy()
        assert refused.value.code == "in_trash"
    report.refresh_from_db()
    assert report.parent_id == root.pk and report.trashed_in_id is None
    assert node_purge(user=owner, node=Node(pk=docs.pk))
    _nothing_lost_nor_leaked(owner_workspace)
    assert readable(report) == b"r" * 7000


def test_a_move_crossing_another_into_its_folder_is_refused_and_makes_no_cycle(owner, root, monkeypatch):
    """X into Y while another request moves Y into X: checked only before the locks, both moves
    passed and X and Y became each other's parent, cut off from the root (gone from listings, a
    zip of either walking the cycle for ever)."""
    from files.access import node_ancestor_ids

    x, y = folder(owner, root, "Race/X"), folder(owner, root, "Race/Y")
    real_lock = nodes_module.workspace_lock
    other_moves: list = []

    def lock_after_the_other_move(workspace_id):
        if not other_moves:
            # After this request checked that Y is not below X, another moves Y into X.
            other_moves.append(y)
            node_update(user=owner, node=Node.objects.get(pk=y.pk), parent=Node.objects.get(pk=x.pk))
        return real_lock(workspace_id)

    monkeypatch.setattr(nodes_module, "workspace_lock", lock_after_the_other_move)
    with pytest.raises(ServiceError) as refused:
        node_update(user=owner, node=Node.objects.get(pk=x.pk), parent=Node.objects.get(pk=y.pk))
    assert other_moves and (refused.value.status_code, refused.value.code) == (400, "invalid_move")
    x.refresh_from_db()
    y.refresh_from_db()
    assert x.parent_id != y.pk  # (one connection here: the refusal also rolled the other move back)
    for node in (x, y):
        assert root.pk in node_ancestor_ids(node=node)


def test_a_live_item_left_under_a_trashed_folder_is_purged_with_it_and_its_bytes_given_back(
    owner, root, owner_workspace
):
    """What a write that raced the trash left before folders were locked: the purge takes it as a
    member (its versions released, its bytes out of the quota) rather than by cascade."""
    docs = folder(owner, root, "docs")
    stray = upload(owner, docs, "stray.txt", b"s" * 3000)
    node_trash(user=owner, node=Node.objects.get(pk=docs.pk))
    Node.objects.filter(pk=stray.pk).update(trashed_in=None)
    assert node_purge(user=owner, node=Node(pk=docs.pk))
    assert not Node.objects.filter(pk=stray.pk).exists()
    _nothing_lost_nor_leaked(owner_workspace)
