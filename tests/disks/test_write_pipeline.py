"""The write pipeline: batches recorded in a few queries, copies a disk refuses moved elsewhere,
nothing acknowledged before its copies are durable and recorded, repair keeps off copies in flight."""

from __future__ import annotations

import os

from django.db import connection
from django.test.utils import CaptureQueriesContext

from disks.models import Chunk, Disk, Manifest, ManifestChunk, Replica
from disks.selectors import chunks_needing_repair
from disks.store import manifest_write, manifest_writer
from disks.writing import BATCH_CHUNKS
from tests.disks.conftest import make_disks, random_bytes, read_all


def _usage_matches_copies() -> None:
    for disk in Disk.objects.all():
        stored = sum(r.chunk.stored_size for r in Replica.objects.filter(disk=disk).select_related("chunk"))
        assert disk.used_bytes == stored, disk.name


def test_a_write_runs_a_few_queries_per_batch_not_per_chunk(owner_workspace, three_disks, rng):
    data = random_bytes(rng, 600_000)  # ~300 chunks of ~2 KiB

    with CaptureQueriesContext(connection) as queries:
        manifest = manifest_write(workspace=owner_workspace, stream=[data])

    chunks = manifest.entries.count()
    batches = -(-chunks // BATCH_CHUNKS)
    assert chunks > 200
    # Per batch: lock+lookup, insert chunks, re-read ids, insert entries, reserve per disk, insert
    # copies, settle per disk, two transactions (savepoints here); plus the manifest's own few.
    assert len(queries) <= 15 * batches + 20, len(queries)
    assert len(queries) < chunks
    assert read_all(manifest) == data
    assert not Replica.objects.filter(state=Replica.State.NEW).exists()
    assert set(Replica.objects.values_list("chunk_id", flat=True)) == set(Chunk.objects.values_list("id", flat=True))
    assert all(len(Replica.objects.filter(chunk=c)) == 2 for c in Chunk.objects.all())
    _usage_matches_copies()


def test_copies_a_disk_refuses_are_written_to_another_disk(settings, owner_workspace, rng):
    first, second, third = make_disks(settings, 3)
    writer = manifest_writer(workspace=owner_workspace)
    data = random_bytes(rng, 300_000)
    writer.write(data[:150_000])
    # The writer already chose its disks; one of them disappears under it.
    chosen = {d.pk for d in writer._disks[:2]}
    gone = next(d for d in (first, second, third) if d.pk in chosen)
    os.rename(gone.path, f"{gone.path}.unmounted")  # atomic, unlike deleting under running writes
    writer.write(data[150_000:])
    manifest = writer.finish()

    assert not Replica.objects.filter(state=Replica.State.NEW).exists()
    # Every chunk has its two copies, and every copy recorded is really there (the vanished disk's
    # only from before it vanished).
    for chunk in Chunk.objects.all():
        copies = list(Replica.objects.filter(chunk=chunk, state=Replica.State.OK).select_related("disk"))
        assert len(copies) == 2
        for copy in copies:
            root = f"{gone.path}.unmounted" if copy.disk_id == gone.pk else copy.disk.path
            assert os.path.isfile(os.path.join(root, chunk.key))
    assert Replica.objects.exclude(disk=gone).count() > Replica.objects.filter(disk=gone).count()
    _usage_matches_copies()
    # (Reading marks the copies left behind on the vanished disk bad, and serves the others.)
    assert read_all(manifest) == data


def test_repeated_content_in_one_upload_is_stored_once(owner_workspace, three_disks, rng):
    block = random_bytes(rng, 5000)
    data = block * 200

    manifest = manifest_write(workspace=owner_workspace, stream=[data])

    assert read_all(manifest) == data
    assert manifest.entries.count() > Chunk.objects.count()
    assert Replica.objects.count() == 2 * Chunk.objects.count()
    _usage_matches_copies()


def test_nothing_is_visible_and_repair_keeps_off_while_copies_are_being_written(owner_workspace, three_disks, rng):
    writer = manifest_writer(workspace=owner_workspace)
    writer.write(random_bytes(rng, 100_000))
    writer._flush()  # a batch recorded, its copies in flight (not settled)

    assert Manifest.objects.get(pk=writer.manifest.pk).state == Manifest.State.PENDING
    in_flight = Replica.objects.filter(state=Replica.State.NEW)
    assert in_flight.exists()
    assert not chunks_needing_repair().filter(pk__in=in_flight.values("chunk_id")).exists()

    manifest = writer.finish()

    assert manifest.state == Manifest.State.READY
    assert not Replica.objects.filter(state=Replica.State.NEW).exists()
    assert ManifestChunk.objects.filter(manifest=manifest).count() == manifest.entries.count()


def test_an_aborted_upload_gives_back_every_reserved_byte(
    owner_workspace, three_disks, rng, django_capture_on_commit_callbacks
):
    writer = manifest_writer(workspace=owner_workspace)
    with django_capture_on_commit_callbacks(execute=True):
        writer.write(random_bytes(rng, 100_000))
        writer._flush()
        writer.abort()

    assert not Chunk.objects.exists() and not Replica.objects.exists()
    assert sum(Disk.objects.values_list("used_bytes", flat=True)) == 0
