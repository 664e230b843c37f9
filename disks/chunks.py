"""Copies of chunks on disks: writing, verified reading, marking bad, dropping, and deleting a chunk
nothing references (chunk_collect: an aborted upload's chunks at once, GC's after their grace). Used
by the store's public interface (disks/store.py) and by the maintenance services (repair, scrub,
drain, GC)."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from typing import NamedTuple

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from disks.backends import BackendError, DiskFullError, DiskIdentityError, ObjectMissing, backend_for
from disks.crypto import CryptoError, WorkspaceKeys
from disks.errors import StoreError
from disks.models import Chunk, Disk, ManifestChunk, PendingDelete, Replica
from disks.placement import READABLE, disk_reserve, disk_unreserve, write_candidates
from disks.pools import pool

logger = logging.getLogger(__name__)


class NoRoomError(Exception):
    """No writable disk has room for the chunk."""


def chunk_verify_blob(*, chunk: Chunk, blob: bytes, keys: WorkspaceKeys) -> bytes:
    """The plaintext of one copy, or CryptoError when the copy is not exactly this chunk."""
    plaintext = keys.decrypt(blob, object_key=chunk.key)
    if len(plaintext) != chunk.size or keys.digest(plaintext) != chunk.digest:
        raise CryptoError("decrypted bytes do not match the chunk's address")
    return plaintext


# A pass asked for and not started yet stands for every request meanwhile; the key expires on its
# own if the pass is never queued (a rolled-back transaction) and the minute's run takes over.
REPAIR_PASS_KEY = "disks:repair-pass-queued"
REPAIR_PASS_WAIT = 120
PROBE_KEY = "disks:probe-queued:{disk_id}"
PROBE_WAIT = 30


def repair_soon() -> None:
    """Ask for a repair pass once the current transaction commits. Coalesced: while one is queued
    and not started, asking again adds nothing, so a thousand failed reads queue one pass, not a
    thousand tasks. The pass finds its work in the database (bad copies, chunks short of copies)."""
    from disks.tasks import repair_pass

    if cache.add(REPAIR_PASS_KEY, 1, timeout=REPAIR_PASS_WAIT):
        transaction.on_commit(repair_pass.delay)


def repair_pass_started() -> None:
    """Called as a pass starts: what goes wrong from now on asks for the next one."""
    cache.delete(REPAIR_PASS_KEY)


BACKUP_PASS_KEY = "disks:backup-pass-queued"


def backup_soon() -> None:
    """Ask for another backup-tier run once the current transaction commits (coalesced like
    repair_soon)."""
    from disks.tasks import backup_pass

    if cache.add(BACKUP_PASS_KEY, 1, timeout=REPAIR_PASS_WAIT):
        transaction.on_commit(backup_pass.delay)


def backup_pass_started() -> None:
    cache.delete(BACKUP_PASS_KEY)


def probe_soon(disk_id) -> None:
    """Ask for a probe of one disk now (a write found it is not itself), at most once per PROBE_WAIT."""
    from disks.tasks import disk_probe

    if cache.add(PROBE_KEY.format(disk_id=disk_id), 1, timeout=PROBE_WAIT):
        transaction.on_commit(lambda: disk_probe.delay(disk_id=str(disk_id)))


def put_refused(*, disk: Disk, chunk_id, error: BackendError) -> None:
    """Note a disk's refusal of a chunk's copy (from object_put_all, called outside its threads):
    one that is not itself or is full is probed at once, and the probe fails it or makes it read-only."""
    logger.warning("disk %s refused chunk %s: %s", disk.name, chunk_id, error)
    if isinstance(error, DiskIdentityError | DiskFullError):
        probe_soon(disk.pk)


def replica_mark_bad(*, replica: Replica, error: str) -> None:
    updated = Replica.objects.filter(pk=replica.pk, state=Replica.State.OK).update(
        state=Replica.State.BAD, error=error[:300]
    )
    if updated:
        logger.warning("replica of chunk %s on disk %s is bad: %s", replica.chunk_id, replica.disk_id, error)


def replica_read(*, replica: Replica, chunk: Chunk, keys: WorkspaceKeys) -> tuple[bytes, bytes] | None:
    """(ciphertext, verified plaintext) of one copy, or None after marking the copy bad. A disk that
    is unreachable (rather than answering wrongly) is left to the health probe."""
    try:
        blob = backend_for(replica.disk).get(chunk.key)
        plaintext = chunk_verify_blob(chunk=chunk, blob=blob, keys=keys)
    except ObjectMissing:
        replica_mark_bad(replica=replica, error="missing")
        return None
    except CryptoError as exc:
        replica_mark_bad(replica=replica, error=f"corrupt: {exc}")
        return None
    except BackendError as exc:
        logger.warning("disk %s could not read chunk %s: %s", replica.disk_id, chunk.pk, exc)
        return None
    return blob, plaintext


_STATUS_RANK = {status: rank for rank, status in enumerate(READABLE)}


def replica_rank(replica: Replica) -> tuple[bool, int, bool, int]:
    """Sort key of copies, best first: primary copies before the backup tier's (read only when every
    primary copy failed); active, then read-only, then draining disks; local before S3; then the
    oldest copy, so every reader tries the same copy first. Needs ``replica.disk`` loaded."""
    disk = replica.disk
    return (disk.role == Disk.Role.BACKUP, _STATUS_RANK[disk.status], disk.backend != Disk.Backend.LOCAL, replica.pk)


def readable_replicas(*, chunk: Chunk, exclude: set | None = None) -> list[Replica]:
    """Good copies on disks that can be read, best first (see replica_rank)."""
    replicas = [
        r
        for r in Replica.objects.filter(chunk=chunk, state=Replica.State.OK, disk__status__in=READABLE).select_related(
            "disk"
        )
        if not exclude or r.pk not in exclude
    ]
    return sorted(replicas, key=replica_rank)


def object_put_all(disks: list[Disk], key: str, blob: bytes) -> list[BackendError | None]:
    """Put one object on several disks at once (the waits for fsync / S3 overlap); no database
    access happens in the threads. The error of each put, or None."""

    def put(disk: Disk) -> BackendError | None:
        try:
            backend_for(disk).put(key, blob)
        except BackendError as exc:
            return exc
        return None

    if len(disks) == 1:
        return [put(disks[0])]
    return list(pool("put", workers=8).map(put, disks))


class RepairLease:
    """A chunk's lease (CLOUDSTORAGE_REPAIR_LEASE seconds) in the shared cache, renewed while its
    holder works: a worker killed mid-work holds the chunk for at most one lease, not until a long
    timeout. Released only by its holder (a random token).

    Held by whoever writes more copies of an existing chunk (a repair, an upload topping up a
    deduplicated chunk), by whoever deletes an object of a live chunk (a pending delete of a
    dropped copy, the sweep) and by GC collecting the chunk (chunk_collect). A copy's object has the same key on every disk and is written before
    its row is recorded, so without it a delete that checked "no copy recorded here" could remove
    the bytes of a copy being written to that disk again, leaving an ``ok`` row with nothing behind it.
    """

    WAIT = 10.0  # seconds a writer waits for the holder (one chunk's repair takes well under one)

    def __init__(self, chunk_id):
        self.key = f"disks:chunk-repair:{chunk_id}"
        self.token = secrets.token_hex(8)

    def acquire(self) -> bool:
        return cache.add(self.key, self.token, timeout=settings.CLOUDSTORAGE_REPAIR_LEASE)

    def acquire_waiting(self) -> None:
        """Acquire, waiting up to WAIT seconds for the holder; StoreError if it does not let go."""
        deadline = time.monotonic() + self.WAIT
        while not self.acquire():
            if time.monotonic() > deadline:
                raise StoreError("this chunk is being repaired right now; try again later")
            time.sleep(0.05)

    def renew(self) -> None:
        if cache.get(self.key) == self.token:
            cache.touch(self.key, timeout=settings.CLOUDSTORAGE_REPAIR_LEASE)

    def release(self) -> None:
        if cache.get(self.key) == self.token:
            cache.delete(self.key)


def _replica_record(*, chunk: Chunk, disk: Disk, size: int) -> None:
    """Record a copy of a new chunk just written (its ``size`` bytes already reserved on the disk)."""
    now = timezone.now()
    try:
        with transaction.atomic():
            Replica.objects.create(chunk=chunk, disk=disk, verified_at=now, state=Replica.State.OK)
    except IntegrityError:
        # An upload deduplicating the same new chunk topped it up meanwhile and recorded this disk's
        # copy first. Either write left a valid encryption of the same plaintext under the key;
        # count it once.
        Replica.objects.filter(chunk=chunk, disk=disk).update(state=Replica.State.OK, verified_at=now, error="")
        disk_unreserve(disk_id=disk.pk, size=size)


def chunk_store_copies(
    *,
    chunk: Chunk,
    blob: bytes,
    workspace,
    want: int,
    exclude: set,
    placement=None,
    candidates=None,
    fresh=False,
    lease: RepairLease | None = None,
) -> list[Disk]:
    """Write ``blob`` (the chunk's ciphertext) to up to ``want`` more disks not in ``exclude``; each
    copy is durable (fsync'd / confirmed) and recorded before this returns. The copies are written
    in parallel; a disk that refuses is replaced by the next candidate. NoRoomError when no writable
    disk had room at all.

    An existing chunk (not ``fresh``) is written under its :class:`RepairLease`: the caller's
    ``lease``, or one taken here (waiting for a repair that holds it)."""
    if fresh or lease is not None:
        return _copies_store(chunk, blob, workspace, want, exclude, placement, candidates, fresh)
    lease = RepairLease(chunk.pk)
    lease.acquire_waiting()
    try:
        return _copies_store(chunk, blob, workspace, want, exclude, placement, candidates, fresh)
    finally:
        lease.release()


# The error text of a copy recorded before its object is written (see _copy_begin).
BEING_WRITTEN = "being written"


def _copy_begin(*, chunk: Chunk, disk: Disk, size: int) -> Replica | None:
    """Before writing another copy of an existing chunk to ``disk``: its row, recorded (as a bad
    copy: never read, never counted as good) in the transaction that reserves its bytes, so a
    process killed between the write and the record leaves a row, whose bytes a later repair
    reuses (the copy is written again in place) or gives back (the bad copy is dropped and its
    object deleted). Without it the reserved bytes stayed counted for good and the next attempt
    reserved them again. A row already there (a bad copy rewritten in place) has its bytes counted.
    None when the disk has no room (or stopped taking writes)."""
    with transaction.atomic():
        existing = Replica.objects.filter(chunk=chunk, disk=disk).first()
        if existing is not None:
            return existing
        if not disk_reserve(disk=disk, size=size):
            return None
        return Replica.objects.create(chunk=chunk, disk=disk, state=Replica.State.BAD, error=BEING_WRITTEN)


def _copy_written(*, replica: Replica) -> None:
    Replica.objects.filter(pk=replica.pk).update(state=Replica.State.OK, verified_at=timezone.now(), error="")


def _copy_refused(*, replica: Replica) -> None:
    """A copy begun by _copy_begin whose write failed: its row goes with whatever the write left
    (a put that failed may still have stored it); a copy that was there before stays as it was."""
    if replica.error == BEING_WRITTEN and replica.state == Replica.State.BAD:
        replica_drop(replica=replica)


class _Copy(NamedTuple):
    """One copy begun on a disk: what to do once its write landed, and once the disk refused it."""

    written: Callable[[], None]
    refused: Callable[[], None]


def _fresh_copy_begin(*, chunk: Chunk, disk: Disk, size: int) -> _Copy | None:
    """A copy of a chunk new to the store: its bytes reserved now, its row recorded once written
    (nobody else knows the chunk yet, so no row is needed before). None when the disk has no room."""
    if not disk_reserve(disk=disk, size=size):
        return None
    return _Copy(
        written=lambda: _replica_record(chunk=chunk, disk=disk, size=size),
        refused=lambda: disk_unreserve(disk_id=disk.pk, size=size),
    )


def _more_copy_begin(*, chunk: Chunk, disk: Disk, size: int) -> _Copy | None:
    """Another copy of an existing chunk: its row recorded before the write (see _copy_begin)."""
    replica = _copy_begin(chunk=chunk, disk=disk, size=size)
    if replica is None:
        return None
    replica.chunk, replica.disk = chunk, disk
    return _Copy(written=lambda: _copy_written(replica=replica), refused=lambda: _copy_refused(replica=replica))


def _copies_store(chunk, blob, workspace, want, exclude, placement, candidates, fresh) -> list[Disk]:
    size = len(blob)
    if candidates is None:
        candidates = write_candidates(workspace=workspace, size=size, exclude=exclude, placement=placement)
    if not candidates and want > 0:
        raise NoRoomError(f"no active disk has {size} bytes free")
    copy_begin = _fresh_copy_begin if fresh else _more_copy_begin
    remaining = list(candidates)
    written: list[Disk] = []
    while len(written) < want and remaining:
        batch: list[Disk] = []
        begun: list[_Copy] = []
        while remaining and len(batch) < want - len(written):
            disk = remaining.pop(0)
            copy = copy_begin(chunk=chunk, disk=disk, size=size)
            if copy is not None:
                batch.append(disk)
                begun.append(copy)
        for disk, copy, error in zip(batch, begun, object_put_all(batch, chunk.key, blob), strict=True):
            if error is not None:
                copy.refused()
                put_refused(disk=disk, chunk_id=chunk.pk, error=error)
                continue
            copy.written()
            written.append(disk)
    return written


def replica_drop(*, replica: Replica) -> None:
    """Forget a copy; its object is deleted from the disk after the commit (or by a later run)."""
    with transaction.atomic():
        # Only as the caller saw it: a copy read as bad or stale that a writer has since rewritten
        # and recorded ok stays.
        deleted, _ = Replica.objects.filter(pk=replica.pk, state=replica.state).delete()
        if not deleted:
            return
        size = replica.chunk.stored_size
        if replica.disk.status == Disk.Status.FAILED:
            # Nothing to delete on a dead disk; just stop counting the bytes.
            Disk.objects.filter(pk=replica.disk_id, used_bytes__gte=size).update(used_bytes=F("used_bytes") - size)
        else:
            PendingDelete.objects.create(disk_id=replica.disk_id, key=replica.chunk.key, size=size)
    transaction.on_commit(pending_deletes_run)


def chunk_collect(*, chunk_id) -> bool:
    """Delete a chunk if nothing references it (checked under the row lock a writer also takes
    before referencing it, so a concurrent deduplicating upload either sees it gone or keeps it).

    Under the chunk's :class:`RepairLease`: a repair or relocation writing another copy of it puts
    the object before it records the copy, so a collect in between would leave that object on the
    disk with no row and no pending delete, for good. While the lease is held the chunk is left
    for the next run (False)."""
    lease = RepairLease(chunk_id)
    if not lease.acquire():
        return False
    try:
        return _chunk_collect(chunk_id)
    finally:
        lease.release()


def _chunk_collect(chunk_id) -> bool:
    with transaction.atomic():
        chunk = Chunk.objects.select_for_update().filter(pk=chunk_id).first()
        if chunk is None or ManifestChunk.objects.filter(chunk_id=chunk_id).exists():
            return False
        for replica in chunk.replicas.select_related("disk"):
            if replica.disk.status == Disk.Status.FAILED:
                Disk.objects.filter(pk=replica.disk_id, used_bytes__gte=chunk.stored_size).update(
                    used_bytes=F("used_bytes") - chunk.stored_size
                )
            else:
                PendingDelete.objects.create(disk_id=replica.disk_id, key=chunk.key, size=chunk.stored_size)
        chunk.replicas.all().delete()
        chunk.delete()
    transaction.on_commit(pending_deletes_run)
    return True


def pending_deletes_run(*, limit: int = 2000) -> int:
    """Delete recorded objects from their disks; what fails stays recorded for the next run."""
    done = 0
    items = list(PendingDelete.objects.select_related("disk").order_by("created_at")[:limit])
    # A collected chunk's id is never used again, so nobody writes its key any more; a live chunk's
    # (a dropped copy) may be being written to this disk again, under the chunk's lease.
    live = set(Chunk.objects.filter(pk__in={chunk_id_of(item.key) for item in items}).values_list("pk", flat=True))
    for item in items:
        if item.disk.status == Disk.Status.FAILED:
            # Nothing to delete on a dead disk; its bytes stop being counted (as replica_drop does),
            # or the disk, brought back and swept, counts them for good.
            _pending_delete_forget(item)
            continue
        chunk_id = chunk_id_of(item.key)
        lease = RepairLease(chunk_id) if chunk_id in live else None
        if lease is not None and not lease.acquire():
            continue  # being repaired or topped up right now: the next run
        try:
            if Replica.objects.filter(disk_id=item.disk_id, chunk__id=chunk_id).exists():
                # Written here again since: the new copy's row reserved its own bytes.
                _pending_delete_forget(item)
                continue
            try:
                backend_for(item.disk).delete(item.key)
            except BackendError:
                logger.exception("could not delete %s from disk %s; will retry", item.key, item.disk.name)
                continue
            with transaction.atomic():
                if PendingDelete.objects.filter(pk=item.pk).delete()[0]:
                    disk_unreserve(disk_id=item.disk_id, size=item.size)
            done += 1
        finally:
            if lease is not None:
                lease.release()
    return done


def _pending_delete_forget(item: PendingDelete) -> None:
    """Drop a pending delete without deleting its object, giving its counted bytes back."""
    with transaction.atomic():
        if PendingDelete.objects.filter(pk=item.pk).delete()[0]:
            disk_unreserve(disk_id=item.disk_id, size=item.size)


def chunk_id_of(key: str):
    import uuid

    try:
        return uuid.UUID(key.rsplit("/", 1)[-1])
    except ValueError:
        return None
