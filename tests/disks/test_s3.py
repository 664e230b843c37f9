"""S3 disks over real HTTP against moto's standalone server on 127.0.0.1: verified reads, a failed
bucket repaired from a local copy, and online migration from local disks to S3 and back."""

from __future__ import annotations

import io

import pytest

from disks.health import disk_probe
from disks.models import Chunk, DataKey, Disk, Manifest, ManifestChunk, Placement, Replica
from disks.repair import disk_drain
from disks.services import disk_set_status
from disks.store import manifest_check, manifest_write
from tests.disks.conftest import (
    disk_destroy,
    good_copies,
    make_disks,
    make_s3_disk,
    object_flip_byte,
    object_get,
    read_all,
    repair_until_done,
    stored_keys,
)


@pytest.fixture
def endpoint(s3_server) -> str:
    return s3_server


def write(workspace, rng, sizes) -> list[tuple[Manifest, bytes]]:
    return [
        (manifest_write(workspace=workspace, stream=io.BytesIO(data)), data)
        for data in (rng.randbytes(size) for size in sizes)
    ]


def test_s3_disks_store_encrypted_copies_under_one_key_and_serve_verified_bytes(endpoint, owner_workspace, rng):
    s3a, s3b = make_s3_disk(endpoint, "s3-a"), make_s3_disk(endpoint, "s3-b")
    files = write(owner_workspace, rng, (0, 700, 9000, 30_000))
    assert all(read_all(m) == data for m, data in files)
    assert all(manifest_check(manifest=m) == "ok" for m, _ in files)
    keys = {c.key for c in Chunk.objects.all()}
    assert set(stored_keys(s3a)) == set(stored_keys(s3b)) == keys  # the same object key on both
    objects = b"".join(object_get(s3a, key) for key in keys)
    assert not any(data[:64] in objects for _, data in files if data)  # encrypted at rest
    # A corrupted object in the bucket is caught by its GCM tag; the other copy serves.
    manifest, data = files[-1]
    chunk = manifest.entries.order_by("seq").first().chunk
    object_flip_byte(s3a, chunk.key, rng)
    object_flip_byte(s3b, manifest.entries.order_by("seq").last().chunk.key, rng)
    assert read_all(manifest) == data
    assert read_all(manifest, start=100, end=20_000) == data[100:20_000]
    for disk in (s3a, s3b):
        disk.refresh_from_db()
        assert disk.used_bytes == sum(c.stored_size for c in Chunk.objects.all())


def test_a_failed_s3_disk_is_repaired_from_the_local_copy(settings, endpoint, owner_workspace, rng):
    (local,) = make_disks(settings, 1)
    bucket = make_s3_disk(endpoint, "s3-1")
    files = write(owner_workspace, rng, (500, 4000, 12_000, 20_000))
    assert all(set(good_copies(c)) == {local.pk, bucket.pk} for c in Chunk.objects.all())
    spare = make_s3_disk(endpoint, "s3-spare")  # attached by an operator after the writes

    disk_destroy(bucket)  # the bucket is gone: every request fails
    assert all(read_all(m) == data for m, data in files)  # served from the local copies
    for _ in range(settings.CLOUDSTORAGE_DISK_PROBE_FAILURES):
        assert disk_probe(disk=bucket) is False
    bucket.refresh_from_db()
    assert bucket.status == Disk.Status.FAILED and "NoSuchBucket" in bucket.last_check_error
    assert set(Placement.objects.filter(workspace=owner_workspace).values_list("disk", flat=True)) == {
        local.pk,
        spare.pk,
    }

    repair_until_done()
    assert all(set(good_copies(c)) == {local.pk, spare.pk} for c in Chunk.objects.all())
    assert set(stored_keys(spare)) == {c.key for c in Chunk.objects.all()}
    assert not Replica.objects.filter(disk=bucket).exists()
    assert all(read_all(m) == data for m, data in files)


def snapshot() -> dict:
    """Every piece of metadata a migration must keep exactly as it was."""
    return {
        "manifests": sorted(Manifest.objects.values_list("pk", "workspace_id", "state", "size", "sha256")),
        "entries": sorted(ManifestChunk.objects.values_list("manifest_id", "seq", "offset", "chunk_id")),
        "chunks": sorted(Chunk.objects.values_list("pk", "workspace_id", "digest", "size", "stored_size")),
        "data_keys": sorted(
            (w, bytes(k), i) for w, k, i in DataKey.objects.values_list("pk", "wrapped", "master_key_id")
        ),
    }


def drain_all(disks: list[Disk], files, *, limit: int) -> int:
    """Drain ``disks`` a few chunks at a time, alternating between them, checking between every
    slice that every file reads back whole; the number of slices."""
    slices = 0
    busy = list(disks)
    while busy:
        for disk in list(busy):
            if not disk_drain(disk=disk, limit=limit)["left"]:
                busy.remove(disk)
            slices += 1
            assert all(read_all(m) == data for m, data in files), f"a file was unreadable after slice {slices}"
    return slices


def test_online_migration_from_local_disks_to_s3_and_back(settings, endpoint, owner_workspace, team, rng):
    settings.CLOUDSTORAGE_REPAIR_BYTES_PER_SECOND = 0
    local = make_disks(settings, 2)
    files = write(owner_workspace, rng, (0, 300, 3000, 9000)) + write(team, rng, (2000, 6000))
    before = snapshot()
    s3 = [make_s3_disk(endpoint, "s3-1"), make_s3_disk(endpoint, "s3-2")]

    assert drain_all(local, files, limit=6) > 4
    s3_ids = {d.pk for d in s3}
    assert all(set(good_copies(c)) == s3_ids for c in Chunk.objects.all())
    for disk in local:
        disk.refresh_from_db()
        assert disk.used_bytes == 0 and not stored_keys(disk)
    assert set(Placement.objects.values_list("disk", flat=True)) <= s3_ids
    assert snapshot() == before

    # And back: the local disks return to service, the buckets are drained onto them.
    for disk in local:
        disk_set_status(disk=disk, status=Disk.Status.ACTIVE)
    drain_all(s3, files, limit=6)
    local_ids = {d.pk for d in local}
    assert all(set(good_copies(c)) == local_ids for c in Chunk.objects.all())
    for disk in s3:
        disk.refresh_from_db()
        assert disk.used_bytes == 0 and not stored_keys(disk)
    assert snapshot() == before
    assert all(manifest_check(manifest=m) == "ok" for m, _ in files)
