"""The durability bar: disk loss, bit rot, repair order, total loss, full disks; each also with one of
the disks on the local S3 server (moto, over real HTTP)."""

from __future__ import annotations

import io

import pytest

from disks.health import disk_probe
from disks.models import Chunk, Disk, Manifest, Placement, Replica
from disks.repair import replicas_repair
from disks.scrub import replicas_scrub
from disks.selectors import chunks_needing_repair
from disks.store import ChunkLostError, StorageFullError, manifest_check, manifest_open, manifest_write
from tests.disks.conftest import (
    MB,
    disk_destroy,
    good_copies,
    make_disks,
    make_s3_disk,
    object_delete,
    object_flip_byte,
    read_all,
    repair_until_done,
    stored_keys,
)

SIZES = (0, 1, 200, 1500, 4000, 9000, 25_000)
# Mixed, mostly small sizes (chunks average ~1 KiB in these tests), to keep 300 files quick.
SMALL_SIZES = (0, 1, 100, 500, 1000, 2000, 5000)


@pytest.fixture(params=["local", "s3"])
def disks3(request, settings, db) -> list[Disk]:
    """Three disks of category A: all local folders, or the last one a bucket on the local S3 server."""
    if request.param == "local":
        return make_disks(settings, 3)
    endpoint = request.getfixturevalue("s3_server")
    return [*make_disks(settings, 2), make_s3_disk(endpoint, "s3-1")]


def write_files(workspace, rng, count: int, sizes=SIZES) -> list[tuple[Manifest, bytes]]:
    files = []
    for _ in range(count):
        data = rng.randbytes(rng.choice(sizes))
        files.append((manifest_write(workspace=workspace, stream=io.BytesIO(data)), data))
    return files


def damage_copies(disks, rng, *, fraction: float) -> tuple[list, list]:
    """Flip a byte in ``fraction`` of all stored copies, at most one copy per chunk (with both copies
    of a chunk damaged, the right answer is an error, tested on its own below)."""
    keys = [(disk, key) for disk in disks for key in stored_keys(disk)]
    one_per_chunk = list({key: (disk, key) for disk, key in keys}.values())
    damaged = rng.sample(one_per_chunk, max(1, int(len(keys) * fraction)))
    for disk, key in damaged:
        object_flip_byte(disk, key, rng)
    return keys, damaged


def assert_all_identical(files) -> None:
    wrong = [m.pk for m, data in files if read_all(m) != data]
    assert not wrong, f"{len(wrong)} file(s) read back different bytes"


def test_losing_a_whole_disk_loses_no_file_and_repair_restores_two_copies(settings, disks3, rng):
    from tests.factories import UserFactory, personal_workspace

    # Three workspaces written one after the other: each is placed on the least-full disks then,
    # so every disk is some workspace's primary.
    files = []
    for _ in range(3):
        files += write_files(personal_workspace(UserFactory()), rng, 100, SMALL_SIZES)
    lost = disks3[-1]
    assert Placement.objects.filter(disk=lost, rank=0).exists()
    disk_destroy(lost)

    assert_all_identical(files)  # served from the other copies without the caller noticing
    for _ in range(settings.CLOUDSTORAGE_DISK_PROBE_FAILURES):
        disk_probe(disk=lost)
    lost.refresh_from_db()
    assert lost.status == Disk.Status.FAILED
    assert not Placement.objects.filter(disk=lost).exists()  # its workspaces were remapped

    repair_until_done()
    healthy = {d.pk for d in disks3[:-1]}
    for chunk in Chunk.objects.all():
        copies = good_copies(chunk)
        assert len(copies) == 2 and set(copies) == healthy
    assert not Replica.objects.filter(disk=lost).exists()
    assert_all_identical(files)
    assert {manifest_check(manifest=m) for m, _ in files} == {"ok"}


def test_bit_rot_in_five_percent_of_copies_serves_no_wrong_byte(owner_workspace, disks3, rng):
    files = write_files(owner_workspace, rng, 60)
    keys, damaged = damage_copies(disks3, rng, fraction=0.05)
    assert_all_identical(files)


def test_one_scrub_pass_finds_and_repairs_every_injected_corruption(owner_workspace, disks3, rng):
    files = write_files(owner_workspace, rng, 60)
    keys, damaged = damage_copies(disks3, rng, fraction=0.05)

    result = replicas_scrub()
    assert result["checked"] == len(keys)
    assert result["bad"] == len(damaged)
    assert result["repaired"] == len(damaged)
    assert not chunks_needing_repair().exists()
    assert replicas_scrub()["bad"] == 0  # every copy verifies now, the repaired ones included
    assert_all_identical(files)


def test_chunks_with_one_copy_left_are_repaired_before_chunks_with_two_of_three(settings, owner_workspace, rng):
    settings.CLOUDSTORAGE_REPLICAS = 3
    disks = make_disks(settings, 4)
    write_files(owner_workspace, rng, 30)
    chunks = list(Chunk.objects.order_by("created_at"))
    assert len(chunks) >= 20
    # The newest chunks lose two copies, the oldest lose one: repair must not go by age.
    one_left, two_left = chunks[-5:], chunks[:10]
    for chunk, drop in [(c, 2) for c in one_left] + [(c, 1) for c in two_left]:
        for replica in list(chunk.replicas.select_related("disk"))[:drop]:
            object_delete(replica.disk, chunk.key)
            Replica.objects.filter(pk=replica.pk).update(state=Replica.State.BAD, error="missing")

    assert replicas_repair(limit=len(one_left)) == {"repaired": len(one_left)}
    assert all(len(good_copies(c)) == 3 for c in one_left)
    assert all(len(good_copies(c)) == 2 for c in two_left)
    replicas_repair()
    assert all(len(good_copies(c)) == 3 for c in chunks)
    assert len(disks) == 4


def test_no_copy_left_is_an_explicit_error_never_a_short_body(owner_workspace, disks3, rng):
    data = rng.randbytes(30_000)
    manifest = manifest_write(workspace=owner_workspace, stream=io.BytesIO(data))
    middle = manifest.entries.order_by("seq")[manifest.entries.count() // 2].chunk
    for replica in middle.replicas.select_related("disk"):
        object_delete(replica.disk, middle.key)

    # The copies are still believed good: the stream starts, then fails loudly where the bytes end.
    received = bytearray()
    with pytest.raises(ChunkLostError):
        for block in manifest_open(manifest=manifest):
            received += block
    assert len(received) < len(data) and data.startswith(bytes(received))
    # Now that the copies are known bad, the error comes before any byte, and the status says so.
    with pytest.raises(ChunkLostError):
        manifest_open(manifest=manifest)
    assert manifest_check(manifest=manifest) == "lost"
    # Other ranges of the file are still served.
    first = manifest.entries.order_by("seq").first()
    assert read_all(manifest, start=0, end=first.chunk.size) == data[: first.chunk.size]


def test_full_disks_are_skipped_and_with_every_disk_full_nothing_is_half_written(
    settings, owner_workspace, rng, django_capture_on_commit_callbacks
):
    small = make_disks(settings, 2, capacity=40_000, prefix="small")
    big = make_disks(settings, 2, capacity=200_000, prefix="big")
    first = manifest_write(workspace=owner_workspace, stream=io.BytesIO(rng.randbytes(100_000)))
    assert read_all(first)
    for disk in small + big:
        disk.refresh_from_db()
        assert disk.used_bytes <= disk.capacity_bytes
    assert all(len(good_copies(c)) == 2 for c in Chunk.objects.all())
    assert sum(d.used_bytes for d in big) > sum(d.used_bytes for d in small)

    before = {
        "manifests": Manifest.objects.count(),
        "chunks": Chunk.objects.count(),
        "replicas": Replica.objects.count(),
        "used": sorted(Disk.objects.values_list("used_bytes", flat=True)),
        "objects": sum(len(stored_keys(d)) for d in small + big),
    }
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(StorageFullError):
        manifest_write(workspace=owner_workspace, stream=io.BytesIO(rng.randbytes(MB)))
    after = {
        "manifests": Manifest.objects.count(),
        "chunks": Chunk.objects.count(),
        "replicas": Replica.objects.count(),
        "used": sorted(Disk.objects.values_list("used_bytes", flat=True)),
        "objects": sum(len(stored_keys(d)) for d in small + big),
    }
    assert after == before
    assert read_all(first)
