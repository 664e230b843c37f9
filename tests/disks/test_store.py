"""The store's public interface: write a stream, read it back (ranges too), dedup, clone, release."""

from __future__ import annotations

import hashlib
import io

import pytest

from disks.models import Chunk, Manifest, ManifestChunk, Replica
from disks.store import (
    SizeLimitExceeded,
    manifest_check,
    manifest_clone,
    manifest_open,
    manifest_release,
    manifest_write,
    manifest_writer,
)
from tests.disks.conftest import object_files, random_bytes, read_all


def test_write_then_read_returns_identical_bytes_and_sha256(owner_workspace, three_disks, rng):
    data = random_bytes(rng, 50_000)
    manifest = manifest_write(workspace=owner_workspace, stream=io.BytesIO(data))
    assert manifest.state == Manifest.State.READY
    assert manifest.size == len(data)
    assert manifest.sha256 == hashlib.sha256(data).hexdigest()
    assert manifest.workspace_id == owner_workspace.pk
    assert manifest.entries.count() > 10  # many chunks with the tests' tiny chunk size
    assert read_all(manifest) == data


def test_iterable_of_bytes_and_empty_stream(owner_workspace, three_disks, rng):
    parts = [random_bytes(rng, n) for n in (1, 7000, 0, 333, 12000)]
    manifest = manifest_write(workspace=owner_workspace, stream=iter(parts))
    assert read_all(manifest) == b"".join(parts)
    empty = manifest_write(workspace=owner_workspace, stream=io.BytesIO(b""))
    assert empty.size == 0
    assert empty.sha256 == hashlib.sha256(b"").hexdigest()
    assert read_all(empty) == b""


def test_ranges_return_exactly_the_requested_bytes(owner_workspace, three_disks, rng):
    data = random_bytes(rng, 30_000)
    manifest = manifest_write(workspace=owner_workspace, stream=io.BytesIO(data))
    for start, end in [(0, 1), (0, 30_000), (5, 5), (1000, 1001), (2047, 9000), (29_999, None), (123, 40_000)]:
        assert read_all(manifest, start=start, end=end) == data[start:end]


def test_incremental_writer_matches_one_shot_chunking(owner_workspace, three_disks, rng):
    data = random_bytes(rng, 40_000)
    one_shot = manifest_write(workspace=owner_workspace, stream=io.BytesIO(data))
    writer = manifest_writer(workspace=owner_workspace)
    for i in range(0, len(data), 777):
        writer.write(data[i : i + 777])
    incremental = writer.finish()
    assert read_all(incremental) == data
    # Same content-defined cuts whatever the write sizes, so every chunk is shared.
    assert list(incremental.entries.values_list("chunk_id", flat=True)) == list(
        one_shot.entries.values_list("chunk_id", flat=True)
    )


def test_identical_content_is_stored_once_per_workspace(owner_workspace, team, three_disks, rng):
    data = random_bytes(rng, 20_000)
    first = manifest_write(workspace=owner_workspace, stream=io.BytesIO(data))
    chunks = Chunk.objects.count()
    replicas = Replica.objects.count()
    second = manifest_write(workspace=owner_workspace, stream=io.BytesIO(data))
    assert Chunk.objects.count() == chunks
    assert Replica.objects.count() == replicas
    assert read_all(second) == data and first.pk != second.pk
    # Another workspace never shares (or learns about) the first one's chunks.
    other = manifest_write(workspace=team, stream=io.BytesIO(data))
    assert Chunk.objects.count() == 2 * chunks
    owner_digests = set(Chunk.objects.filter(workspace=owner_workspace).values_list("digest", flat=True))
    assert not owner_digests & set(Chunk.objects.filter(workspace=team).values_list("digest", flat=True))
    assert read_all(other) == data


def test_every_chunk_has_two_copies_on_distinct_disks_under_one_key(owner_workspace, three_disks, rng):
    manifest = manifest_write(workspace=owner_workspace, stream=io.BytesIO(random_bytes(rng, 20_000)))
    for chunk in Chunk.objects.filter(references__manifest=manifest):
        replicas = list(chunk.replicas.select_related("disk"))
        assert len({r.disk_id for r in replicas}) == 2
        for replica in replicas:
            assert replica.disk.path and (__import__("pathlib").Path(replica.disk.path) / chunk.key).is_file()
    assert manifest_check(manifest=manifest) == "ok"


def test_chunks_are_encrypted_at_rest(owner_workspace, three_disks):
    data = b"top secret plaintext line\n" * 2000
    manifest_write(workspace=owner_workspace, stream=io.BytesIO(data))
    for disk in three_disks:
        for path in object_files(disk):
            assert b"top secret" not in path.read_bytes()


def test_disk_bytes_used_counts_every_copy(owner_workspace, three_disks, rng):
    manifest_write(workspace=owner_workspace, stream=io.BytesIO(random_bytes(rng, 20_000)))
    stored = sum(Chunk.objects.values_list("stored_size", flat=True))
    for disk in three_disks:
        disk.refresh_from_db()
    assert sum(d.used_bytes for d in three_disks) == 2 * stored
    on_disk = sum(p.stat().st_size for d in three_disks for p in object_files(d))
    assert on_disk == 2 * stored


def test_size_limit_refuses_and_leaves_nothing(owner_workspace, three_disks, rng):
    with pytest.raises(SizeLimitExceeded):
        manifest_write(workspace=owner_workspace, stream=io.BytesIO(random_bytes(rng, 30_000)), size_limit=20_000)
    assert not Manifest.objects.exists()
    assert not Chunk.objects.exists()
    assert all(not object_files(d) for d in three_disks)


def test_clone_shares_chunks_and_survives_release_of_the_original(owner_workspace, three_disks, rng):
    data = random_bytes(rng, 15_000)
    original = manifest_write(workspace=owner_workspace, stream=io.BytesIO(data))
    chunks = Chunk.objects.count()
    clone = manifest_clone(manifest=original)
    assert Chunk.objects.count() == chunks
    assert (clone.size, clone.sha256) == (original.size, original.sha256)
    manifest_release(manifest=original)
    assert not Manifest.objects.filter(pk=original.pk).exists()
    assert read_all(clone) == data


def test_release_drops_references(owner_workspace, three_disks, rng):
    manifest = manifest_write(workspace=owner_workspace, stream=io.BytesIO(random_bytes(rng, 5000)))
    manifest_release(manifest=manifest)
    assert not ManifestChunk.objects.exists()
    assert Chunk.objects.filter(released_at__isnull=False).count() == Chunk.objects.count() > 0


def test_open_is_lazy_and_reads_only_needed_chunks(owner_workspace, three_disks, rng):
    data = random_bytes(rng, 30_000)
    manifest = manifest_write(workspace=owner_workspace, stream=io.BytesIO(data))
    # Deleting every copy of the last chunk doesn't stop a read of the first bytes.
    last = manifest.entries.order_by("-seq").first()
    for replica in last.chunk.replicas.select_related("disk"):
        (__import__("pathlib").Path(replica.disk.path) / last.chunk.key).unlink()
    assert b"".join(manifest_open(manifest=manifest, start=0, end=100)) == data[:100]


def test_two_writers_of_the_same_new_chunk_record_one_copy_per_disk(three_disks, owner_workspace, rng):
    """Writer A created the chunk and is still writing; writer B found no good copy yet and recorded
    its own: A's record of the same disk must not fail the upload nor count the bytes twice."""
    from disks.chunks import chunk_store_copies
    from disks.crypto import workspace_keys
    from disks.models import Disk
    from disks.store import manifest_write

    data = random_bytes(rng, 3000)
    manifest = manifest_write(workspace=owner_workspace, stream=[data])
    entry = ManifestChunk.objects.select_related("chunk").get(manifest=manifest, seq=0)
    chunk = entry.chunk
    disk = Replica.objects.filter(chunk=chunk).first().disk
    used_before = Disk.objects.get(pk=disk.pk).used_bytes
    plaintext = data[entry.offset : entry.offset + chunk.size]
    blob = workspace_keys(workspace_id=owner_workspace.pk).encrypt(plaintext, object_key=chunk.key)

    written = chunk_store_copies(
        chunk=chunk, blob=blob, workspace=owner_workspace, want=1, exclude=set(), candidates=[disk], fresh=True
    )

    assert written == [disk]
    assert Replica.objects.filter(chunk=chunk, disk=disk).count() == 1
    assert Disk.objects.get(pk=disk.pk).used_bytes == used_before
    assert read_all(manifest) == data
