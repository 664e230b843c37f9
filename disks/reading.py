"""Reading a manifest: verified plaintext of any byte range, streamed with read-ahead.

disks/store.py exports :func:`manifest_open`; this module is how it works.

Queries. The entries of the range are read a page at a time (PAGE_ENTRIES of them, in seq order),
and the good copies of a page's chunks in one more query, so a download costs a fixed handful of
queries (the lost-chunk check, the workspace key, the readable disks, two per page) however many
chunks it has. Pages are loaded as plain values, not model instances: with the disk of every
copy, instances made a page cost four times its queries.

Read-ahead. While the caller sends one chunk, the next few (READ_AHEAD_CHUNKS, at most
READ_AHEAD_BYTES of plaintext) are read from their disks and decrypted in a small thread pool;
file reads, S3 requests and AES-GCM all release the GIL. The pool threads never touch the
database (Django connections are per thread): a fetch only returns the plaintext or what went
wrong, and the consuming thread marks a missing or corrupt copy bad, asks for a repair pass on
commit and reads another copy. Memory is bounded by the window, not by the file (plus one reused
ciphertext buffer per pool thread, at most a maximum chunk each). Closing the
stream (a client that went away) cancels what has not started and waits for the few reads that
have, so no work outlives the response.

Authenticity on reads comes from the AES-GCM tag alone, plus a length check. The associated data
of every copy is its object key (``ws/<workspace id>/../<chunk id>``, see ``Chunk.key``), so a
copy that verifies was produced, for exactly this chunk of exactly this workspace, by a holder of
the workspace's data key, which only our own writer has (it is stored wrapped by the master key).
Bit rot, a truncated or torn file, a copy of another chunk or of another tenant's chunk put under
this name: each fails the tag and is treated as a bad copy. (Chunk ids are never reused, so an
older object under the same name can only be another encryption of the same plaintext.)

What the full check (``chunks.chunk_verify_blob``: the keyed digest of the plaintext compared with
the chunk's address) would add on a read is protection against our own writer having sealed the
wrong plaintext under a chunk's key, i.e. a bug in the write path (a buffer mix-up in a pipelined
writer, a dedup row pointing at a chunk whose bytes differ). Against anyone else it adds nothing:
whoever can forge a tag holds the data key and can compute the digest as well. Such a bug is not
spread by maintenance: scrub, fsck and repair keep the full check, so repair only copies a copy
whose plaintext matches its address and scrub finds a wrong one. Re-hashing every byte of every
download for that case cost about 15% of a read.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from django.db.models import Count, F, Q, Value

from disks.backends import BackendError, ObjectMissing, backend_for
from disks.chunks import readable_replicas, repair_soon, replica_mark_bad, replica_rank
from disks.crypto import CryptoError, WorkspaceKeys, workspace_keys
from disks.errors import ChunkLostError, StoreError
from disks.models import Chunk, Disk, Manifest, ManifestChunk, Replica
from disks.placement import READABLE
from disks.pools import pool

logger = logging.getLogger(__name__)

# Entries (and their copies) loaded per pair of queries.
PAGE_ENTRIES = 256
# Chunks read ahead of the one being sent, and the plaintext bytes they may hold at most (a chunk
# is at most 4 MiB; one is always allowed, whatever its size).
READ_AHEAD_CHUNKS = 4
READ_AHEAD_BYTES = 16 * 1024 * 1024
READ_THREADS = 4


def _read_pool() -> ThreadPoolExecutor:
    return pool("read", workers=READ_THREADS)


@dataclass(frozen=True)
class _Copy:
    """A good copy as loaded with its page (plain values: a page of model instances costs more than
    its queries)."""

    pk: int
    chunk_id: object
    disk: Disk

    def replica(self) -> Replica:
        return Replica(pk=self.pk, chunk_id=self.chunk_id, disk=self.disk)


@dataclass
class _Entry:
    offset: int
    chunk: Chunk  # id, workspace_id and size only
    copies: list[_Copy]  # good copies on readable disks when the page was loaded, best first


@dataclass(frozen=True)
class _Fetched:
    plaintext: bytes | None = None
    error: str = ""
    bad: bool = False  # the disk answered and the copy is missing or not this chunk


# A read buffer is kept for the next chunk when it is at most this big: reuse saves a page fault per
# 4 KiB (~0.5 CPU s/GB of downloads); chunks average ~1.25 MiB, a 4 MiB one gets a buffer of its own,
# freed after it.
KEEP_BUFFER_BYTES = 2 * 1024 * 1024


class _ReadBuffers:
    """The read buffers kept for reuse, while any reader is open: when the last one closes they go,
    so a worker between downloads holds none (kept per thread, they stayed resident for good, ~5 MB
    of every web worker that had served a download)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._free: list[bytearray] = []
        self._readers = 0

    def reader_opened(self) -> None:
        with self._lock:
            self._readers += 1

    def reader_closed(self) -> None:
        with self._lock:
            self._readers -= 1
            if not self._readers:
                self._free.clear()

    def take(self) -> bytearray:
        with self._lock:
            return self._free.pop() if self._free else bytearray()

    def give(self, buffer: bytearray) -> None:
        if len(buffer) <= KEEP_BUFFER_BYTES:
            with self._lock:
                if self._readers:
                    self._free.append(buffer)


_buffers = _ReadBuffers()


def _fetch(disk: Disk, key: str, size: int, keys: WorkspaceKeys) -> _Fetched:
    """Read and decrypt one copy. Runs in the pool (or, after a failure, in the consuming thread):
    no database access here."""
    buffer = _buffers.take()
    try:
        with backend_for(disk).get_into(key, buffer) as blob:
            plaintext = keys.decrypt(blob, object_key=key)
    except ObjectMissing:
        return _Fetched(error="missing", bad=True)
    except CryptoError as exc:
        return _Fetched(error=f"corrupt: {exc}", bad=True)
    except BackendError as exc:
        return _Fetched(error=str(exc))
    finally:
        _buffers.give(buffer)
    if len(plaintext) != size:
        return _Fetched(error=f"corrupt: {len(plaintext)} bytes instead of {size}", bad=True)
    return _Fetched(plaintext=plaintext)


def _pages(manifest_id, start: int, end: int) -> Iterator[list[_Entry]]:
    """The entries covering [start, end) in order, a page at a time, with their good copies."""
    disks = {disk.pk: disk for disk in Disk.objects.filter(status__in=READABLE)}
    after_seq = None
    while True:
        rows = ManifestChunk.objects.filter(manifest_id=manifest_id, offset__lt=end)
        if after_seq is None:
            rows = rows.annotate(stop=F("offset") + F("chunk__size")).filter(stop__gt=start)
        else:
            rows = rows.filter(seq__gt=after_seq)
        rows = list(
            rows.order_by("seq").values_list("seq", "offset", "chunk_id", "chunk__workspace_id", "chunk__size")[
                :PAGE_ENTRIES
            ]
        )
        if not rows:
            return
        copies: dict = {}
        for pk, chunk_id, disk_id in Replica.objects.filter(
            chunk_id__in={row[2] for row in rows}, state=Replica.State.OK, disk_id__in=list(disks)
        ).values_list("pk", "chunk_id", "disk_id"):
            copies.setdefault(chunk_id, []).append(_Copy(pk=pk, chunk_id=chunk_id, disk=disks[disk_id]))
        for found in copies.values():
            found.sort(key=replica_rank)
        yield [
            _Entry(
                offset=offset,
                chunk=Chunk(id=chunk_id, workspace_id=workspace_id, size=size),
                copies=copies.get(chunk_id, []),
            )
            for _seq, offset, chunk_id, workspace_id, size in rows
        ]
        last_seq, last_offset, _id, _ws, last_size = rows[-1]
        if len(rows) < PAGE_ENTRIES or last_offset + last_size >= end:
            return
        after_seq = last_seq


@dataclass
class _Pending:
    entry: _Entry
    copy: _Copy | None  # the copy being read ahead (None: no copy left to try)
    future: Future | None


class ManifestReader:
    """An iterator of the plaintext of [start, end) of a manifest, one chunk (or the part of it in
    the range) per item, with the next chunks read ahead. ``close`` stops the read-ahead; Django's
    StreamingHttpResponse calls it when the response is closed, finished or not."""

    def __init__(self, *, manifest: Manifest, start: int, end: int, keys: WorkspaceKeys):
        self.start = start
        self.end = end
        self.keys = keys
        self._pages = _pages(manifest.pk, start, end)
        self._known: deque[_Entry] = deque()  # loaded, not yet submitted
        self.in_flight: deque[_Pending] = deque()
        self._in_flight_bytes = 0
        self._bad: set = set()  # copies this read found bad (a chunk may appear twice in a manifest)
        self._closed = False
        self._position = start  # where the next chunk must begin: entries tile the range, no gap
        _buffers.reader_opened()

    def __iter__(self) -> ManifestReader:
        return self

    def __next__(self) -> bytes:
        if self._closed:
            raise StopIteration
        try:
            self._fill()
            if not self.in_flight:
                self.close()
                if self._position < self.end:
                    raise ChunkLostError(f"this content's entries end at byte {self._position} of {self.end}")
                raise StopIteration
            pending = self.in_flight.popleft()
            entry = pending.entry
            if entry.offset > self._position:
                # A manifest with a hole (entries lost to a bug, or a row deleted by hand): the bytes
                # around it would make a short body under the full size's ETag. Never produce one.
                raise ChunkLostError(f"this content has no entry for bytes {self._position}-{entry.offset}")
            self._position = entry.offset + entry.chunk.size
            self._in_flight_bytes -= entry.chunk.size
            fetched = pending.future.result() if pending.future is not None else None
            plaintext = fetched.plaintext if fetched is not None else None
            if plaintext is None:
                plaintext = self._recover(pending, fetched)
            del fetched, pending
            # Keep the window full while the caller sends this chunk.
            self._fill()
        except StopIteration:
            raise
        except BaseException:
            self.close()
            raise
        lo = max(self.start - entry.offset, 0)
        hi = min(self.end - entry.offset, len(plaintext))
        return plaintext if (lo, hi) == (0, len(plaintext)) else plaintext[lo:hi]

    def _peek(self) -> _Entry | None:
        if not self._known:
            page = next(self._pages, None)
            if page is None:
                return None
            self._known.extend(page)
        return self._known[0]

    def _fill(self) -> None:
        while len(self.in_flight) < READ_AHEAD_CHUNKS:
            entry = self._peek()
            if entry is None:
                return
            size = entry.chunk.size
            if self.in_flight and self._in_flight_bytes + size > READ_AHEAD_BYTES:
                return
            self._known.popleft()
            copy = next((c for c in entry.copies if c.pk not in self._bad), None)
            future = None
            if copy is not None:
                future = _read_pool().submit(_fetch, copy.disk, entry.chunk.key, size, self.keys)
            self.in_flight.append(_Pending(entry=entry, copy=copy, future=future))
            self._in_flight_bytes += size

    def _recover(self, pending: _Pending, fetched: _Fetched | None) -> bytes:
        """The read ahead of a chunk failed: note why, then try its other copies here, in the
        consuming thread, where the database may be used."""
        chunk = pending.entry.chunk
        tried: set = set()
        failed = False
        if pending.copy is not None:
            tried.add(pending.copy.pk)
            self._note(pending.copy.replica(), chunk, fetched)
            failed = True
        others = [r for r in pending.entry.copies if r.pk not in tried and r.pk not in self._bad]
        # Then once more from the database: a repair or drain may have moved the copies meanwhile.
        for round_ in range(2):
            if round_:
                others = readable_replicas(chunk=chunk, exclude=tried | self._bad)
            for copy in others:
                tried.add(copy.pk)
                fetched = _fetch(copy.disk, chunk.key, chunk.size, self.keys)
                if fetched.plaintext is not None:
                    if failed:
                        repair_soon()
                    return fetched.plaintext
                self._note(copy.replica() if isinstance(copy, _Copy) else copy, chunk, fetched)
                failed = True
        if failed:
            repair_soon()
        raise ChunkLostError(f"no good copy of a chunk is left (chunk {chunk.pk})")

    def _note(self, replica: Replica, chunk: Chunk, fetched: _Fetched) -> None:
        if fetched.bad:
            self._bad.add(replica.pk)
            replica_mark_bad(replica=replica, error=fetched.error)
        else:
            # Unreachable rather than wrong: the health probe decides about the disk.
            logger.warning("disk %s could not read chunk %s: %s", replica.disk_id, chunk.pk, fetched.error)

    def close(self) -> None:
        """Stop reading ahead: cancel what has not started, wait for the few reads that have."""
        if self._closed:
            return
        self._closed = True
        futures = [p.future for p in self.in_flight if p.future is not None]
        self.in_flight.clear()
        self._known.clear()
        self._in_flight_bytes = 0
        for future in futures:
            future.cancel()
        wait(futures)
        _buffers.reader_closed()
        self._pages.close()

    def __del__(self) -> None:
        # An abandoned iterator (never closed) must not keep its read-ahead alive.
        try:
            self.close()
        except Exception:
            logger.exception("could not close an abandoned manifest reader")


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
    return ManifestReader(manifest=manifest, start=start, end=end, keys=keys)
