"""Garbage collection: chunks no file references any more, uploads whose writer died or that were
abandoned, the half-written temporaries of killed writers, and the sweep of the objects on a disk
that no copy references. Sits above disks.repair (a sweep takes a chunk's repair lease) and
disks.writing (an abandoned upload is released); deleting one unreferenced chunk (chunk_collect)
lives lower, in disks.chunks, because the writers use it too."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from disks.backends import BackendError, backend_for
from disks.chunks import (
    RepairLease,
    chunk_collect,
    chunk_id_of,
    chunk_verify_blob,
    pending_deletes_run,
    readable_replicas,
    replica_drop,
    replica_mark_bad,
    replica_read,
)
from disks.crypto import CryptoError, WorkspaceKeys, workspace_keys
from disks.models import Chunk, Disk, Manifest, ManifestChunk, PendingDelete, Replica
from disks.placement import replicas_wanted
from disks.writing import manifest_release

logger = logging.getLogger(__name__)


def chunks_gc(
    *,
    grace: timedelta | None = None,
    pending_grace: timedelta | None = None,
    temp_grace: timedelta | None = None,
    limit: int = 5000,
) -> dict:
    """Collect chunks no manifest has referenced for the grace period, after releasing uploads that a
    crash abandoned (pending manifests idle longer than the pending grace, and at once those whose
    writer died mid-write: see dead_writes_release), and the half-written objects of writers killed
    mid-put (older than ``temp_grace``, an hour by default)."""
    now = timezone.now()
    grace = grace if grace is not None else timedelta(seconds=settings.CLOUDSTORAGE_GC_GRACE)
    pending_grace = (
        pending_grace if pending_grace is not None else timedelta(seconds=settings.CLOUDSTORAGE_PENDING_GRACE)
    )
    abandoned = dead_writes_release()
    for manifest in Manifest.objects.filter(state=Manifest.State.PENDING, touched_at__lt=now - pending_grace):
        manifest_release(manifest=manifest)
        abandoned += 1
    cutoff = now - grace
    unreferenced = (
        Chunk.objects.filter(~Exists(ManifestChunk.objects.filter(chunk=OuterRef("pk"))))
        .filter(Q(released_at__lte=cutoff) | Q(released_at__isnull=True, created_at__lte=cutoff))
        .values_list("id", flat=True)[:limit]
    )
    collected = sum(1 for chunk_id in list(unreferenced) if chunk_collect(chunk_id=chunk_id))
    deleted = pending_deletes_run()
    temp_grace = temp_grace if temp_grace is not None else timedelta(seconds=SWEEP_GRACE_SECONDS)
    temporaries = 0
    for disk in Disk.objects.exclude(status=Disk.Status.FAILED):
        try:
            temporaries += backend_for(disk).temporaries_remove(older_than=temp_grace.total_seconds())
        except BackendError:
            logger.exception("could not remove stale temporaries on disk %s", disk.name)
    return {
        "abandoned_uploads": abandoned,
        "chunks": collected,
        "objects_deleted": deleted,
        "temporaries_removed": temporaries,
    }


def dead_writes_release(*, write_grace: timedelta | None = None) -> int:
    """Release the uploads whose writer died mid-write, and collect their chunks that never got a
    copy, returning those copies' reserved bytes; the number of uploads released.

    A writer waits for every copy it records as being written (state ``new``) and settles it within
    seconds; one older than CLOUDSTORAGE_WRITE_GRACE belongs to a dead process. Its pending manifest
    can never finish (a resumable upload then answers that it is gone), so it is released now rather
    than after the pending grace, and its chunks nothing else uses are collected at once: no copy of
    them was ever acknowledged."""
    write_grace = write_grace if write_grace is not None else timedelta(seconds=settings.CLOUDSTORAGE_WRITE_GRACE)
    cutoff = timezone.now() - write_grace
    stale = Replica.objects.filter(state=Replica.State.NEW, created_at__lt=cutoff)
    # Chunks recorded by a writer that died before it recorded a single copy (the chunk-by-chunk
    # path of a nearly full category records copies only once written) count as well.
    copyless = Chunk.objects.filter(created_at__lt=cutoff, replicas__isnull=True).filter(
        ~Exists(ManifestChunk.objects.filter(chunk=OuterRef("pk"), manifest__state=Manifest.State.READY))
    )
    chunk_ids = set(stale.values_list("chunk_id", flat=True)) | set(copyless.values_list("pk", flat=True))
    if not chunk_ids:
        return 0
    manifests = Manifest.objects.filter(state=Manifest.State.PENDING, entries__chunk_id__in=chunk_ids).distinct()
    released = 0
    for manifest in manifests:
        manifest_release(manifest=manifest)
        released += 1
    for chunk_id in chunk_ids:
        if not chunk_collect(chunk_id=chunk_id):
            # Another file uses the chunk too: only the copies that never landed go.
            for replica in stale.filter(chunk_id=chunk_id).select_related("chunk", "disk"):
                replica_drop(replica=replica)
    if released:
        logger.warning("released %s upload(s) whose writer died mid-write", released)
    return released


# --- Sweep ----------------------------------------------------------------------------------------

SWEEP_GRACE_SECONDS = 3600
SWEEP_BATCH = 1000


def disk_sweep(*, disk: Disk, grace_seconds: int = SWEEP_GRACE_SECONDS, delete: bool = True) -> dict[str, int]:
    """Reconcile ``disk`` with the database: a chunk object no Replica row on that disk references
    is recorded as a copy when it is a verified copy of a chunk that still exists and lacks good
    copies elsewhere (a row lost with a database restored from an older backup: it may be the last
    good copy; the copies elsewhere are read and verified, not counted from their rows), and deleted
    otherwise (with ``delete``): the objects of chunks that are gone, extra
    copies, and leftovers that are not exactly their chunk. Without ``delete`` (reconciling after a
    restore, when the restored rows may name copies that no longer exist) every verified copy of a
    known chunk is recorded and nothing is deleted. Idempotent; returns counts.

    Only objects under ``ws/`` named by a chunk id are considered (probe objects and anything else
    are left alone), and only when last written more than ``grace_seconds`` ago, so a copy being
    written right now, whose row is not committed yet, is never touched. An object whose chunk still
    exists is handled under that chunk's repair lock and only if it was not rewritten meanwhile; if a
    row for a deleted one appears anyway, that copy is marked bad so repair writes it again."""
    counts = {"scanned": 0, "referenced": 0, "recent": 0, "busy": 0, "adopted": 0, "deleted": 0, "errors": 0}
    if Disk.objects.filter(pk=disk.pk, status=Disk.Status.FAILED).exists():
        return counts  # failed again: nothing is read from or deleted on a failed disk
    backend = backend_for(disk)
    cutoff = timezone.now() - timedelta(seconds=grace_seconds)

    def sweep(batch: list[tuple[str, object, object]]) -> None:
        ids = {chunk_id for _key, chunk_id, _modified in batch}
        referenced = set(Replica.objects.filter(disk=disk, chunk_id__in=ids).values_list("chunk_id", flat=True))
        # The chunks still in the store, read whole once for the batch; each workspace's keys are
        # opened once for the batch too, when an object first needs them.
        alive = {chunk.pk: chunk for chunk in Chunk.objects.filter(pk__in=ids - referenced)}
        opened: dict = {}

        def keys_of(chunk: Chunk) -> WorkspaceKeys:
            if chunk.workspace_id not in opened:
                opened[chunk.workspace_id] = workspace_keys(workspace_id=chunk.workspace_id)
            return opened[chunk.workspace_id]

        for key, chunk_id, modified in batch:
            if chunk_id in referenced:
                counts["referenced"] += 1
                continue
            if modified > cutoff:
                counts["recent"] += 1
                continue
            lease = RepairLease(chunk_id)
            # Chunk ids are never reused: once the row is gone nobody writes this key again.
            if chunk_id in alive and not lease.acquire():
                counts["busy"] += 1
                continue
            try:
                if chunk_id in alive:
                    # A writer may have put a fresh copy (and saved its row) since the listing, and
                    # GC may have collected the chunk between the batch's read and this lease.
                    recorded = _copy_recorded(chunk_id, disk=disk)
                    if recorded:
                        counts["referenced"] += 1
                        continue
                    current = backend.modified_at(key)
                    if current is None or current > cutoff:
                        counts["recent"] += 1
                        continue
                    # Kept when the chunk lacks good copies elsewhere (or when only reconciling): an
                    # extra copy of a chunk that has its copies is only wasted room. The copies
                    # elsewhere are read, not counted: rows restored from a backup may name copies
                    # that were deleted since, and this object is then the last one.
                    # A chunk collected meanwhile has no copies to keep.
                    chunk = alive[chunk_id]
                    short = recorded is not None and (
                        not delete or _copies_verified(chunk, disk=disk, keys=keys_of(chunk)) < replicas_wanted()
                    )
                    if short and _copy_adopt(disk=disk, backend=backend, key=key, chunk=chunk, keys=keys_of(chunk)):
                        counts["adopted"] += 1
                        continue
                if not delete:
                    continue
                backend.delete(key)
                counts["deleted"] += 1
                late = Replica.objects.filter(disk=disk, chunk_id=chunk_id, state=Replica.State.OK).first()
                if late is not None:
                    replica_mark_bad(replica=late, error="deleted by a sweep while being written")
            except BackendError:
                logger.exception("sweep: could not check or delete %s on disk %s", key, disk.name)
                counts["errors"] += 1
            finally:
                if chunk_id in alive:
                    lease.release()

    batch: list[tuple[str, object, object]] = []
    for key, modified in backend.listing("ws/"):
        chunk_id = chunk_id_of(key)
        if chunk_id is None:
            continue  # not a chunk object (a stray file); not ours to delete
        counts["scanned"] += 1
        batch.append((key, chunk_id, modified))
        if len(batch) >= SWEEP_BATCH:
            sweep(batch)
            batch = []
    if batch:
        sweep(batch)
    if counts["deleted"]:
        logger.warning("swept %s unreferenced object(s) from disk %s", counts["deleted"], disk.name)
    if counts["adopted"]:
        logger.warning("recorded %s verified copies no row knew on disk %s", counts["adopted"], disk.name)
    return counts


def _copy_recorded(chunk_id, *, disk: Disk) -> bool | None:
    """Whether a copy of the chunk on ``disk`` has a row; None when the chunk itself is gone."""
    here = Replica.objects.filter(disk=disk, chunk_id=OuterRef("pk"))
    return Chunk.objects.filter(pk=chunk_id).values_list(Exists(here), flat=True).first()


def _copies_verified(chunk: Chunk, *, disk: Disk, keys: WorkspaceKeys) -> int:
    """How many recorded good copies of a chunk on other readable disks are really there and exactly
    the chunk, reading them until replicas_wanted() have verified. A copy found missing or corrupt
    is marked bad (repair then writes it again); one on a disk that does not answer is not counted.
    Called under the chunk's lease."""
    verified = 0
    for replica in readable_replicas(chunk=chunk):
        if replica.disk_id == disk.pk:
            continue
        if replica_read(replica=replica, chunk=chunk, keys=keys) is not None:
            verified += 1
            if verified >= replicas_wanted():
                break
    return verified


def _copy_adopt(*, disk: Disk, backend, key: str, chunk: Chunk, keys: WorkspaceKeys) -> bool:
    """Record the object ``key`` as a copy of ``chunk`` on ``disk`` if it decrypts and hashes to
    exactly that chunk; False otherwise (it is then no copy: the caller may delete it). Called under
    the chunk's lease, so no pending delete of the same key runs meanwhile, and once the chunk was
    seen to exist under it (so GC does not collect it meanwhile)."""
    try:
        chunk_verify_blob(chunk=chunk, blob=backend.get(key), keys=keys)
    except CryptoError:
        return False
    with transaction.atomic():
        _, created = Replica.objects.get_or_create(
            chunk=chunk, disk=disk, defaults={"state": Replica.State.OK, "verified_at": timezone.now()}
        )
        # A dropped copy waiting for deletion still counts on the disk: it is kept instead.
        if created and not PendingDelete.objects.filter(disk=disk, key=key).delete()[0]:
            Disk.objects.filter(pk=disk.pk).update(used_bytes=F("used_bytes") + chunk.stored_size)
    return True


def disks_reconcile() -> dict[str, dict[str, int]]:
    """After the database was restored from a backup: record every verified copy of a known chunk
    that no row knows, on every disk that is not failed, deleting nothing (objects of chunks the
    restored database does not know belong to files it lost; the next sweep collects them)."""
    results = {}
    for disk in Disk.objects.exclude(status=Disk.Status.FAILED):
        try:
            results[disk.name] = disk_sweep(disk=disk, grace_seconds=0, delete=False)
        except BackendError as error:
            logger.error("reconcile: disk %s could not be listed: %s", disk.name, error)
            results[disk.name] = {"errors": 1}
    return results
