"""Writing a stream into the chunk store: a pipeline with group commit (used through disks/store.py).

The request thread reads the body, feeds the whole-content SHA-256 and cuts chunks (FastCDC). Each
chunk's keyed digest is computed in a pool; chunks are then handled a *batch* at a time:

1. one transaction records the batch: a bulk lookup of the digests (deduplication, under the row
   locks GC also takes), the new Chunk rows, the ManifestChunk rows of the pending manifest, one
   conditional reservation per disk for the whole batch, and a Replica row per planned copy in
   state ``new`` (never read, repaired or scrubbed);
2. the pool encrypts each new chunk once and writes its copies, each durable before ``put``
   returns, while the request thread goes on reading and cutting the next batch;
3. when a batch's writes are done, one UPDATE per disk turns its ``new`` copies ``ok`` (in the same
   transaction as the next batch's records).

Durability does not change: ``finish`` returns (and the manifest becomes visible) only after every
chunk has its write quorum of durable copies recorded ``ok``. A process killed anywhere leaves a
pending manifest, Chunk rows and ``new`` copies, all of which the GC collects (the copies through
PendingDelete, which also gives back their reserved bytes); nothing is ever visible half-written.

Memory stays bounded: one batch being written while the next (at most ``BATCH_BYTES``) is cut, and
the cutting buffer (a maximum chunk and an eighth, plus the block being added). A chunk being
written is held once: its plaintext goes as soon as it is encrypted (a copy that fails is written
elsewhere from its ciphertext), so the copies' fsyncs wait with one buffer per chunk, not two.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, wait
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from pyfastcdc import FastCDC

from disks.chunks import NoRoomError, chunk_collect, chunk_store_copies, object_put_all, put_refused, repair_soon
from disks.crypto import OVERHEAD, WorkspaceKeys, workspace_keys
from disks.errors import SizeLimitExceeded, StorageFullError, StoreError
from disks.models import Chunk, Disk, Manifest, ManifestChunk, Replica
from disks.placement import (
    READABLE,
    disk_reserve,
    disk_unreserve,
    replicas_wanted,
    workspace_place,
    writable_primaries,
    write_candidates,
)
from disks.pools import pool

logger = logging.getLogger(__name__)

# Bytes asked of a stream at a time. For a request body that is gunicorn's largest recv(): it hands
# back what was asked for and re-buffers the rest, so asking for less (256 KiB) made it copy its
# whole buffer again on every call, ~7 copies of each byte; 1 MiB costs 2.
READ_BLOCK = 1024 * 1024
DISK_LIST_TTL = 5.0
TOUCH_EVERY = 60.0
# A batch is recorded in one transaction; two batches are in flight (one being written while the
# next is cut), so a web process holds at most ~2 x BATCH_BYTES of chunks per upload.
BATCH_CHUNKS = 16
BATCH_BYTES = 4 * 1024 * 1024
IN_FLIGHT = 1
WORKERS = 4


def _chunker() -> FastCDC:
    avg = int(settings.CLOUDSTORAGE_CHUNK_AVG)
    return FastCDC(avg, min_size=max(64, avg // 4), max_size=max(1024, avg * 4))


@dataclass
class _Piece:
    """One cut chunk of the stream: where it goes in the manifest and its plaintext until settled."""

    seq: int
    offset: int
    plaintext: bytes
    hashing: Future  # of the keyed digest
    digest: str = ""
    chunk: Chunk | None = None


@dataclass
class _Batch:
    """New chunks of one recorded batch whose copies are being written to ``disks``."""

    disks: list[Disk]
    writes: dict = field(default_factory=dict)  # chunk id -> (chunk, Future of _encrypt_and_put)


def _encrypt_and_put(keys: WorkspaceKeys, plaintext: list[bytes], key: str, disks: list[Disk]) -> tuple:
    """Runs in the pool: encrypt once, write every copy at once (each durable when its put
    returns; their fsyncs overlap). ``plaintext`` holds the only reference to the chunk's bytes,
    taken out here so they are freed once encrypted. Returns each disk's error (without its
    traceback) or None, and the ciphertext when a copy failed (to be written elsewhere)."""
    blob = keys.encrypt(plaintext.pop(), object_key=key)
    errors = [None if error is None else error.with_traceback(None) for error in object_put_all(disks, key, blob)]
    return errors, (blob if any(errors) else None)


class ManifestWriter:
    """Writes a stream piece by piece into a pending manifest; ``finish`` makes it visible.

    Every chunk is referenced by the pending manifest from the moment it is recorded, so GC never
    collects it under an upload; an upload abandoned by a crash leaves a pending manifest that GC
    releases after a grace period.
    """

    def __init__(self, *, workspace, size_limit: int | None = None):
        # The pending manifest is inserted with the first batch's records (or by finish, for an
        # empty content): one commit fewer per upload, and no row at all for one refused early.
        self._setup(workspace=workspace, manifest=Manifest(workspace=workspace, state=Manifest.State.PENDING))
        self._manifest_saved = False
        self.size_limit = size_limit
        # One read of the disk list serves the placement and the first batch's candidates.
        active = writable_primaries()
        self.placement = workspace_place(workspace=workspace, active=active)
        self._disks = write_candidates(
            workspace=workspace, size=0, exclude=set(), placement=self.placement, active=active
        )
        self._disks_at = time.monotonic()

    def _setup(self, *, workspace, manifest: Manifest, size: int = 0, offset: int = 0, seq: int = 0) -> None:
        self.workspace = workspace
        self.manifest = manifest
        self.size_limit = None
        self.keys: WorkspaceKeys = workspace_keys(workspace_id=workspace.pk)
        self.cdc = _chunker()
        self.buffer = bytearray()
        self.sha = hashlib.sha256()
        self.size = size  # bytes accepted
        self.offset = offset  # bytes cut into chunks
        self.seq = seq
        self.created: list = []  # chunks this writer created, collected at once on abort
        self.closed = False
        self._manifest_saved = True
        self.placement = None
        self._disks: list = []
        self._disks_at: float | None = None
        self._touched = time.monotonic()
        self._pieces: list[_Piece] = []
        self._pieces_bytes = 0
        self._in_flight: deque[_Batch] = deque()
        self._unsettled: set[str] = set()  # digests of the chunks this writer is still writing

    # --- Taking bytes ---------------------------------------------------------------------------

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
            # Cut once the buffer holds a maximum chunk and an eighth: every piece but the last then
            # ends at the content-defined cut point a cut of the whole file would choose (the last
            # may still grow), and what a request holds is what a web worker's peak memory is made of.
            if len(self.buffer) >= self.cdc.max_size + max(self.cdc.max_size // 8, 64 * 1024):
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
        digest = self.keys.digest
        workers = pool("write", workers=WORKERS)
        # One copy per chunk (bytes of a memoryview slice), not two (a bytearray slice, then bytes).
        with memoryview(self.buffer) as view:
            for offset, length in cuts:
                plaintext = bytes(view[offset : offset + length])
                self._pieces.append(_Piece(self.seq, self.offset, plaintext, workers.submit(digest, plaintext)))
                self._pieces_bytes += length
                self.seq += 1
                self.offset += length
                consumed = offset + length
                if len(self._pieces) >= BATCH_CHUNKS or self._pieces_bytes >= BATCH_BYTES:
                    self._flush()
        del self.buffer[:consumed]

    # --- Recording and writing batches ----------------------------------------------------------

    def _candidates(self, size: int) -> list:
        # The disk list is re-read every few seconds, not per batch; the conditional reservation
        # (disk_reserve) is what really decides whether a disk takes the copies.
        now = time.monotonic()
        if self._disks_at is None or now - self._disks_at > DISK_LIST_TTL:
            self._disks = write_candidates(workspace=self.workspace, size=0, exclude=set(), placement=self.placement)
            self._disks_at = now
        return [d for d in self._disks if d.free_bytes >= size]

    def _flush(self) -> None:
        """Record the cut pieces as one batch and start writing their new chunks."""
        pieces, self._pieces, self._pieces_bytes = self._pieces, [], 0
        if not pieces:
            return
        for piece in pieces:
            piece.digest = piece.hashing.result()
        while len(self._in_flight) >= IN_FLIGHT:
            self._settle(self._in_flight.popleft())
        with transaction.atomic():
            # Batches whose writes already finished are recorded in this same transaction.
            while self._in_flight and all(f.done() for _c, f in self._in_flight[0].writes.values()):
                self._settle(self._in_flight.popleft())
            self._manifest_save()
            fresh, orphans = self._record(pieces)
            batch = self._reserve(fresh)
        for chunk, plaintext in orphans:
            self._store_slow(chunk=chunk, plaintext=plaintext, fresh=False)
        if batch is None:
            # Not enough disks could take the whole batch at once (nearly full): chunk by chunk.
            for chunk, plaintext in fresh:
                self._store_slow(chunk=chunk, plaintext=plaintext, fresh=True)
            return
        workers = pool("write", workers=WORKERS)
        for chunk, plaintext in fresh:
            # Once this returns, the task holds the only reference to the plaintext.
            future = workers.submit(_encrypt_and_put, self.keys, [plaintext], chunk.key, batch.disks)
            batch.writes[chunk.pk] = (chunk, future)
            self._unsettled.add(chunk.digest)
        if batch.writes:
            self._in_flight.append(batch)

    def _manifest_save(self) -> None:
        """In the caller's transaction: insert the pending manifest before anything refers to it."""
        if not self._manifest_saved:
            self.manifest.save(force_insert=True)
            self._manifest_saved = True

    def _record(self, pieces: list[_Piece]) -> tuple[list, list]:
        """In the caller's transaction: dedup by digest, create the new chunks, reference every
        piece. Returns (new chunks with their plaintext, existing chunks that have no good copy)."""
        workspace_id = self.workspace.pk
        digests = {p.digest for p in pieces}
        # Locked like chunk_collect locks them: GC either sees our references or we see it gone.
        existing = {
            c.digest: c for c in Chunk.objects.select_for_update().filter(workspace_id=workspace_id, digest__in=digests)
        }
        with_copies = set(
            Replica.objects.filter(
                chunk_id__in=[c.pk for c in existing.values()],
                state=Replica.State.OK,
                disk__status__in=READABLE,
                # A chunk left with only its backup-tier copy gets fresh primary copies from this
                # upload's plaintext rather than waiting for repair.
                disk__role=Disk.Role.PRIMARY,
            ).values_list("chunk_id", flat=True)
            if existing
            else ()
        )
        for chunk in existing.values():
            chunk.good = chunk.pk in with_copies
        planned: dict[str, Chunk] = {}
        for piece in pieces:
            if piece.digest in existing or piece.digest in planned:
                continue
            size = len(piece.plaintext)
            planned[piece.digest] = Chunk(
                id=uuid.uuid4(), workspace_id=workspace_id, digest=piece.digest, size=size, stored_size=size + OVERHEAD
            )
        if planned:
            # Another upload may create the same chunk at this moment: whoever inserts first wins,
            # the other finds it below and writes its own copies of it (same key, same plaintext).
            Chunk.objects.bulk_create(planned.values(), ignore_conflicts=True)
            mine = set(Chunk.objects.filter(pk__in=[c.pk for c in planned.values()]).values_list("digest", flat=True))
            for digest in set(planned) - mine:
                chunk = Chunk.objects.select_for_update().get(workspace_id=workspace_id, digest=digest)
                chunk.good = False
                existing[digest] = chunk
                del planned[digest]
        fresh: list = []
        orphans: list = []
        seen: set = set()
        for piece in pieces:
            chunk = planned.get(piece.digest)
            if chunk is not None:
                if piece.digest not in seen:
                    fresh.append((chunk, piece.plaintext))
            else:
                chunk = existing[piece.digest]
                # No good copy: lost, or still being written. Ours settle before finish; anyone
                # else's might never, so this upload writes its own copies.
                if not chunk.good and piece.digest not in self._unsettled and piece.digest not in seen:
                    orphans.append((chunk, piece.plaintext))
            seen.add(piece.digest)
            piece.chunk = chunk
        ManifestChunk.objects.bulk_create(
            [ManifestChunk(manifest=self.manifest, seq=p.seq, offset=p.offset, chunk=p.chunk) for p in pieces]
        )
        self.created.extend(chunk.pk for chunk, _ in fresh)
        if time.monotonic() - self._touched > TOUCH_EVERY:
            Manifest.objects.filter(pk=self.manifest.pk).update(touched_at=timezone.now())
            self._touched = time.monotonic()
        return fresh, orphans

    def _reserve(self, fresh: list) -> _Batch | None:
        """In the caller's transaction: reserve the batch's bytes on as many disks as copies are
        wanted (one conditional UPDATE per disk) and record a ``new`` copy per chunk and disk.
        None when fewer disks than the write quorum could take the whole batch."""
        if not fresh:
            return _Batch(disks=[])
        total = sum(chunk.stored_size for chunk, _ in fresh)
        largest = max(chunk.stored_size for chunk, _ in fresh)
        candidates = self._candidates(largest)
        if not candidates:
            self._disks_at = None
            candidates = self._candidates(largest)
        if not candidates:
            raise StorageFullError(f"no active disk has room for {largest} more bytes")
        wanted = replicas_wanted()
        chosen: list[Disk] = []
        for disk in candidates:
            if len(chosen) == wanted:
                break
            if disk_reserve(disk=disk, size=total):
                chosen.append(disk)
        if len(chosen) < min(wanted, len(candidates)):
            for disk in chosen:
                disk_unreserve(disk_id=disk.pk, size=total)
            return None
        Replica.objects.bulk_create(
            [Replica(chunk=chunk, disk=disk, state=Replica.State.NEW) for chunk, _ in fresh for disk in chosen]
        )
        return _Batch(disks=chosen)

    def _settle(self, batch: _Batch) -> None:
        """Wait for a batch's writes, then record them: one UPDATE per disk turns the copies that
        landed ``ok``; a copy that failed gives back its bytes, and a chunk left short of its quorum
        gets copies on other disks or fails the upload."""
        wait([future for _c, future in batch.writes.values()])
        now = timezone.now()
        landed: dict = {disk.pk: [] for disk in batch.disks}
        short: list = []
        # No savepoint when called inside a transaction (the next batch's, the checkpoint's, the
        # finish's): an error here fails that transaction as a whole, as each caller wants.
        with transaction.atomic(savepoint=False):
            for chunk, future in batch.writes.values():
                errors, blob = future.result()
                ok = 0
                for disk, error in zip(batch.disks, errors, strict=True):
                    if error is None:
                        landed[disk.pk].append(chunk.pk)
                        ok += 1
                        continue
                    put_refused(disk=disk, chunk_id=chunk.pk, error=error)
                    if Replica.objects.filter(chunk=chunk, disk=disk, state=Replica.State.NEW).delete()[0]:
                        disk_unreserve(disk_id=disk.pk, size=chunk.stored_size)
                if ok < len(batch.disks):
                    short.append((chunk, blob, ok))
                self._unsettled.discard(chunk.digest)
            # Disks that landed the same chunks (every disk, unless one failed) share one UPDATE.
            same: dict[tuple, list] = {}
            for disk_id, chunk_ids in landed.items():
                if chunk_ids:
                    same.setdefault(tuple(chunk_ids), []).append(disk_id)
            for chunk_ids, disk_ids in same.items():
                updated = Replica.objects.filter(
                    disk_id__in=disk_ids, chunk_id__in=chunk_ids, state__in=(Replica.State.NEW, Replica.State.OK)
                ).update(state=Replica.State.OK, verified_at=now, error="")
                if updated != len(chunk_ids) * len(disk_ids):
                    # A copy's row vanished while it was written (dropped by maintenance): the
                    # copies recorded are the truth; never claim one that is not recorded.
                    raise StoreError("a copy being written was dropped meanwhile; try again")
        for chunk, blob, ok in short:
            self._store_slow(chunk=chunk, blob=blob, fresh=False, have=ok, exclude={d.pk for d in batch.disks})

    def _wait_written(self) -> None:
        """Until every write started is done (recorded by ``_settle_all``)."""
        wait([future for batch in self._in_flight for _c, future in batch.writes.values()])

    def _settle_all(self) -> None:
        while self._in_flight:
            self._settle(self._in_flight.popleft())

    def _store_slow(
        self,
        *,
        chunk: Chunk,
        fresh: bool,
        plaintext: bytes | None = None,
        blob: bytes | bytearray | None = None,
        have: int = 0,
        exclude=frozenset(),
    ) -> None:
        """Chunk by chunk, each copy reserved, written and recorded on its own: for a nearly full
        category, for copies another disk refused, and for a chunk that has no good copy."""
        wanted = replicas_wanted()
        if have >= wanted:
            return
        if blob is None:
            blob = self.keys.encrypt(plaintext, object_key=chunk.key)
        self._disks_at = None
        candidates = [d for d in self._candidates(len(blob)) if d.pk not in exclude]
        # The write quorum: every copy while enough healthy disks have room, never fewer than one. A
        # disk with room that fails the write fails the upload: durability comes before availability.
        quorum = min(wanted, have + len(candidates))
        if quorum == 0:
            raise StorageFullError(f"no active disk has room for {len(blob)} more bytes")
        written: list = []
        if candidates:
            try:
                written = chunk_store_copies(
                    chunk=chunk,
                    blob=blob,
                    workspace=self.workspace,
                    want=wanted - have,
                    exclude=set(exclude),
                    candidates=candidates,
                    fresh=fresh,
                )
            except NoRoomError as exc:
                if not have:
                    raise StorageFullError(str(exc)) from exc
        if have + len(written) == 0:
            raise StorageFullError("no disk accepted the chunk (all full or failing)")
        if have + len(written) < quorum:
            raise StoreError(f"only {have + len(written)} of {quorum} copies could be written; try again later")
        if have + len(written) < wanted:
            repair_soon()

    def drain(self) -> None:
        """Record and write everything cut so far; when it returns every chunk cut so far has its
        write quorum of durable copies recorded."""
        self._flush()
        self._settle_all()

    # --- Ending ----------------------------------------------------------------------------------

    def finish(self) -> Manifest:
        """Store what is left, then make the manifest visible; returns it (state ready)."""
        if self.closed:
            raise StoreError("this writer is closed")
        try:
            self._cut(final=True)
            self._flush()
            # The last copies are recorded in the transaction that makes the manifest visible (one
            # commit fewer for a small file); waited for first, so no lock is held over an fsync.
            self._wait_written()
            with transaction.atomic():
                self._settle_all()
                self.manifest.state = Manifest.State.READY
                self.manifest.size = self.size
                self.manifest.sha256 = self.sha.hexdigest()
                self.manifest.touched_at = timezone.now()
                if self._manifest_saved:
                    self.manifest.save(update_fields=["state", "size", "sha256", "touched_at"])
                else:  # an empty content: no batch was ever recorded
                    self._manifest_save()
        except BaseException:
            self.abort()
            raise
        self.closed = True
        self.buffer = bytearray()
        return self.manifest

    def _quiesce(self) -> None:
        """Stop the pipeline: no write of this writer is still running when this returns (so no
        object lands after its rows are dropped)."""
        futures = [p.hashing for p in self._pieces]
        for batch in self._in_flight:
            futures += [future for _c, future in batch.writes.values()]
        for future in futures:
            future.cancel()
        wait(futures)
        self._pieces, self._pieces_bytes = [], 0
        self._in_flight.clear()
        self._unsettled.clear()
        self.buffer = bytearray()

    def abort(self) -> None:
        """Drop everything written so far; chunks only this upload used are deleted right away
        (their copies, ``new`` or ``ok``, through PendingDelete, which also frees their bytes)."""
        if self.closed:
            return
        self.closed = True
        self._quiesce()
        try:
            if self._manifest_saved:
                manifest_release(manifest=self.manifest)
            for chunk_id in self.created:
                chunk_collect(chunk_id=chunk_id)
        except Exception:
            # GC collects what is left after its grace period.
            logger.exception("could not clean up an aborted upload (manifest %s)", self.manifest.pk)


def manifest_release(*, manifest: Manifest) -> None:
    """Drop the manifest and its references; chunks nothing else uses are collected after a grace period."""
    with transaction.atomic():
        Chunk.objects.filter(references__manifest_id=manifest.pk).update(released_at=timezone.now())
        Manifest.objects.filter(pk=manifest.pk).delete()


def stream_blocks(stream) -> Iterator[bytes]:
    """The bytes of a file-like object (``READ_BLOCK`` at a time) or of an iterable of bytes."""
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
        for block in stream_blocks(stream):
            writer.write(block)
    except BaseException:
        writer.abort()
        raise
    return writer.finish()


def manifest_writer(*, workspace, size_limit: int | None = None) -> ManifestWriter:
    return ManifestWriter(workspace=workspace, size_limit=size_limit)
