"""Reads through the read-ahead (disks/reading.py): ranges, bad copies, lost chunks, query count, close."""

from __future__ import annotations

import gc
import io
import tracemalloc
from pathlib import Path

import pytest

from disks import reading
from disks.chunks import readable_replicas
from disks.models import Replica
from disks.store import ChunkLostError, manifest_open, manifest_write
from tests.disks.conftest import object_delete, object_flip_byte, object_get, object_put, read_all


@pytest.fixture
def small_pages(monkeypatch):
    """Pages of a few entries and a tight window, so short test files cross both many times."""
    monkeypatch.setattr(reading, "PAGE_ENTRIES", 7)
    monkeypatch.setattr(reading, "READ_AHEAD_CHUNKS", 3)
    monkeypatch.setattr(reading, "READ_AHEAD_BYTES", 5000)


def _entries(manifest):
    return list(manifest.entries.select_related("chunk").order_by("seq"))


def test_ranges_across_chunk_and_page_boundaries_equal_the_plaintext(owner_workspace, three_disks, rng, small_pages):
    data = rng.randbytes(60_000)
    manifest = manifest_write(workspace=owner_workspace, stream=io.BytesIO(data))
    entries = _entries(manifest)
    assert len(entries) > 3 * reading.PAGE_ENTRIES
    bounds = {0, len(data)}
    for entry in entries[:: max(1, len(entries) // 12)]:
        bounds |= {entry.offset - 1, entry.offset, entry.offset + 1}
    bounds = sorted(b for b in bounds if 0 <= b <= len(data))
    ranges = [(a, b) for a in bounds for b in bounds if a <= b][::5]
    ranges += [(a, a + 1) for a in bounds if a < len(data)]
    ranges += [(0, None), (len(data) - 1, None), (entries[5].offset, entries[40].offset)]
    for start, end in ranges:
        assert read_all(manifest, start=start, end=end) == data[start:end], (start, end)


def test_blocks_are_whole_chunks_inside_the_range(owner_workspace, three_disks, rng):
    data = rng.randbytes(30_000)
    manifest = manifest_write(workspace=owner_workspace, stream=io.BytesIO(data))
    entries = _entries(manifest)
    start, end = entries[2].offset + 10, entries[9].offset + 10
    blocks = list(manifest_open(manifest=manifest, start=start, end=end))
    assert [len(b) for b in blocks[1:-1]] == [e.chunk.size for e in entries[3:9]]
    assert b"".join(blocks) == data[start:end]


def test_corrupt_copy_is_marked_bad_and_the_read_goes_on_from_the_other(
    owner_workspace, three_disks, rng, small_pages, django_capture_on_commit_callbacks
):
    data = rng.randbytes(40_000)
    manifest = manifest_write(workspace=owner_workspace, stream=io.BytesIO(data))
    chunk = _entries(manifest)[9].chunk  # inside the second page
    first = readable_replicas(chunk=chunk)[0]  # the copy read ahead
    object_flip_byte(first.disk, chunk.key, rng)
    with django_capture_on_commit_callbacks() as queued:
        assert read_all(manifest) == data
    first.refresh_from_db()
    assert first.state == Replica.State.BAD and first.error.startswith("corrupt")
    assert len(queued) == 1  # its repair


def test_deleted_copy_is_marked_bad_and_the_read_goes_on_from_the_other(
    owner_workspace, three_disks, rng, small_pages, django_capture_on_commit_callbacks
):
    data = rng.randbytes(40_000)
    manifest = manifest_write(workspace=owner_workspace, stream=io.BytesIO(data))
    chunks = [e.chunk for e in _entries(manifest)[3:20:4]]
    firsts = [readable_replicas(chunk=c)[0] for c in chunks]
    for chunk, replica in zip(chunks, firsts, strict=True):
        object_delete(replica.disk, chunk.key)
    with django_capture_on_commit_callbacks() as queued:
        assert read_all(manifest, start=100) == data[100:]
    for replica in firsts:
        replica.refresh_from_db()
        assert (replica.state, replica.error) == (Replica.State.BAD, "missing")
    assert len(queued) == 1  # one repair pass for all of them (coalesced)


def test_a_disk_this_node_cannot_see_marks_no_copy_bad_and_health_says_so(
    client, owner_workspace, three_disks, rng, settings
):
    # Another web node without the disk's mount: the folder is not there on this host.
    data = rng.randbytes(40_000)
    manifest = manifest_write(workspace=owner_workspace, stream=io.BytesIO(data))
    unseen = readable_replicas(chunk=_entries(manifest)[0].chunk)[0].disk
    Path(unseen.path).rename(f"{unseen.path}-elsewhere")

    assert read_all(manifest) == data
    assert not Replica.objects.filter(state=Replica.State.BAD).exists()

    settings.HEALTHZ_TOKEN = "t" * 40
    detail = client.get("/healthz/detail", HTTP_AUTHORIZATION=f"Bearer {'t' * 40}").json()
    assert detail["node"] and detail["status"] == "unhealthy"
    report = detail["checks"]["disks"]["disks"][unseen.name]
    assert report["ok"] is False and "is not a folder" in report["error"]


def test_another_chunks_object_under_this_name_fails_authentication(owner_workspace, three_disks, rng):
    """The tag is bound to the chunk's identity: a valid copy of another chunk is not this one."""
    data = rng.randbytes(20_000)
    manifest = manifest_write(workspace=owner_workspace, stream=io.BytesIO(data))
    entries = _entries(manifest)
    victim, other = entries[4].chunk, entries[7].chunk
    first = readable_replicas(chunk=victim)[0]
    donor = readable_replicas(chunk=other)[0]
    object_put(first.disk, victim.key, object_get(donor.disk, other.key))  # a valid copy, of another chunk
    assert read_all(manifest) == data
    first.refresh_from_db()
    assert first.state == Replica.State.BAD and first.error.startswith("corrupt")


def test_both_copies_bad_raises_chunk_lost_mid_stream_after_only_correct_bytes(
    owner_workspace, three_disks, rng, small_pages, django_capture_on_commit_callbacks
):
    data = rng.randbytes(40_000)
    manifest = manifest_write(workspace=owner_workspace, stream=io.BytesIO(data))
    lost = _entries(manifest)[12]
    replicas = readable_replicas(chunk=lost.chunk)
    object_flip_byte(replicas[0].disk, lost.chunk.key, rng)
    object_delete(replicas[1].disk, lost.chunk.key)
    received = []
    with django_capture_on_commit_callbacks() as queued, pytest.raises(ChunkLostError):
        for block in manifest_open(manifest=manifest):
            received.append(block)
    assert b"".join(received) == data[: lost.offset]  # everything before it, nothing of it or after
    assert set(Replica.objects.filter(chunk=lost.chunk).values_list("state", flat=True)) == {Replica.State.BAD}
    assert len(queued) == 1
    with pytest.raises(ChunkLostError):  # now known up front, before any byte
        manifest_open(manifest=manifest)


@pytest.mark.parametrize("missing", ["middle", "last"])
def test_a_manifest_with_a_missing_entry_raises_instead_of_a_short_body(
    owner_workspace, three_disks, rng, small_pages, missing
):
    """A hole in a manifest's entries (lost to a bug; a tus roll-back once dropped a takeover's
    committed entries) is never read as a shorter body under the full size."""
    data = rng.randbytes(40_000)
    manifest = manifest_write(workspace=owner_workspace, stream=io.BytesIO(data))
    entries = _entries(manifest)
    gone = entries[12] if missing == "middle" else entries[-1]
    gone.delete()
    received = []
    with pytest.raises(ChunkLostError):
        for block in manifest_open(manifest=manifest):
            received.append(block)
    assert b"".join(received) == data[: gone.offset]
    with pytest.raises(ChunkLostError):  # a range that starts past the hole
        list(manifest_open(manifest=manifest, start=gone.offset + gone.chunk.size - 1))
    assert read_all(manifest, start=0, end=gone.offset) == data[: gone.offset]  # before it: whole


@pytest.mark.parametrize("size", [10_000, 210_000])
def test_a_download_runs_the_same_few_queries_whatever_its_chunk_count(
    owner_workspace, three_disks, rng, size, django_assert_max_num_queries
):
    data = rng.randbytes(size)
    manifest = manifest_write(workspace=owner_workspace, stream=io.BytesIO(data))
    count = manifest.entries.count()
    assert 5 <= count <= reading.PAGE_ENTRIES and (size < 50_000 or count >= 150)
    # The lost-chunk check, the workspace's key, the readable disks, one page of entries and their copies.
    with django_assert_max_num_queries(5):
        assert read_all(manifest) == data


def test_queries_grow_with_pages_not_chunks(owner_workspace, three_disks, rng, monkeypatch, django_assert_num_queries):
    monkeypatch.setattr(reading, "PAGE_ENTRIES", 50)
    data = rng.randbytes(120_000)
    manifest = manifest_write(workspace=owner_workspace, stream=io.BytesIO(data))
    pages = -(-manifest.entries.count() // 50)
    with django_assert_num_queries(3 + 2 * pages):
        assert read_all(manifest) == data


def test_closing_a_read_early_leaves_no_work_running(owner_workspace, three_disks, rng):
    data = rng.randbytes(60_000)
    manifest = manifest_write(workspace=owner_workspace, stream=io.BytesIO(data))
    stream = manifest_open(manifest=manifest)
    first = next(stream)
    futures = [p.future for p in stream.in_flight]
    assert len(futures) == reading.READ_AHEAD_CHUNKS
    stream.close()
    assert all(f.done() for f in futures) and not stream.in_flight
    assert list(stream) == []
    assert data.startswith(first)


def test_an_abandoned_read_is_closed_when_collected(owner_workspace, three_disks, rng):
    data = rng.randbytes(60_000)
    manifest = manifest_write(workspace=owner_workspace, stream=io.BytesIO(data))
    stream = manifest_open(manifest=manifest)
    next(stream)
    futures = [p.future for p in stream.in_flight]
    del stream
    gc.collect()
    assert futures and all(f.done() for f in futures)


def test_finished_downloads_keep_no_read_buffers(settings, owner_workspace, three_disks, rng):
    settings.CLOUDSTORAGE_CHUNK_AVG = 256 * 1024  # chunks of 64 KiB .. 1 MiB, buffers worth keeping
    data = rng.randbytes(8 * 1024 * 1024)
    manifest = manifest_write(workspace=owner_workspace, stream=io.BytesIO(data))
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        first, second = manifest_open(manifest=manifest), manifest_open(manifest=manifest)
        assert b"".join(first) == data  # read to the end: it closes itself
        assert b"".join(second) == data
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # Per-thread buffers used to stay with the read pool's threads for good (1-4 MiB here).
    assert kept < 256 * 1024, f"{kept} bytes still held after both downloads ended"


def test_the_read_pool_is_recreated_after_a_fork(monkeypatch):
    from disks import pools

    pool = reading._read_pool()
    assert reading._read_pool() is pool
    monkeypatch.setattr(pools, "_pools", {"read": (-1, pool)})  # as a forked child sees it
    assert reading._read_pool() is not pool
