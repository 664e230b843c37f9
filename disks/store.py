"""The chunk store's public interface: the only module files/ imports from disks (with Manifest).

A stream goes in, a saved :class:`Manifest` comes out; a manifest opens as a verified plaintext
stream, any byte range of it. Nothing outside disks/ ever sees a chunk, a key or a disk path.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from django.db import transaction
from django.db.models import Count, F, Q, Value

from disks.chunks import readable_replicas, replica_read
from disks.chunks import repair_queue as _queue_repair
from disks.crypto import WorkspaceKeys, workspace_keys
from disks.errors import ChunkLostError, SizeLimitExceeded, StorageFullError, StoreError
from disks.models import Chunk, Manifest, ManifestChunk, Replica
from disks.placement import READABLE, replicas_wanted
from disks.writing import ManifestWriter, _chunker, manifest_release, manifest_write, manifest_writer

logger = logging.getLogger(__name__)

__all__ = [
    "_chunker",
    "ChunkLostError",
    "Manifest",
    "ManifestWriter",
    "SizeLimitExceeded",
    "StorageFullError",
    "StoreError",
    "manifest_check",
    "manifest_clone",
    "manifest_open",
    "manifest_release",
    "manifest_write",
    "manifest_writer",
]


def _entries(manifest: Manifest, start: int, end: int):
    return (
        ManifestChunk.objects.filter(manifest=manifest, offset__lt=end)
        .annotate(stop=F("offset") + F("chunk__size"))
        .filter(stop__gt=start)
        .select_related("chunk")
        .order_by("seq")
    )


def manifest_open(*, manifest: Manifest, start: int = 0, end: int | None = None) -> Iterator[bytes]:
    """Verified plaintext bytes [start, end) of the manifest, streamed chunk by chunk.

    Checks up front that every needed chunk has a copy not known to be bad (ChunkLostError before
    any byte otherwise). A copy that turns out missing or corrupt is marked and the read goes on
    from another; a repair is queued. If no good copy is left mid-stream, ChunkLostError: a wrong
    or short body is never produced."""
    if manifest.state != Manifest.State.READY:
        raise StoreError("this manifest is not complete")
    size = manifest.size
    end = size if end is None else min(end, size)
    if start < 0 or start > end:
        raise ValueError(f"bad range [{start}, {end}) for {size} bytes")
    if start == end:
        return iter(())
    lost = (
        Chunk.objects.filter(
            references__manifest=manifest, references__offset__lt=end, references__offset__gt=Value(start) - F("size")
        )
        .annotate(
            good=Count("replicas", filter=Q(replicas__state=Replica.State.OK, replicas__disk__status__in=READABLE))
        )
        .filter(good=0)
        .count()
    )
    if lost:
        raise ChunkLostError(f"{lost} chunk(s) of this content have no good copy left")
    keys = workspace_keys(workspace_id=manifest.workspace_id)
    return _stream(manifest, start, end, keys)


def _read_plaintext(chunk: Chunk, keys: WorkspaceKeys) -> bytes:
    tried: set = set()
    # Twice: a repair or drain may have moved the copies while we were reading.
    for _ in range(2):
        for replica in readable_replicas(chunk=chunk, exclude=tried):
            tried.add(replica.pk)
            result = replica_read(replica=replica, chunk=chunk, keys=keys)
            if result is None:
                _queue_repair(chunk.pk)
                continue
            return result[1]
    raise ChunkLostError(f"no good copy of a chunk is left (chunk {chunk.pk})")


def _stream(manifest: Manifest, start: int, end: int, keys: WorkspaceKeys) -> Iterator[bytes]:
    for entry in _entries(manifest, start, end).iterator(chunk_size=200):
        plaintext = _read_plaintext(entry.chunk, keys)
        lo = max(start - entry.offset, 0)
        hi = min(end - entry.offset, len(plaintext))
        yield plaintext[lo:hi] if (lo, hi) != (0, len(plaintext)) else plaintext


def _copy_counts(manifest: Manifest):
    return (
        Chunk.objects.filter(references__manifest=manifest)
        .annotate(
            good=Count("replicas", filter=Q(replicas__state=Replica.State.OK, replicas__disk__status__in=READABLE))
        )
        .values_list("good", flat=True)
    )


def manifest_check(*, manifest: Manifest) -> str:
    """ "ok" when every chunk has all its copies, "degraded" when some have fewer, "lost" when a
    chunk has none. From the recorded state of the copies (scrub and reads keep it current)."""
    wanted = replicas_wanted()
    status = "ok"
    for good in set(_copy_counts(manifest)):
        if good == 0:
            return "lost"
        if good < wanted:
            status = "degraded"
    return status


def manifest_clone(*, manifest: Manifest) -> Manifest:
    """A new ready manifest with the same content, sharing the chunks (no bytes copied)."""
    with transaction.atomic():
        clone = Manifest.objects.create(
            workspace_id=manifest.workspace_id,
            state=Manifest.State.READY,
            size=manifest.size,
            sha256=manifest.sha256,
        )
        entries = (
            ManifestChunk.objects.filter(manifest=manifest).order_by("seq").values_list("seq", "offset", "chunk_id")
        )
        ManifestChunk.objects.bulk_create(
            [
                ManifestChunk(manifest=clone, seq=seq, offset=offset, chunk_id=chunk_id)
                for seq, offset, chunk_id in entries
            ],
            batch_size=1000,
        )
    return clone
