"""A disk's used_bytes is what its recorded copies and its pending deletes take, whatever dies or
fails on the way: nothing recomputes it, so bytes counted and never given back make a disk look
fuller for good (placement skips it, capacity alerts fire, standbys come in, and at last it refuses
writes while holding nothing)."""

from __future__ import annotations

import io
import os
import time
from datetime import timedelta
from pathlib import Path

from django.core.cache import cache
from django.db.models import Sum

from disks.backends import BackendError, LocalBackend
from disks.chunks import pending_deletes_run, replica_drop
from disks.gc import chunks_gc, disk_sweep
from disks.models import Chunk, Disk, PendingDelete, Replica
from disks.repair import chunk_repair, replicas_repair
from disks.services import disk_set_status
from disks.store import manifest_release, manifest_write
from tests.disks.conftest import make_disks


def used_and_recorded(disk: Disk) -> tuple[int, int]:
    disk.refresh_from_db()
    copies = Replica.objects.filter(disk=disk).aggregate(total=Sum("chunk__stored_size"))["total"] or 0
    pending = PendingDelete.objects.filter(disk=disk).aggregate(total=Sum("size"))["total"] or 0
    return disk.used_bytes, copies + pending


def age_all(disk: Disk, seconds: int = 7200) -> None:
    then = time.time() - seconds
    for path in Path(disk.path).rglob("*"):
        if path.is_file():
            os.utime(path, (then, then))


def deletes_fail_on(monkeypatch, disk: Disk):
    """Deleting from ``disk`` fails with an I/O error until the returned function is called."""
    real_delete = LocalBackend.delete

    def failing(self, key):
        if Path(self.root) == Path(disk.path):
            raise BackendError(f"{self.root}: [Errno 5] Input/output error")
        return real_delete(self, key)

    monkeypatch.setattr(LocalBackend, "delete", failing)
    return lambda: monkeypatch.setattr(LocalBackend, "delete", real_delete)


def test_a_pending_delete_dropped_while_its_disk_is_failed_gives_its_bytes_back(
    owner_workspace, three_disks, rng, monkeypatch
):
    """A deleted file's objects could not be removed from d1 (an I/O error: the deletes stay
    pending, their bytes counted). d1 fails, GC drops its pending deletes; the operator brings it
    back and its sweep removes the objects: it holds nothing and counts nothing (before: it counted
    the file's bytes for good)."""
    manifest = manifest_write(workspace=owner_workspace, stream=io.BytesIO(rng.randbytes(40_000)))
    disk = Disk.objects.filter(replicas__chunk__references__manifest=manifest).distinct().first()
    restore_delete = deletes_fail_on(monkeypatch, disk)
    manifest_release(manifest=manifest)
    chunks_gc(grace=timedelta(0))
    assert not Chunk.objects.exists() and PendingDelete.objects.filter(disk=disk).exists()

    disk_set_status(disk=disk, status=Disk.Status.FAILED)
    chunks_gc(grace=timedelta(0))
    restore_delete()
    disk_set_status(disk=Disk.objects.get(pk=disk.pk), status=Disk.Status.ACTIVE)
    age_all(disk)
    disk_sweep(disk=Disk.objects.get(pk=disk.pk))

    assert not [p for p in Path(disk.path, "ws").rglob("*") if p.is_file()]
    assert used_and_recorded(disk) == (0, 0)


class WorkerKilled(BaseException):
    """The worker process dies (SIGKILL, OOM): nothing after this point of the task runs."""


def test_a_repair_killed_between_its_write_and_its_record_counts_the_copy_once(
    owner_workspace, three_disks, rng, monkeypatch
):
    """A repair writes a chunk's new copy to the spare disk and its worker is killed before the
    copy is recorded; the next runs finish the job. The spare disk counts the copy once (before:
    twice, for good: the first reservation belonged to no row)."""
    manifest_write(workspace=owner_workspace, stream=io.BytesIO(rng.randbytes(3000)))
    holders = set(Replica.objects.values_list("disk_id", flat=True))
    spare = next(d for d in three_disks if d.pk not in holders)
    disk_set_status(disk=next(d for d in three_disks if d.pk in holders), status=Disk.Status.FAILED)

    real_put = LocalBackend.put
    killed = []

    def put_then_die(self, key, data):
        real_put(self, key, data)
        if Path(self.root) == Path(spare.path) and key.startswith("ws/") and not killed:
            killed.append(key)
            raise WorkerKilled()

    monkeypatch.setattr(LocalBackend, "put", put_then_die)
    try:
        replicas_repair()
    except WorkerKilled:
        pass
    monkeypatch.setattr(LocalBackend, "put", real_put)
    assert killed
    cache.clear()  # the dead worker's repair lease expires

    for _ in range(3):
        replicas_repair()
    chunks_gc(grace=timedelta(0))
    age_all(spare)
    disk_sweep(disk=Disk.objects.get(pk=spare.pk))

    used, recorded = used_and_recorded(spare)
    assert used == recorded > 0
    assert not Replica.objects.exclude(state=Replica.State.OK).filter(disk__status=Disk.Status.ACTIVE).exists()


def test_a_pending_delete_of_a_copy_written_there_again_gives_its_bytes_back(
    settings, owner_workspace, rng, monkeypatch
):
    """A dropped copy's object could not be deleted yet; repair writes the chunk to that disk again
    (its own bytes reserved), and the pending delete is then forgotten: its bytes go with it
    (before: the disk counted the chunk twice, for good)."""
    _d1, d2 = make_disks(settings, 2)
    manifest = manifest_write(workspace=owner_workspace, stream=io.BytesIO(rng.randbytes(3000)))
    chunk = manifest.entries.order_by("seq").first().chunk
    restore_delete = deletes_fail_on(monkeypatch, d2)
    replica_drop(replica=Replica.objects.select_related("chunk", "disk").get(chunk=chunk, disk=d2))
    assert PendingDelete.objects.filter(disk=d2, key=chunk.key).exists()
    assert chunk_repair(chunk_id=chunk.pk) == "repaired"
    restore_delete()
    pending_deletes_run()
    assert not PendingDelete.objects.exists()
    assert Replica.objects.get(chunk=chunk, disk=d2).state == Replica.State.OK
    used, recorded = used_and_recorded(d2)
    assert used == recorded > 0
