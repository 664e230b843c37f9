"""Pending manifests that outlive a request: the chunk store side of resumable (tus) uploads.

A resumable upload arrives in many requests, possibly hours apart. Each request streams its bytes
straight into the chunk store (chunks are stored as they arrive; completing needs no pass over the
bytes), so between requests three things must survive besides the manifest's own entries:

- the *tail*: bytes received but not yet cut into a chunk, because the content-defined cut point
  after them depends on bytes still to come (at most one maximum-size chunk). It is sealed under
  the workspace's key and kept in the database (:class:`disks.models.PendingTail`), committed before
  the offset that covers it is acknowledged, so the next request may be served by any web node.
- the counters: bytes received, bytes cut into chunks, the next sequence number;
- the SHA-256 of everything received, so the finished manifest has its whole-content hash without
  re-reading it: its state is a small plain C struct saved as text (disks/sha_state.py, OpenSSL's
  SHA256_CTX, guarded by a self-test at import); where no state format works (another Python
  build), the hash is instead computed by streaming the stored content once at completion.

The state is a small JSON-able :class:`PendingState` the caller stores with its upload row; the
writer's changes become the upload's new state only when the caller has committed the state that
:meth:`ResumableWriter.checkpoint` returned. Anything written after the last committed state (a
checksum mismatch, a crash, a dropped request) is rolled back before the next write.
"""

from __future__ import annotations

import hashlib
import logging
import math
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass

from django.db import connection, transaction
from django.utils import timezone

from disks import sha_state
from disks.chunks import chunk_collect
from disks.crypto import CryptoError, WorkspaceKeys
from disks.models import Chunk, Manifest, ManifestChunk, PendingTail
from disks.placement import workspace_place
from disks.store import ManifestWriter, StoreError, manifest_open, manifest_release

logger = logging.getLogger(__name__)

__all__ = [
    "PendingGone",
    "PendingState",
    "ResumableWriter",
    "SHA_STATE_SUPPORTED",
    "pending_create",
    "pending_discard",
    "pending_keep_until",
    "pending_resume",
    "pending_state_saved",
]


class PendingGone(StoreError):
    """The pending manifest (or its staged bytes) no longer exists: the upload cannot continue."""


SHA_STATE_SUPPORTED = sha_state.SUPPORTED


class _NoHash:
    """Stands in for the writer's hash when the state cannot be kept (the fallback hashes at the end)."""

    def update(self, data) -> None:
        pass

    def hexdigest(self) -> str:
        return ""


# --- Persisted state ----------------------------------------------------------------------------


@dataclass
class PendingState:
    """Where a pending manifest stands after the last committed request (stored by the caller)."""

    manifest_id: str
    received: int = 0  # bytes accepted, the tus offset
    cut: int = 0  # bytes already in chunks; the tail is [cut, received)
    seq: int = 0  # sequence number of the next chunk
    sha: str | None = None  # base64 of the SHA-256 state, None in the fallback
    tail_token: str | None = None  # the writer that staged the tail (None: staged before tokens)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> PendingState:
        return cls(**data)


def _tail_aad(state: PendingState) -> str:
    # Binds the sealed tail to its upload, offset and writer: a row can never be read as another's.
    if state.tail_token is None:
        return f"tail/{state.manifest_id}/{state.received}"
    return f"tail/{state.manifest_id}/{state.received}/{state.tail_token}"


def _tail_rows(state: PendingState):
    return PendingTail.objects.filter(manifest_id=state.manifest_id, received=state.received, token=state.tail_token)


def _tail_seal(keys: WorkspaceKeys, state: PendingState, data: bytes | bytearray) -> bytes:
    return bytes(keys.encrypt(data, object_key=_tail_aad(state)))


def _tail_store(state: PendingState, sealed: bytes) -> None:
    """One row per PART_BYTES of the sealed tail, one INSERT each (a single multi-row INSERT would be
    one big message again; on PostgreSQL the INSERTs go in one pipeline, see disks/tails_pg.py).
    Rows are the writer's own (its token): a stalled request that lost the upload and reaches the
    same offset as the one that took over never touches the other's rows."""
    _tail_rows(state).delete()
    step = PendingTail.PART_BYTES
    with memoryview(sealed) as view:
        parts = [bytes(view[start : start + step]) for start in range(0, len(sealed), step)]
    if connection.vendor == "postgresql":
        from disks.tails_pg import tail_parts_store  # psycopg: loaded only where it is used

        tail_parts_store(state, parts)
        return
    for part, data in enumerate(parts):
        PendingTail.objects.create(
            manifest_id=state.manifest_id, received=state.received, token=state.tail_token, part=part, sealed=data
        )


def _tail_read(keys: WorkspaceKeys, state: PendingState) -> bytearray:
    if state.received == state.cut:
        return bytearray()
    if connection.vendor == "postgresql":
        from disks.tails_pg import tail_parts_read

        parts = tail_parts_read(state)
    else:
        parts = list(_tail_rows(state).order_by("part").values_list("part", "sealed"))
    if not parts:
        raise PendingGone(f"the staged bytes of upload manifest {state.manifest_id} are missing")
    if [part for part, _ in parts] != list(range(len(parts))):
        raise StoreError(f"the staged bytes of upload manifest {state.manifest_id} are damaged")
    sealed = b"".join(bytes(piece) for _, piece in parts)
    del parts
    try:
        data = bytearray(keys.decrypt(sealed, object_key=_tail_aad(state)))
    except CryptoError:
        raise StoreError(f"the staged bytes of upload manifest {state.manifest_id} are damaged") from None
    if len(data) != state.received - state.cut:
        raise StoreError(f"the staged bytes of upload manifest {state.manifest_id} are damaged")
    return data


def _tails_prune(state: PendingState) -> None:
    """Delete every staged tail of the manifest except the committed one."""
    stale = PendingTail.objects.filter(manifest_id=state.manifest_id)
    if state.received != state.cut:
        stale = stale.exclude(received=state.received, token=state.tail_token)
    stale.delete()


def _tails_drop(manifest_id) -> None:
    PendingTail.objects.filter(manifest_id=manifest_id).delete()


def pending_state_saved(*, state: PendingState, keep_until) -> None:
    """In the caller's transaction that commits ``state``: drop the tails staged before it and keep
    the manifest off the GC until ``keep_until`` (one commit for the three on PostgreSQL, where each
    commit waits for the WAL to be flushed)."""
    _tails_prune(state)
    pending_keep_until(manifest_id=state.manifest_id, until=keep_until)


def pending_keep_until(*, manifest_id, until) -> None:
    """Keep the store's GC off a pending manifest until ``until`` (the upload's expiry).

    The GC releases pending manifests idle for ``CLOUDSTORAGE_PENDING_GRACE`` as crash orphans; an
    idle resumable upload is not one while it has not expired, so its ``touched_at`` is set ahead.
    If the upload's own expiry job never ran, the GC still collects it a grace period later."""
    Manifest.objects.filter(pk=manifest_id, state=Manifest.State.PENDING).update(touched_at=until)


def pending_create(*, workspace, keep_until) -> PendingState:
    """A new empty pending manifest for a resumable upload."""
    manifest = Manifest.objects.create(workspace=workspace, state=Manifest.State.PENDING, touched_at=keep_until)
    sha = sha_state.sha_new() if SHA_STATE_SUPPORTED else None
    return PendingState(manifest_id=str(manifest.pk), sha=sha_state.sha_save(sha) if sha is not None else None)


def pending_discard(*, state: PendingState) -> None:
    """Drop a pending upload: its manifest (chunks go to GC) and its staged bytes."""
    manifest = Manifest.objects.filter(pk=state.manifest_id, state=Manifest.State.PENDING).first()
    if manifest is not None:
        manifest_release(manifest=manifest)
    _tails_drop(state.manifest_id)


# --- The writer ---------------------------------------------------------------------------------


class ResumableWriter(ManifestWriter):
    """A :class:`ManifestWriter` continuing a pending manifest from a committed :class:`PendingState`.

    ``write`` as usual; then either ``checkpoint`` (make the bytes durable, get the new state for
    the caller to commit, then ``committed``), ``finish`` (complete the manifest), or ``abort``
    (undo everything since the last committed state; the pending manifest itself stays).

    ``owns`` says whether the caller still holds the upload (its lease): ``abort`` rolls back only
    then, inside the transaction that deletes. A request that stalled past its lease may find that
    another one has taken the upload over and committed entries from this writer's base on (an
    acknowledged offset): those are not this writer's to roll back.
    """

    def __init__(self, *, workspace, state: PendingState, owns: Callable[[], bool] | None = None):  # noqa: D107 - no super(): it creates a manifest
        manifest = Manifest.objects.filter(pk=state.manifest_id, workspace=workspace).first()
        if manifest is None:
            raise PendingGone(f"upload manifest {state.manifest_id} is gone")
        self._setup(workspace=workspace, manifest=manifest, size=state.received, offset=state.cut, seq=state.seq)
        self.base = state
        self.owns = owns
        # Never let the base class touch the manifest "now": checkpoints keep it until the upload's
        # expiry (pending_keep_until), and an earlier date would hand it to the GC too soon.
        self._touched = math.inf
        self._staged: PendingState | None = None
        self.token = uuid.uuid4().hex  # names the tails this writer stages
        if manifest.state == Manifest.State.READY:
            # Completed by a request that crashed before the caller recorded it: nothing to resume.
            self.sha = _NoHash()
            return
        self.placement = workspace_place(workspace=workspace)
        # Entries of a request whose state was never committed (the caller has just taken the upload).
        self._drop_from(state.seq, check_owner=False)
        self.buffer = _tail_read(self.keys, state)
        self.sha = (sha_state.sha_load(state.sha) if state.sha and SHA_STATE_SUPPORTED else None) or _NoHash()

    @property
    def ready(self) -> bool:
        return self.manifest.state == Manifest.State.READY

    def _drop_from(self, seq: int, *, check_owner: bool = True) -> bool:
        """Drop the entries from ``seq`` on; False (nothing dropped) when the caller no longer holds
        the upload."""
        with transaction.atomic():
            if check_owner and self.owns is not None and not self.owns():
                return False
            entries = ManifestChunk.objects.filter(manifest=self.manifest, seq__gte=seq)
            chunk_ids = list(entries.values_list("chunk_id", flat=True))
            if chunk_ids:
                Chunk.objects.filter(pk__in=chunk_ids).update(released_at=timezone.now())
                entries.delete()
        return True

    def checkpoint(self) -> PendingState:
        """Store what can be cut, stage the rest durably; the state for the caller to commit."""
        if self.closed or self.ready:
            raise StoreError("this writer is closed")
        try:
            # Everything but the last piece ends at a content-defined cut point already; the last
            # one may still grow with the next request's bytes. The offset is acknowledged only
            # once every chunk cut so far is durable and recorded.
            self._cut(final=False)
            self._flush()
            state = PendingState(
                manifest_id=self.base.manifest_id,
                received=self.size,
                cut=self.offset,
                seq=self.seq,
                sha=None if isinstance(self.sha, _NoHash) else sha_state.sha_save(self.sha),
                tail_token=self.token if self.size != self.offset else None,
            )
            # Sealed while the pool makes the last chunks durable; stored with their records in one
            # transaction, taken once they are written (no lock is held over an fsync). The caller
            # commits the state after that; a tail of a state never committed is pruned or dropped.
            sealed = _tail_seal(self.keys, state, self.buffer) if state.received != state.cut else None
            self._wait_written()
            with transaction.atomic():
                if sealed is not None:
                    self._staged = state
                    _tail_store(state, sealed)
                self._settle_all()
        except BaseException:
            self.abort()
            raise
        return state

    def committed(self, state: PendingState) -> None:
        """The caller committed ``state`` (with :func:`pending_state_saved` in the same transaction):
        it is the base to roll back to from now on."""
        self.base = state
        self.created = []
        self._staged = None

    def finish(self) -> Manifest:
        """Complete the manifest (idempotent: a manifest already completed is returned as it is)."""
        if self.ready:
            return self.manifest
        fallback = isinstance(self.sha, _NoHash)
        manifest = super().finish()
        if fallback:
            sha = hashlib.sha256()
            for block in manifest_open(manifest=manifest):
                sha.update(block)
            manifest.sha256 = sha.hexdigest()
            manifest.save(update_fields=["sha256"])
        _tails_drop(self.base.manifest_id)
        return manifest

    def _staged_drop(self) -> None:
        """Delete the tail this writer staged, unless it is the committed one."""
        if self._staged is not None and self._staged != self.base:
            _tail_rows(self._staged).delete()

    def abandon(self) -> None:
        """Stop without touching the manifest (another writer owns it now and drops what was left
        behind when it resumes); only this writer's staged file goes."""
        self.closed = True
        self._quiesce()
        self._staged_drop()

    def abort(self) -> None:
        """Undo everything since the last committed state; the pending manifest stays."""
        if self.closed:
            return
        self.closed = True
        self._quiesce()
        try:
            if not self._drop_from(self.base.seq):
                # Taken over: the other request dropped what this one left when it resumed.
                self._staged_drop()
                return
            for chunk_id in self.created:
                chunk_collect(chunk_id=chunk_id)
            self._staged_drop()
        except Exception:
            # What is left is dropped by the next resume or collected by GC.
            logger.exception("could not roll back a resumable write (manifest %s)", self.manifest.pk)


def pending_resume(*, workspace, state: PendingState, owns: Callable[[], bool] | None = None) -> ResumableWriter:
    """A writer that continues the pending manifest from the committed ``state`` (``owns``: see
    :class:`ResumableWriter`)."""
    return ResumableWriter(workspace=workspace, state=state, owns=owns)
