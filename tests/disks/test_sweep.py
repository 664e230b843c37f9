"""The sweep of a disk brought back from failed: objects no copy refers to any more are deleted once
older than the grace period; referenced objects, fresh writes and probe objects are left alone."""

from __future__ import annotations

import io
import os
import time
import uuid
from pathlib import Path

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import Workspace
from disks.backends import MARKER, backend_for
from disks.gc import disk_sweep
from disks.models import Chunk, Disk, PendingDelete, Placement, Replica
from disks.repair import chunk_repair
from disks.services import disk_set_status
from disks.store import manifest_write
from tests.disks.conftest import make_disks, make_s3_disk, object_get, object_put, read_all, stored_keys
from tests.disks.test_admin import run_action
from tests.factories import UserFactory

TWO_HOURS = 2 * 3600


@pytest.fixture
def admin_client(db) -> Client:
    client = Client()
    client.force_login(UserFactory(email="operator@example.com", is_staff=True, is_superuser=True))
    return client


def age_all(disk: Disk, seconds: int) -> None:
    """Make every file on a local disk look written ``seconds`` ago."""
    then = time.time() - seconds
    for path in Path(disk.path).rglob("*"):
        if path.is_file():
            os.utime(path, (then, then))


def stray_key(workspace) -> str:
    """A chunk-shaped key no chunk row has (what a write that crashed before its row leaves)."""
    chunk_id = uuid.uuid4()
    return f"ws/{workspace.pk}/{chunk_id.hex[:2]}/{chunk_id.hex}"


def half_dropped_while_failed(workspace, rng) -> tuple:
    """A file with copies on the primary disk; the primary fails and half its chunks are repaired
    (their copies on it dropped, nothing deleted there) before an operator brings it back."""
    data = rng.randbytes(30_000)
    manifest = manifest_write(workspace=workspace, stream=io.BytesIO(data))
    disk = Placement.objects.get(workspace=workspace, rank=0).disk
    disk_set_status(disk=disk, status=Disk.Status.FAILED)
    chunks = list(Chunk.objects.filter(replicas__disk=disk).order_by("pk"))
    assert len(chunks) >= 4
    for chunk in chunks[: len(chunks) // 2]:
        assert chunk_repair(chunk_id=chunk.pk) == "repaired"
    dropped = {c.key for c in chunks[: len(chunks) // 2]}
    kept = {c.key for c in chunks[len(chunks) // 2 :]}
    assert dropped <= set(stored_keys(disk))  # the orphans are still there
    return manifest, data, disk, dropped, kept


def test_reactivating_a_failed_disk_sweeps_only_old_unreferenced_objects(
    owner_workspace, three_disks, rng, django_capture_on_commit_callbacks
):
    manifest, data, disk, dropped, kept = half_dropped_while_failed(owner_workspace, rng)
    backend_for(disk).put(".probe/leftover", b"probe")
    old_stray = stray_key(owner_workspace)
    backend_for(disk).put(old_stray, b"crashed write")
    age_all(disk, TWO_HOURS)
    fresh_stray = stray_key(owner_workspace)
    backend_for(disk).put(fresh_stray, b"in-flight write, row not committed yet")
    before = {key: object_get(disk, key) for key in kept}

    with django_capture_on_commit_callbacks(execute=True):
        disk_set_status(disk=disk, status=Disk.Status.ACTIVE)

    left = set(stored_keys(disk))
    assert not dropped & left and old_stray not in left
    assert {key: object_get(disk, key) for key in kept} == before  # referenced: byte-identical
    assert fresh_stray in left  # within the grace period
    assert (Path(disk.path) / ".probe" / "leftover").exists()
    assert read_all(manifest) == data
    # Idempotent: a second run finds nothing more to delete.
    again = disk_sweep(disk=disk)
    assert again["deleted"] == 0 and again["referenced"] == len(kept) and again["recent"] == 1


def test_sweep_without_grace_never_deletes_a_referenced_object(owner_workspace, three_disks, rng):
    files = [(manifest_write(workspace=owner_workspace, stream=io.BytesIO(d)), d) for d in (rng.randbytes(9000),) * 2]
    files.append((manifest_write(workspace=owner_workspace, stream=io.BytesIO(rng.randbytes(5000))), None))
    before = {disk.pk: {key: object_get(disk, key) for key in stored_keys(disk)} for disk in three_disks}
    for disk in three_disks:
        counts = disk_sweep(disk=disk, grace_seconds=0)
        assert counts["deleted"] == 0 and counts["referenced"] == Replica.objects.filter(disk=disk).count()
    after = {disk.pk: {key: object_get(disk, key) for key in stored_keys(disk)} for disk in three_disks}
    assert after == before
    assert all(read_all(m) == d for m, d in files if d is not None)


def test_sweep_leaves_a_failed_disk_alone(owner_workspace, three_disks, rng):
    _manifest, _data, disk, dropped, _kept = half_dropped_while_failed(owner_workspace, rng)
    age_all(disk, TWO_HOURS)
    assert disk_sweep(disk=disk, grace_seconds=0)["deleted"] == 0
    assert dropped <= set(stored_keys(disk))


def test_sweep_action_queues_a_sweep_and_logs_it(
    admin_client, owner_workspace, three_disks, rng, django_capture_on_commit_callbacks
):
    manifest, data, disk, dropped, kept = half_dropped_while_failed(owner_workspace, rng)
    Disk.objects.filter(pk=disk.pk).update(status=Disk.Status.ACTIVE)  # brought back behind the services' back
    age_all(disk, TWO_HOURS)
    with django_capture_on_commit_callbacks(execute=True):
        response = run_action(admin_client, "sweep", [disk])
    assert "Sweep queued" in response.content.decode()
    assert set(stored_keys(disk)) == kept
    assert LogEntry.objects.filter(object_id=str(disk.pk), change_message__contains="Sweep").exists()
    assert read_all(manifest) == data


@pytest.fixture
def endpoint(s3_server) -> str:
    return s3_server


def test_s3_disk_back_from_failed_is_swept_of_unreferenced_objects(
    endpoint, owner_workspace, rng, django_capture_on_commit_callbacks
):
    for name in ("s3-a", "s3-b", "s3-c"):
        make_s3_disk(endpoint, name)
    manifest, data, disk, dropped, kept = half_dropped_while_failed(owner_workspace, rng)
    before = {key: object_get(disk, key) for key in kept}
    with django_capture_on_commit_callbacks(execute=True):
        disk_set_status(disk=disk, status=Disk.Status.ACTIVE)
    # Just written (S3 cannot backdate an object): the automatic sweep keeps everything for now.
    assert dropped <= set(stored_keys(disk))
    counts = disk_sweep(disk=disk, grace_seconds=0)
    assert counts["deleted"] == len(dropped) and counts["referenced"] == len(kept)
    assert set(stored_keys(disk)) == kept
    assert {key: object_get(disk, key) for key in kept} == before
    assert read_all(manifest) == data


def _bookkeeping() -> dict:
    """What a database backup holds of the chunk store's bookkeeping (the rows the scenario below
    changes; a pg_dump or SQLite backup copies every row)."""
    return {
        "replicas": list(Replica.objects.values()),
        "pending": list(PendingDelete.objects.values()),
        "placements": list(Placement.objects.values()),
        "disks": list(Disk.objects.values("pk", "used_bytes", "status")),
        "workspaces": list(Workspace.objects.values("pk", "plan_gb")),
    }


def _restore(snapshot: dict) -> None:
    """The database replaced by the backup (manage.py restore): those rows as they were then."""
    Replica.objects.all().delete()
    PendingDelete.objects.all().delete()
    Placement.objects.all().delete()
    Replica.objects.bulk_create([Replica(**row) for row in snapshot["replicas"]])
    PendingDelete.objects.bulk_create([PendingDelete(**row) for row in snapshot["pending"]])
    Placement.objects.bulk_create([Placement(**row) for row in snapshot["placements"]])
    for row in snapshot["disks"]:
        Disk.objects.filter(pk=row["pk"]).update(used_bytes=row["used_bytes"], status=row["status"])
    for row in snapshot["workspaces"]:
        Workspace.objects.filter(pk=row["pk"]).update(plan_gb=row["plan_gb"])


def test_copies_moved_after_the_backup_are_recorded_at_restore_and_no_sweep_deletes_them(
    settings, owner_workspace, rng, django_capture_on_commit_callbacks
):
    """A file on the category A disks; the nightly backup; a plan change moves both copies to the B
    disks and deletes the A objects; the database is lost and restored from the backup, whose rows
    name the A copies only. Every byte is still on B: the restore's reconciliation records those
    copies, and the sweeps and repairs after it keep them (before: the file was unreadable, and
    any sweep of B deleted the last copies as unknown objects)."""
    from billing.services import _plan_set
    from disks.gc import disks_reconcile

    a1, a2 = make_disks(settings, 2, category="A", prefix="a")
    b1, b2 = make_disks(settings, 2, category="B", prefix="b")
    data = rng.randbytes(20_000)
    manifest = manifest_write(workspace=owner_workspace, stream=io.BytesIO(data))
    snapshot = _bookkeeping()  # manage.py backup
    with django_capture_on_commit_callbacks(execute=True):
        _plan_set(owner_workspace, 10)  # relocated to category B on commit
    moved = set(stored_keys(b1)) | set(stored_keys(b2))
    assert moved and not stored_keys(a1) and not stored_keys(a2)

    _restore(snapshot)
    counts = disks_reconcile()  # what manage.py restore runs before the service starts
    assert counts["b1"]["adopted"] + counts["b2"]["adopted"] == len(stored_keys(b1)) + len(stored_keys(b2))
    for disk in (b1, b2):
        age_all(disk, TWO_HOURS)
    with django_capture_on_commit_callbacks(execute=True):
        for disk in (a1, a2, b1, b2):
            disk_sweep(disk=Disk.objects.get(pk=disk.pk))
    assert set(stored_keys(b1)) | set(stored_keys(b2)) == moved
    assert read_all(manifest) == data


def test_a_sweep_keeps_a_verified_copy_whose_row_was_lost_when_the_chunk_lacks_copies(
    owner_workspace, three_disks, rng
):
    manifest = manifest_write(workspace=owner_workspace, stream=io.BytesIO(rng.randbytes(5000)))
    chunk = Chunk.objects.filter(references__manifest=manifest).first()
    lost = Replica.objects.filter(chunk=chunk).select_related("disk").first()
    Replica.objects.filter(pk=lost.pk).delete()  # the row is gone, the object is not
    age_all(lost.disk, TWO_HOURS)
    counts = disk_sweep(disk=lost.disk)
    assert counts["adopted"] == 1 and counts["deleted"] == 0
    assert Replica.objects.filter(chunk=chunk, disk=lost.disk, state=Replica.State.OK).exists()
    # A stray that is not exactly its chunk is no copy: it still goes.
    object_put(lost.disk, chunk.key, b"not this chunk")
    Replica.objects.filter(chunk=chunk, disk=lost.disk).delete()
    age_all(lost.disk, TWO_HOURS)
    assert disk_sweep(disk=lost.disk)["deleted"] == 1


def _moved_after_the_backup(settings, workspace, rng, capture) -> tuple:
    """A file on the A disks; the nightly backup; B disks attached and the plan changed (both copies
    moved to B, the A objects deleted); the database lost and restored from the backup, which
    knows neither B disk, and reconciled (nothing of B recorded: it does not know them)."""
    from billing.services import _plan_set
    from disks.gc import disks_reconcile

    a1, a2 = make_disks(settings, 2, category="A", prefix="a")
    data = rng.randbytes(20_000)
    manifest = manifest_write(workspace=workspace, stream=io.BytesIO(data))
    snapshot = _bookkeeping()
    b1, b2 = make_disks(settings, 2, category="B", prefix="b")
    with capture(execute=True):
        _plan_set(workspace, 10)
    moved = set(stored_keys(b1)) | set(stored_keys(b2))
    assert moved and not stored_keys(a1) and not stored_keys(a2)
    Replica.objects.filter(disk__in=[b1, b2]).delete()
    PendingDelete.objects.filter(disk__in=[b1, b2]).delete()
    Placement.objects.filter(disk__in=[b1, b2]).delete()
    Disk.objects.filter(pk__in=[b1.pk, b2.pk]).delete()
    _restore(snapshot)
    disks_reconcile()
    return data, manifest, moved, (b1, b2)


def test_a_sweep_keeps_objects_whose_recorded_copies_elsewhere_are_gone(
    settings, owner_workspace, rng, django_capture_on_commit_callbacks
):
    """The B disks re-attached as new disks (their markers removed) after a restore: the restored
    rows name two good copies on the A disks, whose objects were deleted after the backup. The
    sweep reads those copies before deleting anything as an extra, finds them gone, and records the
    B objects instead (before: it deleted every one, the file's last copies)."""
    from disks.backends import MARKER
    from disks.services import disk_create_local

    data, manifest, moved, (b1, b2) = _moved_after_the_backup(
        settings, owner_workspace, rng, django_capture_on_commit_callbacks
    )
    again = []
    for old in (b1, b2):
        Path(old.path, MARKER).unlink()
        again.append(disk_create_local(name=old.name, path=old.path, category="B", capacity_bytes=old.capacity_bytes))
    for disk in again:
        age_all(disk, TWO_HOURS)
        counts = disk_sweep(disk=disk)
        assert counts["deleted"] == 0 and counts["adopted"] == len(stored_keys(disk))
    assert set(stored_keys(again[0])) | set(stored_keys(again[1])) == moved
    assert read_all(manifest) == data
    # The restored rows of the copies that are gone are bad now: repair replaces them.
    assert not Replica.objects.filter(disk__category="A", state=Replica.State.OK).exists()


def test_a_disk_whose_marker_the_database_does_not_know_is_refused_by_default_and_nothing_recorded(
    settings, owner_workspace, rng, django_capture_on_commit_callbacks
):
    """The same B folders attached without the operator's word that they are ours returning: the
    marker could as well be another installation's disk's, so the attach is refused naming the
    disk id and the --returning way on; no disk, no copy is recorded and no object is touched
    (before: attached silently as that disk and its copies recorded)."""
    from disks.services import DiskProbeError, disk_create_local

    data, manifest, moved, (b1, b2) = _moved_after_the_backup(
        settings, owner_workspace, rng, django_capture_on_commit_callbacks
    )
    before = {key: object_get(b1, key) for key in stored_keys(b1)}
    with django_capture_on_commit_callbacks(execute=True) as queued:
        with pytest.raises(DiskProbeError, match=f"{b1.pk}.*does not know.*--returning"):
            disk_create_local(name=b1.name, path=b1.path, category="B", capacity_bytes=b1.capacity_bytes)
    assert not queued
    assert not Disk.objects.filter(pk=b1.pk).exists() and not Disk.objects.filter(name=b1.name).exists()
    assert not Replica.objects.filter(disk__category="B").exists()
    assert Path(b1.path, MARKER).read_text().strip() == str(b1.pk)
    assert {key: object_get(b1, key) for key in stored_keys(b1)} == before


def test_a_disk_the_restored_database_does_not_know_is_attached_again_as_itself_when_returning(
    settings, owner_workspace, rng, django_capture_on_commit_callbacks
):
    """The operator attaches the B folders again as they are, saying they are ours returning after
    the restore (their markers name disks the restored database lost): each is attached under its
    own id and its copies are recorded, so the file reads and no sweep deletes them."""
    from disks.services import disk_create_local

    data, manifest, moved, (b1, b2) = _moved_after_the_backup(
        settings, owner_workspace, rng, django_capture_on_commit_callbacks
    )
    with django_capture_on_commit_callbacks(execute=True):
        again = [
            disk_create_local(
                name=old.name, path=old.path, category="B", capacity_bytes=old.capacity_bytes, returning=True
            )
            for old in (b1, b2)
        ]
    assert [disk.pk for disk in again] == [b1.pk, b2.pk]
    for disk in again:
        recorded = Replica.objects.filter(disk=disk, state=Replica.State.OK).select_related("chunk")
        assert {r.chunk.key for r in recorded} == set(stored_keys(disk))
        disk.refresh_from_db()
        assert disk.used_bytes == sum(r.chunk.stored_size for r in recorded)
    assert read_all(manifest) == data
    for disk in Disk.objects.all():
        age_all(disk, TWO_HOURS)
        assert disk_sweep(disk=disk)["deleted"] == 0
    assert set(stored_keys(b1)) | set(stored_keys(b2)) == moved


def test_a_sweep_reads_the_chunks_and_the_workspace_key_once_per_batch(owner_workspace, three_disks, rng):
    """Every row of a file's copies on one disk lost (a restore from an older backup), its objects
    still there: the sweep verifies and records each of them, reading the chunks and opening the
    workspace's data key once for the batch, not again for every object."""
    manifest = manifest_write(workspace=owner_workspace, stream=io.BytesIO(rng.randbytes(30_000)))
    disk = Placement.objects.get(workspace=owner_workspace, rank=0).disk
    lost = Replica.objects.filter(disk=disk).count()
    assert lost >= 4
    Replica.objects.filter(disk=disk).delete()
    age_all(disk, TWO_HOURS)
    with CaptureQueriesContext(connection) as captured:
        counts = disk_sweep(disk=disk)
    assert counts["adopted"] == lost and counts["deleted"] == 0
    sql = [query["sql"] for query in captured]
    assert sum('"disks_datakey"' in text for text in sql) == 1
    assert sum('"disks_chunk"."digest"' in text for text in sql) == 1
    assert Replica.objects.filter(disk=disk, state=Replica.State.OK).count() == lost
    assert read_all(manifest)
