"""Transparent reads over bad copies, draining, the scheduled scrub, garbage collection, remapping."""

from __future__ import annotations

import io
from datetime import timedelta

from django.utils import timezone

from disks import tasks
from disks.chunks import readable_replicas
from disks.gc import chunks_gc
from disks.models import Chunk, Disk, Manifest, ManifestChunk, PendingDelete, Placement, Replica
from disks.repair import disk_drain
from disks.scrub import scrub_batch_size
from disks.store import manifest_release, manifest_write, manifest_writer
from tests.disks.conftest import good_copies, make_disks, object_delete, object_flip_byte, read_all, stored_keys


def test_read_survives_a_corrupt_copy_and_queues_its_repair(
    owner_workspace, three_disks, rng, django_capture_on_commit_callbacks
):
    data = rng.randbytes(20_000)
    manifest = manifest_write(workspace=owner_workspace, stream=io.BytesIO(data))
    chunk = manifest.entries.order_by("seq")[3].chunk
    replica = readable_replicas(chunk=chunk)[0]  # the copy a read tries first
    object_flip_byte(replica.disk, chunk.key, rng)
    with django_capture_on_commit_callbacks() as queued:
        assert read_all(manifest) == data
    replica.refresh_from_db()
    assert replica.state == Replica.State.BAD and replica.error.startswith("corrupt")
    assert len(queued) == 1  # the repair, queued on commit
    queued[0]()  # what the worker does with it (tests run Celery eagerly)
    assert len(good_copies(chunk)) == 2
    assert read_all(manifest) == data


def test_read_survives_a_missing_copy_and_queues_its_repair(
    owner_workspace, three_disks, rng, django_capture_on_commit_callbacks
):
    data = rng.randbytes(20_000)
    manifest = manifest_write(workspace=owner_workspace, stream=io.BytesIO(data))
    for entry in manifest.entries.select_related("chunk"):
        replica = readable_replicas(chunk=entry.chunk)[0]
        object_delete(replica.disk, entry.chunk.key)
    with django_capture_on_commit_callbacks(execute=True) as queued:
        assert read_all(manifest) == data
    assert len(queued) == 1  # one repair pass for every chunk that lost a copy, not a task each
    assert all(len(good_copies(e.chunk)) == 2 for e in manifest.entries.select_related("chunk"))
    assert not Replica.objects.filter(state=Replica.State.BAD).exists()


def test_draining_a_disk_keeps_every_file_readable_and_empties_it(settings, owner_workspace, rng):
    disks = make_disks(settings, 3)
    files = [(rng.randbytes(rng.choice((10, 3000, 9000))), None) for _ in range(20)]
    files = [(data, manifest_write(workspace=owner_workspace, stream=io.BytesIO(data))) for data, _ in files]
    retiring = disks[0]
    holding = Replica.objects.filter(disk=retiring).count()
    assert holding
    slices = 0
    while True:
        result = disk_drain(disk=retiring, limit=5)
        slices += 1
        # Between slices, every file reads back whole.
        assert all(read_all(m) == data for data, m in files)
        if not result["left"]:
            break
    assert slices > 2
    retiring.refresh_from_db()
    assert retiring.status == Disk.Status.DRAINING
    assert retiring.used_bytes == 0 and not stored_keys(retiring)
    assert not Placement.objects.filter(disk=retiring).exists()
    assert all(set(good_copies(c)) == {disks[1].pk, disks[2].pk} for c in Chunk.objects.all())


def test_beat_drain_job_works_on_every_draining_disk(settings, owner_workspace, rng):
    settings.CLOUDSTORAGE_REPAIR_BATCH = 1000
    disks = make_disks(settings, 3)
    data = rng.randbytes(10_000)
    manifest = manifest_write(workspace=owner_workspace, stream=io.BytesIO(data))
    Disk.objects.filter(pk=disks[0].pk).update(status=Disk.Status.DRAINING)
    result = tasks.disks_drain.delay().get()
    assert result[disks[0].name]["left"] == 0
    assert read_all(manifest) == data
    assert tasks.disks_drain.delay().get() == {}  # nothing left to do


def test_scheduled_scrub_verifies_every_copy_once_per_period(settings, owner_workspace, three_disks, rng):
    settings.CLOUDSTORAGE_SCRUB_PERIOD = 4 * 3600
    settings.CLOUDSTORAGE_SCRUB_INTERVAL = 3600  # so four runs per period
    manifest_write(workspace=owner_workspace, stream=io.BytesIO(rng.randbytes(30_000)))
    long_ago = timezone.now() - timedelta(days=60)
    Replica.objects.update(verified_at=long_ago)
    total = Replica.objects.count()
    assert scrub_batch_size() == -(-total // 4)
    for run in range(4):
        result = tasks.replicas_scrub.delay().get()
        assert result["checked"] == scrub_batch_size()
        if run < 3:
            assert Replica.objects.filter(verified_at=long_ago).exists()
    assert not Replica.objects.filter(verified_at=long_ago).exists()


def test_gc_waits_for_the_grace_period_and_keeps_what_any_manifest_references(
    settings, owner_workspace, three_disks, rng, django_capture_on_commit_callbacks
):
    shared = rng.randbytes(8000)
    kept = manifest_write(workspace=owner_workspace, stream=io.BytesIO(shared))
    # A second content that starts like the first: its leading chunks are shared.
    gone = manifest_write(workspace=owner_workspace, stream=io.BytesIO(shared + rng.randbytes(8000)))
    only_gone = set(
        ManifestChunk.objects.filter(manifest=gone)
        .exclude(chunk__in=ManifestChunk.objects.filter(manifest=kept).values("chunk"))
        .values_list("chunk_id", flat=True)
    )
    assert only_gone
    manifest_release(manifest=gone)
    with django_capture_on_commit_callbacks(execute=True):
        assert chunks_gc()["chunks"] == 0  # within the grace period
        # Past the grace period (and long past it for chunks still referenced).
        Chunk.objects.update(created_at=timezone.now() - timedelta(days=30))
        Chunk.objects.filter(released_at__isnull=False).update(released_at=timezone.now() - timedelta(days=2))
        assert chunks_gc()["chunks"] == len(only_gone)
    assert set(Chunk.objects.values_list("id", flat=True)) == set(
        ManifestChunk.objects.filter(manifest=kept).values_list("chunk_id", flat=True)
    )
    assert not PendingDelete.objects.exists()
    assert sum(len(stored_keys(d)) for d in three_disks) == 2 * Chunk.objects.count()
    assert read_all(kept) == shared


def test_a_crash_before_the_manifest_is_committed_leaves_orphans_gc_removes(
    settings, owner_workspace, three_disks, rng, django_capture_on_commit_callbacks
):
    writer = manifest_writer(workspace=owner_workspace)
    writer.write(rng.randbytes(200_000))  # chunks written, then the process dies: no finish, no abort
    assert Chunk.objects.exists() and Manifest.objects.get().state == Manifest.State.PENDING
    with django_capture_on_commit_callbacks(execute=True):
        assert chunks_gc() == {"abandoned_uploads": 0, "chunks": 0, "objects_deleted": 0, "temporaries_removed": 0}
        Manifest.objects.update(touched_at=timezone.now() - timedelta(days=4))
        Chunk.objects.update(created_at=timezone.now() - timedelta(days=4))
        chunks_gc()  # releases the abandoned upload; its chunks now wait the grace period
        Chunk.objects.update(released_at=timezone.now() - timedelta(days=2))
        chunks_gc()
    assert not Manifest.objects.exists() and not Chunk.objects.exists() and not Replica.objects.exists()
    assert all(not stored_keys(d) for d in three_disks)
    assert all(d.used_bytes == 0 for d in Disk.objects.all())


def test_remap_job_moves_workspaces_off_disks_out_of_service(owner_workspace, three_disks, rng):
    manifest_write(workspace=owner_workspace, stream=io.BytesIO(rng.randbytes(1000)))
    primary = Placement.objects.get(workspace=owner_workspace, rank=0).disk_id
    # A status changed behind the services' back (a script, a restore): the beat job fixes it.
    Disk.objects.filter(pk=primary).update(status=Disk.Status.FAILED)
    assert tasks.workspaces_remap.delay().get() == 1
    assert primary not in Placement.objects.filter(workspace=owner_workspace).values_list("disk", flat=True)
    assert tasks.workspaces_remap.delay().get() == 0


def test_repair_is_throttled_to_the_configured_bytes_per_second(settings, owner_workspace, three_disks, rng):
    import time

    from disks.repair import replicas_repair

    manifest_write(workspace=owner_workspace, stream=io.BytesIO(rng.randbytes(12_000)))
    for replica in list(Replica.objects.select_related("disk", "chunk").order_by("pk"))[::2]:
        object_delete(replica.disk, replica.chunk.key)
        Replica.objects.filter(pk=replica.pk).update(state=Replica.State.BAD)
    damaged = Chunk.objects.filter(replicas__state=Replica.State.BAD)
    to_copy = sum(damaged.values_list("stored_size", flat=True))
    count = damaged.count()
    settings.CLOUDSTORAGE_REPAIR_BYTES_PER_SECOND = to_copy * 2  # about half a second of work
    started = time.monotonic()
    result = replicas_repair()
    assert result == {"repaired": count}
    assert time.monotonic() - started >= 0.45
    assert not Replica.objects.filter(state=Replica.State.BAD).exists()


def test_chunks_an_upload_wrote_during_a_plan_change_reach_the_new_category(
    settings, owner_workspace, rng, caplog, django_capture_on_commit_callbacks
):
    """A streaming upload keeps the placement it read when it started (category A); the owner buys
    10 GB (category B) meanwhile and the relocation runs while the upload's chunks are still being
    written. Those are not lost (no error logged); the periodic re-check moves them once finished."""
    from django.conf import settings as django_settings

    from billing.services import _plan_set

    make_disks(settings, 2, category="A", prefix="a")
    make_disks(settings, 2, category="B", prefix="b")
    writer = manifest_writer(workspace=owner_workspace)
    first = rng.randbytes(200_000)
    writer.write(first)  # past its buffer: chunks recorded, some of their copies still being written
    assert Replica.objects.filter(chunk__workspace=owner_workspace, state=Replica.State.NEW).exists()
    with django_capture_on_commit_callbacks(execute=True):
        _plan_set(owner_workspace, 10)  # workspace_relocate runs on commit
    rest = rng.randbytes(20_000)
    writer.write(rest)
    manifest = writer.finish()
    assert not [r for r in caplog.records if "no good copy left" in r.getMessage()]
    off = Replica.objects.filter(chunk__workspace=owner_workspace).exclude(disk__category="B")
    assert off.exists()  # what the upload wrote with its old placement

    assert django_settings.CELERY_BEAT_SCHEDULE["disk-relocate-check"]["task"] == tasks.workspaces_relocate_check.name
    assert tasks.workspaces_relocate_check.delay().get() == 1

    assert not off.exists()
    assert read_all(manifest) == first + rest
    assert tasks.workspaces_relocate_check.delay().get() == 0  # nothing left outside the category
