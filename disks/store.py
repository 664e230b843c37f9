"""The chunk store's public interface: the only module files/ imports from disks (with Manifest).

A stream goes in, a saved :class:`Manifest` comes out; a manifest opens as a verified plaintext
stream, any byte range of it. Nothing outside disks/ ever sees a chunk, a key or a disk path.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable, Iterator

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from pyfastcdc import FastCDC

from disks.chunks import (
    NoRoomError,
    chunk_store_copies,
)
from disks.crypto import OVERHEAD, WorkspaceKeys, workspace_keys
from disks.errors import ChunkLostError, SizeLimitExceeded, StorageFullError, StoreError
from disks.models import Chunk, Manifest, ManifestChunk, Replica
from disks.placement import READABLE, replicas_wanted, workspace_place, write_candidates
from disks.reading import manifest_open

logger = logging.getLogger(__name__)

__all__ = [
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


READ_BLOCK = 1024 * 1024
DISK_LIST_TTL = 5.0
TOUCH_EVERY = 60.0


def _chunker() -> FastCDC:
    avg = int(settings.CLOUDSTORAGE_CHUNK_AVG)
    return FastCDC(avg, min_size=max(64, avg // 4), max_size=max(1024, avg * 4))


def _queue_repair(chunk_id) -> None:
    from disks.tasks import chunk_repair

    transaction.on_commit(lambda: chunk_repair.delay(chunk_id=str(chunk_id)))


class ManifestWriter:
    """Writes a stream piece by piece into a pending manifest; ``finish`` makes it visible.

    Memory stays bounded: at most a few maximum-size chunks are buffered whatever is written.
    Every chunk is referenced by the pending manifest from the moment it is stored, so GC never
    collects it under an upload; an upload abandoned by a crash leaves a pending manifest that GC
    releases after a grace period.
    """

    def __init__(self, *, workspace, size_limit: int | None = None):
        self.workspace = workspace
        self.size_limit = size_limit
        self.keys: WorkspaceKeys = workspace_keys(workspace_id=workspace.pk)
        self.cdc = _chunker()
        self.buffer = bytearray()
        self.sha = hashlib.sha256()
        self.size = 0  # bytes accepted
        self.offset = 0  # bytes cut into chunks
        self.seq = 0
        self.created: list = []  # chunks this writer created, collected at once on abort
        self.closed = False
        self.placement = workspace_place(workspace=workspace)
        self._disks: list = []
        self._disks_at: float | None = None
        self._touched = time.monotonic()
        self.manifest = Manifest.objects.create(workspace=workspace, state=Manifest.State.PENDING)

    def write(self, data: bytes) -> None:
        if self.closed:
            raise StoreError("this writer is closed")
        if not data:
            return
        if self.size_limit is not None and self.size + len(data) > self.size_limit:
            self.abort()
            raise SizeLimitExceeded(f"more than {self.size_limit} bytes")
        try:
            self.sha.update(data)
            self.size += len(data)
            self.buffer += data
            # Cut only when the buffer holds two maximum chunks: every chunk but the last then ends at
            # a content-defined cut point, the same one a cut of the whole file would choose.
            if len(self.buffer) >= 2 * self.cdc.max_size:
                self._cut(final=False)
        except BaseException:
            self.abort()
            raise

    def _cut(self, *, final: bool) -> None:
        with memoryview(self.buffer) as view:
            cuts = [(piece.offset, piece.length) for piece in self.cdc.cut_buf(view)]
        if not final:
            cuts = cuts[:-1]
        consumed = 0
        # One copy per chunk (bytes of a memoryview slice), not two (a bytearray slice, then bytes).
        with memoryview(self.buffer) as view:
            for offset, length in cuts:
                self._store(bytes(view[offset : offset + length]))
                consumed = offset + length
        del self.buffer[:consumed]

    def _candidates(self, size: int) -> list:
        # The disk list is re-read every few seconds, not per chunk; the conditional reservation
        # (disk_reserve) is what really decides whether a disk takes a copy.
        now = time.monotonic()
        if self._disks_at is None or now - self._disks_at > DISK_LIST_TTL:
            self._disks = write_candidates(workspace=self.workspace, size=0, exclude=set(), placement=self.placement)
            self._disks_at = now
        return [d for d in self._disks if d.free_bytes >= size]

    def _store(self, plaintext: bytes) -> None:
        digest = self.keys.digest(plaintext)
        with transaction.atomic():
            chunk, created = Chunk.objects.select_for_update().get_or_create(
                workspace_id=self.workspace.pk,
                digest=digest,
                defaults={"size": len(plaintext), "stored_size": len(plaintext) + OVERHEAD},
            )
            ManifestChunk.objects.create(manifest=self.manifest, seq=self.seq, offset=self.offset, chunk=chunk)
            if time.monotonic() - self._touched > TOUCH_EVERY:
                Manifest.objects.filter(pk=self.manifest.pk).update(touched_at=timezone.now())
                self._touched = time.monotonic()
        self.seq += 1
        self.offset += len(plaintext)
        if created:
            self.created.append(chunk.pk)
        elif Replica.objects.filter(chunk=chunk, state=Replica.State.OK, disk__status__in=READABLE).exists():
            return  # stored before: deduplicated
        wanted = replicas_wanted()
        blob = self.keys.encrypt(plaintext, object_key=chunk.key)
        candidates = self._candidates(len(blob))
        if not candidates:
            self._disks_at = None
            candidates = self._candidates(len(blob))
        if not candidates:
            raise StorageFullError(f"no active disk has room for {len(blob)} more bytes")
        # The write quorum: every copy while enough healthy disks have room, never fewer than one. A
        # disk with room that fails the write fails the upload: durability comes before availability.
        quorum = min(wanted, len(candidates))
        try:
            written = chunk_store_copies(
                chunk=chunk,
                blob=blob,
                workspace=self.workspace,
                want=wanted,
                exclude=set(),
                candidates=candidates,
                fresh=created,
            )
        except NoRoomError as exc:
            raise StorageFullError(str(exc)) from exc
        if len(written) < quorum:
            # A disk looked like it had room and did not take the copy: look again once.
            self._disks_at = None
            more = [d for d in self._candidates(len(blob)) if d not in written]
            written += (
                chunk_store_copies(
                    chunk=chunk,
                    blob=blob,
                    workspace=self.workspace,
                    want=wanted - len(written),
                    exclude={d.pk for d in written},
                    candidates=more,
                    fresh=created,
                )
                if more
                else []
            )
            if not written:
                raise StorageFullError("no disk accepted the chunk (all full or failing)")
            if len(written) < min(quorum, len(written) + len(more)):
                raise StoreError(f"only {len(written)} of {quorum} copies could be written; try again later")
        if len(written) < wanted:
            _queue_repair(chunk.pk)

    def finish(self) -> Manifest:
        """Store what is left, then make the manifest visible; returns it (state ready)."""
        if self.closed:
            raise StoreError("this writer is closed")
        try:
            self._cut(final=True)
            with transaction.atomic():
                self.manifest.state = Manifest.State.READY
                self.manifest.size = self.size
                self.manifest.sha256 = self.sha.hexdigest()
                self.manifest.touched_at = timezone.now()
                self.manifest.save(update_fields=["state", "size", "sha256", "touched_at"])
        except BaseException:
            self.abort()
            raise
        self.closed = True
        self.buffer = bytearray()
        return self.manifest

    def abort(self) -> None:
        """Drop everything written so far; chunks only this upload used are deleted right away."""
        if self.closed:
            return
        self.closed = True
        self.buffer = bytearray()
        try:
            manifest_release(manifest=self.manifest)
            from disks.services import chunk_collect

            for chunk_id in self.created:
                chunk_collect(chunk_id=chunk_id)
        except Exception:
            # GC collects what is left after its grace period.
            logger.exception("could not clean up an aborted upload (manifest %s)", self.manifest.pk)


def manifest_writer(*, workspace, size_limit: int | None = None) -> ManifestWriter:
    return ManifestWriter(workspace=workspace, size_limit=size_limit)


def _blocks(stream) -> Iterator[bytes]:
    read = getattr(stream, "read", None)
    if read is not None:
        while True:
            block = read(READ_BLOCK)
            if not block:
                return
            yield block
    else:
        yield from stream


def manifest_write(*, workspace, stream: object | Iterable[bytes], size_limit: int | None = None) -> Manifest:
    """Store a whole stream (file-like with ``read`` or an iterable of bytes); a saved, ready manifest.

    Acknowledged only once every chunk has its write quorum of durable copies. On any error nothing
    is visible: StorageFullError, SizeLimitExceeded, or the stream's own exception."""
    writer = ManifestWriter(workspace=workspace, size_limit=size_limit)
    try:
        for block in _blocks(stream):
            writer.write(block)
    except BaseException:
        writer.abort()
        raise
    return writer.finish()


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


def manifest_release(*, manifest: Manifest) -> None:
    """Drop the manifest and its references; chunks nothing else uses are collected after a grace period."""
    with transaction.atomic():
        Chunk.objects.filter(references__manifest_id=manifest.pk).update(released_at=timezone.now())
        Manifest.objects.filter(pk=manifest.pk).delete()
