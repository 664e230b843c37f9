"""Repair of the chunk store: bringing one chunk to its full number of good copies under a shared
lease, the throttled repair and backup-tier runs, moving a workspace's chunks after a plan change,
and draining a disk. Sits above disks.services (a drain changes the disk's status, a repair run
remaps workspaces first) and disks.selectors (which chunks need work); disks.scrub and disks.gc
build on it."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db.models import Q

from disks.categories import CATEGORIES, gb_range
from disks.chunks import (
    NoRoomError,
    RepairLease,
    backup_soon,
    chunk_store_copies,
    pending_deletes_run,
    readable_replicas,
    repair_soon,
    replica_drop,
    replica_read,
)
from disks.crypto import workspace_keys
from disks.models import Chunk, Disk, Replica
from disks.placement import backup_targets, replicas_wanted, workspace_place, write_candidates
from disks.selectors import STAYING, chunks_needing_backup, chunks_needing_repair
from disks.services import disk_set_status, workspaces_remap_all

logger = logging.getLogger(__name__)


def chunk_repair(*, chunk_id, relocate: bool = False) -> str:
    """Bring one chunk to its full number of good copies on healthy disks.

    Copies are made from a verified good copy (the same ciphertext, under the same key on every
    disk). Bad copies and copies on failed disks are dropped; copies on draining disks (and, when
    ``relocate``, copies outside the workspace's category) are dropped only once enough good copies
    exist elsewhere. Returns "ok", "repaired", "degraded" (not enough room/disks), "lost", "busy"
    (another worker is repairing it right now), or "writing" (no finished copy yet: an upload is
    still writing it, and owns its copies until it finishes)."""
    # Beat runs, drains and read-triggered repairs may reach the same chunk at once; one of them
    # works on it, the others skip it (the cache is shared by every process: Redis or a file cache).
    lease = RepairLease(chunk_id)
    if not lease.acquire():
        return "busy"
    try:
        return _chunk_repair(chunk_id=chunk_id, relocate=relocate, lease=lease)
    finally:
        lease.release()


def _chunk_repair(*, chunk_id, relocate: bool, lease: RepairLease) -> str:
    chunk = Chunk.objects.select_related("workspace").filter(pk=chunk_id).first()
    if chunk is None:
        return "ok"
    workspace = chunk.workspace
    wanted = replicas_wanted()
    changed = False

    def keepers(replicas):
        good = [
            r for r in replicas if r.state == Replica.State.OK and r.disk.status in STAYING and not r.disk.is_backup
        ]
        if relocate:
            good = [r for r in good if r.disk.category == workspace.category]
        return good

    def backup_keeper(replicas):
        # One copy on the backup tier is kept (the oldest); it is never moved for a category.
        good = [r for r in replicas if r.state == Replica.State.OK and r.disk.status in STAYING and r.disk.is_backup]
        return min(good, key=lambda r: r.pk, default=None)

    replicas = list(chunk.replicas.select_related("disk"))
    kept = keepers(replicas)
    backup = backup_keeper(replicas)
    missing = wanted - len(kept)
    backup_to = [] if backup is not None else backup_targets(size=chunk.stored_size)
    if missing > 0 or backup_to:
        keys = workspace_keys(workspace_id=workspace.pk)
        blob = None
        # Primary copies first; the backup tier's copy is the source when none of them is good.
        for replica in readable_replicas(chunk=chunk):
            result = replica_read(replica=replica, chunk=chunk, keys=keys)
            if result is not None:
                blob = result[0]
                break
        if blob is None and missing > 0:
            if any(r.state == Replica.State.NEW for r in replicas):
                # Not lost: an upload is writing it (a relocation racing a streaming upload). A
                # later run (repair, workspaces_relocate_check) sees its finished copies.
                return "writing"
            logger.error("chunk %s of workspace %s has no good copy left", chunk.pk, workspace.pk)
            return "lost"
        if blob is not None:
            lease.renew()  # the copies are written under a fresh lease
            if missing > 0:
                changed |= bool(
                    _copies_add(chunk=chunk, blob=blob, want=missing, kept=kept, relocate=relocate, lease=lease)
                )
            if backup_to:
                # The same stored object (ciphertext under the same key) as every other copy.
                changed |= bool(
                    chunk_store_copies(
                        chunk=chunk,
                        blob=blob,
                        workspace=workspace,
                        want=1,
                        exclude=set(),
                        candidates=backup_to,
                        lease=lease,
                    )
                )
            replicas = list(chunk.replicas.select_related("disk"))
            kept = keepers(replicas)
            backup = backup_keeper(replicas)
    kept_ids = {r.pk for r in kept} | ({backup.pk} if backup is not None else set())
    enough = len(kept) >= wanted
    # A copy on a draining backup disk goes once another backup disk holds one, or when no backup
    # disk is left to take it (the operator is retiring the tier).
    backup_done = backup is not None or not (backup_to or backup_targets())
    for replica in replicas:
        if replica.pk in kept_ids or replica.state == Replica.State.NEW:
            continue  # kept, or still being written by an upload (which owns it)
        # A bad copy is nothing; a copy on a failed disk may well be intact (a disk failed by probes
        # that timed out, or unplugged): its record is what lets it be read again, and what keeps
        # the sweep off it, if the disk comes back. It goes once enough copies exist elsewhere.
        hopeless = replica.state == Replica.State.BAD or (enough and replica.disk.status == Disk.Status.FAILED)
        if hopeless or (enough and (backup_done or not replica.disk.is_backup)):
            replica_drop(replica=replica)
            changed = True
    if len(kept) < wanted:
        return "degraded" if kept else ("lost" if not readable_replicas(chunk=chunk) else "degraded")
    return "repaired" if changed else "ok"


def _copies_add(*, chunk: Chunk, blob: bytes, want: int, kept: list, relocate: bool, lease: RepairLease) -> list[Disk]:
    """Write ``want`` more primary copies of a chunk (inside its workspace's category when
    ``relocate``); the disks written, possibly fewer (no room)."""
    workspace = chunk.workspace
    holding = {r.disk_id for r in kept}
    candidates = None
    if relocate:
        # Make the new copies inside the category where it has room.
        candidates = [
            d
            for d in write_candidates(workspace=workspace, size=len(blob), exclude=holding)
            if d.category == workspace.category
        ]
    try:
        return chunk_store_copies(
            chunk=chunk, blob=blob, workspace=workspace, want=want, exclude=holding, candidates=candidates, lease=lease
        )
    except NoRoomError:
        return []


def _repair_throttled(chunks: list[tuple], **kwargs) -> dict[str, int]:
    """Repair (chunk id, stored size) pairs in order, at most CLOUDSTORAGE_REPAIR_BYTES_PER_SECOND of
    copied bytes, so re-replication after a disk loss does not starve uploads and downloads."""
    rate = settings.CLOUDSTORAGE_REPAIR_BYTES_PER_SECOND
    results: dict[str, int] = {}
    started = time.monotonic()
    moved = 0
    for chunk_id, size in chunks:
        outcome = chunk_repair(chunk_id=chunk_id, **kwargs)
        results[outcome] = results.get(outcome, 0) + 1
        if outcome == "repaired" and rate:
            moved += size
            ahead = moved / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
    return results


def replicas_repair(*, limit: int | None = None) -> dict[str, int]:
    """One throttled repair run: at most ``limit`` chunks (CLOUDSTORAGE_REPAIR_BATCH), at most
    CLOUDSTORAGE_REPAIR_BYTES_PER_SECOND, fewest copies first. Safe to run concurrently: each
    chunk's repair re-reads the state and only adds missing copies. When the batch was full, the
    next pass is queued at once rather than at the next minute."""
    workspaces_remap_all()
    limit = limit or settings.CLOUDSTORAGE_REPAIR_BATCH
    chunks = list(chunks_needing_repair().values_list("id", "stored_size")[:limit])
    results = _repair_throttled(chunks)
    if len(chunks) >= limit and results.get("repaired"):
        repair_soon()
    return results


def chunks_backup(*, limit: int | None = None) -> dict[str, int]:
    """One throttled run of the backup tier: give the chunks of finished files that have no copy on
    it one, oldest first (read from a verified primary copy, the same stored object written), at
    most ``limit`` chunks (CLOUDSTORAGE_REPAIR_BATCH) and CLOUDSTORAGE_REPAIR_BYTES_PER_SECOND.
    Each goes through chunk_repair, so its primary copies are brought to their number as well.
    Nothing to do without an active backup disk. When the batch was full, the next run is queued
    at once rather than at the next minute."""
    if not backup_targets():
        return {}
    limit = limit or settings.CLOUDSTORAGE_REPAIR_BATCH
    chunks = list(chunks_needing_backup().order_by("created_at", "pk").values_list("id", "stored_size")[:limit])
    results = _repair_throttled(chunks)
    if len(chunks) >= limit and results.get("repaired"):
        backup_soon()
    return results


def workspace_relocate(*, workspace) -> dict[str, int]:
    """Move a workspace's chunks onto disks of its current category (after a plan change)."""
    workspace_place(workspace=workspace)
    results: dict[str, int] = {}
    off_category = Chunk.objects.filter(workspace=workspace).filter(
        replicas__disk__in=Disk.objects.exclude(category=workspace.category).filter(role=Disk.Role.PRIMARY)
    )
    for chunk_id in off_category.values_list("id", flat=True).distinct().iterator():
        outcome = chunk_repair(chunk_id=chunk_id, relocate=True)
        results[outcome] = results.get(outcome, 0) + 1
    return results


def workspaces_off_category() -> list:
    """Ids of workspaces with a finished copy on an in-service primary disk outside their category:
    chunks an upload wrote with the placement it read before a plan change, and relocations that
    found no room. One query per category."""
    from accounts.models import Workspace

    found: set = set()
    for category in CATEGORIES:
        low, high = gb_range(category)
        outside = Q(plan_gb__lt=low) | (Q(plan_gb__gte=high) if high is not None else Q(pk__in=[]))
        found.update(
            Workspace.objects.filter(outside)
            .filter(
                chunks__replicas__disk__category=category,
                chunks__replicas__disk__role=Disk.Role.PRIMARY,
                chunks__replicas__disk__status__in=STAYING,
                chunks__replicas__state=Replica.State.OK,
            )
            .values_list("pk", flat=True)
            .distinct()
        )
    return sorted(found)


def disk_drain(*, disk: Disk, limit: int | None = None) -> dict[str, int]:
    """Retire a disk: mark it draining, then copy its chunks elsewhere and drop its copies, at most
    ``limit`` chunks per call (the beat job calls again until it is empty), throttled like repair.
    Files stay readable throughout: the draining copy serves reads until its replacement exists,
    and a chunk's copy is dropped only once enough copies exist on disks that stay."""
    if disk.status not in (Disk.Status.DRAINING, Disk.Status.FAILED):
        disk_set_status(disk=disk, status=Disk.Status.DRAINING)
    chunks = Chunk.objects.filter(replicas__disk=disk).order_by("created_at", "pk").values_list("id", "stored_size")
    results = _repair_throttled(list(chunks[:limit] if limit else chunks))
    pending_deletes_run()
    left = Replica.objects.filter(disk=disk).count()
    results["left"] = left
    if not left:
        logger.info("disk %s is drained", disk.name)
    return results


def disk_drain_queued(*, disk_id, limit: int | None = None) -> dict[str, int]:
    """The operators' "Drain now" task: one slice of :func:`disk_drain`, only while the disk is
    still draining. The message may run late or twice (acks_late: a worker restarted mid-drain gets
    it back up to an hour later), after the operator changed their mind ("Mark active"); it must
    neither mark the disk draining again nor move its copies away. The status is read as last
    committed (disk_set_status changes it in one transaction); a change after this read is still
    respected, as each chunk's repair reads its disks' status afresh. No row lock: holding one for
    the drain would keep the operator's "Mark active" and the probe's "failed" waiting for the whole
    slice, and taken for the read alone it only waited for such a change, which is respected anyway."""
    disk = Disk.objects.filter(pk=disk_id).first()
    if disk is None:
        return {}
    if disk.status != Disk.Status.DRAINING:
        logger.info("drain of disk %s not started: it is %s now", disk.name, disk.status)
        return {}
    return disk_drain(disk=disk, limit=limit)


def disks_drain(*, limit: int | None = None) -> dict[str, dict[str, int]]:
    """One slice of draining for every draining disk that still holds copies (the beat job)."""
    limit = limit or settings.CLOUDSTORAGE_REPAIR_BATCH
    return {
        disk.name: disk_drain(disk=disk, limit=limit)
        for disk in Disk.objects.filter(status=Disk.Status.DRAINING, replicas__isnull=False).distinct()
    }
