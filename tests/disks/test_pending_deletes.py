"""A dropped copy's object is deleted after the commit (disks/chunks.py: pending_deletes_run). Every
copy of a chunk has the same key on every disk, and a writer puts the bytes before it records the
row: a delete of a live chunk's object must never remove a copy written to that disk again."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest

from disks import chunks
from disks.backends import ObjectMissing, backend_for
from disks.chunks import RepairLease, chunk_store_copies, pending_deletes_run, replica_drop
from disks.crypto import workspace_keys
from disks.models import Disk, PendingDelete, Replica
from disks.repair import chunk_repair
from disks.store import StoreError, manifest_write
from tests.disks.conftest import make_disks, object_get


def _dropped_copy(settings, workspace, rng):
    """A two-disk chunk whose copy on d2 has just been dropped (its object waits for deletion)."""
    d1, d2 = make_disks(settings, 2)
    manifest = manifest_write(workspace=workspace, stream=io.BytesIO(rng.randbytes(3000)))
    chunk = manifest.entries.order_by("seq").first().chunk
    replica_drop(replica=Replica.objects.select_related("chunk", "disk").get(chunk=chunk, disk=d2))
    assert PendingDelete.objects.filter(disk=d2, key=chunk.key).exists()
    return chunk, d1, d2


def _every_ok_copy_has_its_bytes(chunk) -> None:
    for copy in Replica.objects.filter(chunk=chunk, state=Replica.State.OK).select_related("disk"):
        try:
            backend_for(copy.disk).get(chunk.key)
        except ObjectMissing:
            raise AssertionError(f"the copy recorded ok on {copy.disk.name} has no bytes") from None


def test_a_repair_of_the_chunk_while_its_object_is_deleted_leaves_no_copy_without_bytes(
    settings, owner_workspace, rng, monkeypatch
):
    chunk, _, d2 = _dropped_copy(settings, owner_workspace, rng)
    outcomes = []

    class RepairInTheMiddle:
        """d2's backend, with a repair of the chunk (another worker) run between the pending
        delete's "no copy recorded here" check and its delete: it writes d2 again."""

        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def delete(self, key):
            if key == chunk.key and not outcomes:
                outcomes.append(chunk_repair(chunk_id=chunk.pk))
            return self.inner.delete(key)

    real = backend_for
    monkeypatch.setattr(
        chunks, "backend_for", lambda disk: RepairInTheMiddle(real(disk)) if disk.pk == d2.pk else real(disk)
    )
    pending_deletes_run()

    assert outcomes == ["busy"]  # the delete holds the chunk: the repair waits for its next pass
    _every_ok_copy_has_its_bytes(chunk)
    assert not PendingDelete.objects.exists()
    monkeypatch.undo()
    assert chunk_repair(chunk_id=chunk.pk) == "repaired"
    _every_ok_copy_has_its_bytes(chunk)
    assert Replica.objects.filter(chunk=chunk, disk=d2, state=Replica.State.OK).exists()


def test_a_pending_delete_waits_while_the_chunk_is_held(settings, owner_workspace, rng):
    chunk, _, d2 = _dropped_copy(settings, owner_workspace, rng)
    held = RepairLease(chunk.pk)
    assert held.acquire()
    assert pending_deletes_run() == 0
    object_get(d2, chunk.key)  # still there
    held.release()
    assert pending_deletes_run() == 1
    with pytest.raises(FileNotFoundError):
        object_get(d2, chunk.key)


def test_an_upload_topping_up_an_existing_chunk_waits_for_the_chunks_lease(settings, owner_workspace, rng, monkeypatch):
    chunk, d1, d2 = _dropped_copy(settings, owner_workspace, rng)
    pending_deletes_run()
    blob = backend_for(Replica.objects.get(chunk=chunk).disk).get(chunk.key)
    held = RepairLease(chunk.pk)
    assert held.acquire()
    monkeypatch.setattr(RepairLease, "WAIT", 0.2)
    with pytest.raises(StoreError):
        chunk_store_copies(chunk=chunk, blob=blob, workspace=owner_workspace, want=1, exclude={d1.pk}, fresh=False)
    assert not Replica.objects.filter(chunk=chunk, disk=d2).exists()
    held.release()
    written = chunk_store_copies(
        chunk=chunk, blob=blob, workspace=owner_workspace, want=1, exclude={d1.pk}, fresh=False
    )
    assert written == [Disk.objects.get(pk=d2.pk)]
    _every_ok_copy_has_its_bytes(chunk)
    assert workspace_keys(workspace_id=owner_workspace.pk).decrypt(object_get(d2, chunk.key), object_key=chunk.key)


def test_dropping_a_copy_as_it_was_read_keeps_it_once_it_was_rewritten(settings, owner_workspace, rng):
    """A repair that read a copy as bad drops nothing if a writer has since rewritten it in place
    and recorded it ok (its object would have been deleted after the commit)."""
    d1, d2 = make_disks(settings, 2)
    manifest = manifest_write(workspace=owner_workspace, stream=io.BytesIO(rng.randbytes(3000)))
    chunk = manifest.entries.order_by("seq").first().chunk
    seen = Replica.objects.select_related("chunk", "disk").get(chunk=chunk, disk=d2)
    seen.state = Replica.State.BAD  # as read by the repair, before the rewrite recorded it ok
    replica_drop(replica=seen)
    assert Replica.objects.filter(chunk=chunk, disk=d2, state=Replica.State.OK).exists()
    assert not PendingDelete.objects.exists()


@pytest.mark.parametrize("when", ["before", "after"])
def test_gc_leaves_a_chunk_being_relocated_and_collects_it_after_leaving_nothing_behind(
    transactional_db, settings, owner_workspace, rng, monkeypatch, when
):
    """A deleted file's chunk waits for GC while a plan change relocates it: GC's collect, run just
    before or just after the relocation puts the new copy on the B disk, leaves the chunk to its
    next run (the relocation holds the chunk's lease), and that run deletes it everywhere (before:
    collected mid-write, the new copy's object stayed on the B disk with no row, for good). Real
    commits, as in production."""
    from pathlib import Path

    from billing.services import _plan_set
    from disks.backends import LocalBackend
    from disks.chunks import chunk_collect, chunk_id_of
    from disks.gc import chunks_gc
    from disks.store import manifest_release
    from tests.disks.conftest import stored_keys

    make_disks(settings, 2, category="A", prefix="a")
    (b1,) = make_disks(settings, 1, category="B", prefix="b")  # one disk: its put runs in this thread
    manifest = manifest_write(workspace=owner_workspace, stream=io.BytesIO(rng.randbytes(3000)))
    manifest_release(manifest=manifest)

    real_put = LocalBackend.put
    collected = []

    def put_while_gc_runs(self, key, data):
        gc_now = Path(self.root) == Path(b1.path) and not collected
        if gc_now and when == "before":
            collected.append(chunk_collect(chunk_id=chunk_id_of(key)))
        real_put(self, key, data)
        if gc_now and when == "after":
            collected.append(chunk_collect(chunk_id=chunk_id_of(key)))

    monkeypatch.setattr(LocalBackend, "put", put_while_gc_runs)
    _plan_set(owner_workspace, 10)  # relocated to B on commit (Celery eager)
    monkeypatch.setattr(LocalBackend, "put", real_put)

    chunks_gc(grace=timedelta(0))
    assert not stored_keys(b1), "an object of a collected chunk stays on the B disk for good"
    assert not Replica.objects.exists() and not PendingDelete.objects.exists()
    assert collected == [False]  # left to the next run while the relocation held the chunk
