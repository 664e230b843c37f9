"""Writes for disks: attaching, health probes, status changes, and the maintenance of the chunk store
(repair, remap, drain, relocation, scrub, garbage collection, capacity alerts)."""

from __future__ import annotations

import logging
import os
import secrets
import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, Q
from django.utils import timezone

from disks.backends import BackendError, backend_for
from disks.chunks import (
    NoRoomError,
    backup_soon,
    chunk_id_of,
    chunk_store_copies,
    pending_deletes_run,
    readable_replicas,
    repair_soon,
    replica_drop,
    replica_mark_bad,
    replica_read,
)
from disks.crypto import workspace_keys
from disks.identity import disk_identity_check, disk_mark
from disks.models import Chunk, Disk, Manifest, ManifestChunk, PendingDelete, Replica
from disks.placement import READABLE, backup_targets, replicas_wanted, workspace_place, write_candidates
from disks.selectors import chunks_needing_backup

# Disks whose copies count towards a chunk's replicas (a draining disk's copies are on their way out).
STAYING = (Disk.Status.ACTIVE, Disk.Status.READ_ONLY)

logger = logging.getLogger(__name__)

PROBE_NAME = ".probe"


class DiskProbeError(Exception):
    pass


def _probe_local(disk: Disk) -> None:
    root = Path(disk.path)
    if not root.is_dir():
        raise DiskProbeError(f"{root} is not a folder")
    payload = secrets.token_bytes(64)
    path = root / f"{PROBE_NAME}-{secrets.token_hex(4)}"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, payload)
            os.fsync(fd)
        finally:
            os.close(fd)
        if path.read_bytes() != payload:
            raise DiskProbeError("read back different bytes than written")
    except OSError as exc:
        raise DiskProbeError(str(exc)) from exc
    finally:
        path.unlink(missing_ok=True)


def disk_check(*, disk: Disk) -> str | None:
    """Write, fsync, read back and delete a probe object; the error text, or None when healthy."""
    try:
        if disk.backend == Disk.Backend.LOCAL:
            _probe_local(disk)
        else:
            from disks.backends import backend_for

            backend_for(disk).probe()
    except Exception as exc:  # noqa: BLE001 - any failure of the disk is the answer we want
        return str(exc) or exc.__class__.__name__
    return None


PROBE_HISTORY = 32


def damped_failures(history: str, *, recovery: int) -> int:
    """Failed probes since the disk was last steadily healthy: counting back from the newest result,
    every failure counts until a run of ``recovery`` good probes in a row. One lucky probe between
    failures therefore does not reset the count, so a flapping disk is failed like a dead one."""
    failures = good_run = 0
    for result in reversed(history):
        if result == "1":
            good_run += 1
            if good_run >= recovery:
                break
        else:
            failures += 1
            good_run = 0
    return failures


def disk_probe(*, disk: Disk) -> bool:
    """Probe a disk and record the result. CLOUDSTORAGE_DISK_PROBE_FAILURES failures without
    CLOUDSTORAGE_DISK_PROBE_RECOVERY good probes in a row between them mark it failed: its workspaces
    are remapped at once, its chunks re-replicated by the next repair run, and operators e-mailed.
    A disk that is not itself (identity marker missing or foreign: disks.identity) is failed at
    once. A failed disk is not brought back by a good probe; an operator decides that in the admin."""
    identity_error = disk_identity_check(disk=disk)
    error = identity_error or disk_check(disk=disk)
    now = timezone.now()
    newly_failed = False
    with transaction.atomic():
        disk = Disk.objects.select_for_update().get(pk=disk.pk)
        disk.last_check_at = now
        disk.last_check_ok = error is None
        disk.last_check_error = error or ""
        disk.probe_history = (disk.probe_history + ("1" if error is None else "0"))[-PROBE_HISTORY:]
        disk.consecutive_failures = damped_failures(
            disk.probe_history, recovery=max(1, settings.CLOUDSTORAGE_DISK_PROBE_RECOVERY)
        )
        disk.save(
            update_fields=[
                "last_check_at",
                "last_check_ok",
                "last_check_error",
                "probe_history",
                "consecutive_failures",
            ]
        )
        newly_failed = (
            error is not None
            and disk.status != Disk.Status.FAILED
            and (identity_error is not None or disk.consecutive_failures >= settings.CLOUDSTORAGE_DISK_PROBE_FAILURES)
        )
    if newly_failed:
        why = (
            "is not the disk attached there (its identity marker is missing or names another disk)"
            if identity_error
            else f"failed {disk.consecutive_failures} health probes"
        )
        logger.error("disk %s marked failed: it %s: %s", disk.name, why, error)
        disk_set_status(disk=disk, status=Disk.Status.FAILED)
        operators_notify(
            subject=f"Disk {disk.name} failed",
            message=(
                f"Disk {disk.name} (category {disk.category}) {why} and was marked failed.\nLast error: {error}\n"
                "Its workspaces were moved to other disks and its chunks are being copied from their other "
                "replicas. Attach a replacement disk in the admin if the category is short of room.\n"
            ),
        )
    return error is None


def operators_notify(*, subject: str, message: str) -> bool:
    """E-mail the operators (OPERATOR_EMAILS and active staff users); False when there is nobody."""
    from django.contrib.auth import get_user_model
    from django.core.mail import send_mail

    staff = get_user_model().objects.filter(is_staff=True, is_active=True).exclude(email="")
    recipients = sorted(set(settings.OPERATOR_EMAILS) | set(staff.values_list("email", flat=True)))
    if not recipients:
        logger.error("no operator address is configured for an alert: %s", subject)
        return False
    send_mail(
        subject=f"[{settings.SITE_NAME}] {subject}",
        message=message,
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=recipients,
    )
    return True


def disk_create_local(
    *,
    name: str,
    path: Path | str,
    category: str,
    capacity_bytes: int,
    status: str = Disk.Status.ACTIVE,
    role: str = Disk.Role.PRIMARY,
) -> Disk:
    """Attach a local folder as a disk (or register it as a standby) after checking it is writable."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    disk = Disk(
        name=name,
        backend=Disk.Backend.LOCAL,
        path=str(path),
        category=category,
        capacity_bytes=capacity_bytes,
        status=status,
        role=role,
    )
    return disk_attach(disk=disk)


def disk_attach(*, disk: Disk) -> Disk:
    """Save a new disk only after a probe proved it reachable and writable and its identity marker
    is written (DiskProbeError otherwise)."""
    error = disk_check(disk=disk)
    if not error:
        try:
            disk_mark(disk=disk)
        except BackendError as exc:
            error = str(exc)
    if error:
        raise DiskProbeError(f"disk {disk.name} is not usable: {error}")
    disk.last_check_at = timezone.now()
    disk.last_check_ok = True
    disk.probe_history = "1"
    disk.save()
    return disk


# --- Status changes -----------------------------------------------------------------------------


def disk_set_status(*, disk: Disk, status: str) -> Disk:
    """Change a disk's status; a failed or draining disk's workspaces are remapped at once, and the
    next repair run copies its chunks elsewhere. A disk brought back from failed is swept (after the
    commit) of the objects whose copies were dropped while it was failed."""
    from disks import tasks

    with transaction.atomic():
        previous = Disk.objects.select_for_update().filter(pk=disk.pk).values_list("status", flat=True).first()
        Disk.objects.filter(pk=disk.pk).update(status=status)
        disk.status = status
        if previous == Disk.Status.FAILED and status != Disk.Status.FAILED:
            transaction.on_commit(lambda disk_id=str(disk.pk): tasks.disk_sweep.delay(disk_id=disk_id))
    if status in (Disk.Status.FAILED, Disk.Status.DRAINING, Disk.Status.READ_ONLY):
        workspaces_remap(disk=disk)
    if status == Disk.Status.FAILED:
        repair_soon()  # its chunks are short of a copy now, not at the next minute's run
    logger.warning("disk %s is now %s", disk.name, status)
    return disk


def workspaces_remap(*, disk: Disk) -> int:
    """Give every workspace placed on ``disk`` a healthy disk instead; the number remapped."""
    from accounts.models import Workspace

    workspaces = Workspace.objects.filter(placements__disk=disk).distinct()
    count = 0
    for workspace in workspaces:
        workspace_place(workspace=workspace)
        count += 1
    if count:
        logger.warning("remapped %s workspace(s) off disk %s", count, disk.name)
    return count


def workspaces_remap_all() -> int:
    """Remap every workspace that has a placement on a disk out of service (idempotent sweep)."""
    count = 0
    for disk in Disk.objects.exclude(status=Disk.Status.ACTIVE).filter(placements__isnull=False).distinct():
        count += workspaces_remap(disk=disk)
    return count


# --- Repair -------------------------------------------------------------------------------------


def chunk_repair(*, chunk_id, relocate: bool = False) -> str:
    """Bring one chunk to its full number of good copies on healthy disks.

    Copies are made from a verified good copy (the same ciphertext, under the same key on every
    disk). Bad copies and copies on failed disks are dropped; copies on draining disks (and, when
    ``relocate``, copies outside the workspace's category) are dropped only once enough good copies
    exist elsewhere. Returns "ok", "repaired", "degraded" (not enough room/disks), "lost", or "busy"
    (another worker is repairing it right now)."""
    # Beat runs, drains and read-triggered repairs may reach the same chunk at once; one of them
    # works on it, the others skip it (the cache is shared by every process: Redis or a file cache).
    lease = RepairLease(chunk_id)
    if not lease.acquire():
        return "busy"
    try:
        return _chunk_repair(chunk_id=chunk_id, relocate=relocate, lease=lease)
    finally:
        lease.release()


class RepairLease:
    """A chunk's repair lock as a short lease (CLOUDSTORAGE_REPAIR_LEASE seconds) in the shared
    cache, renewed while its holder works: a worker killed mid-repair holds the chunk for at most
    one lease, not until a long timeout. Released only by its holder (a random token)."""

    def __init__(self, chunk_id):
        self.key = f"disks:chunk-repair:{chunk_id}"
        self.token = secrets.token_hex(8)

    def acquire(self) -> bool:
        return cache.add(self.key, self.token, timeout=settings.CLOUDSTORAGE_REPAIR_LEASE)

    def renew(self) -> None:
        if cache.get(self.key) == self.token:
            cache.touch(self.key, timeout=settings.CLOUDSTORAGE_REPAIR_LEASE)

    def release(self) -> None:
        if cache.get(self.key) == self.token:
            cache.delete(self.key)


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
            logger.error("chunk %s of workspace %s has no good copy left", chunk.pk, workspace.pk)
            return "lost"
        if blob is not None:
            lease.renew()  # the copies are written under a fresh lease
            if missing > 0:
                changed |= bool(_copies_add(chunk=chunk, blob=blob, want=missing, kept=kept, relocate=relocate))
            if backup_to:
                # The same stored object (ciphertext under the same key) as every other copy.
                changed |= bool(
                    chunk_store_copies(
                        chunk=chunk, blob=blob, workspace=workspace, want=1, exclude=set(), candidates=backup_to
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
        hopeless = replica.state == Replica.State.BAD or replica.disk.status == Disk.Status.FAILED
        if hopeless or (enough and (backup_done or not replica.disk.is_backup)):
            replica_drop(replica=replica)
            changed = True
    if len(kept) < wanted:
        return "degraded" if kept else ("lost" if not readable_replicas(chunk=chunk) else "degraded")
    return "repaired" if changed else "ok"


def _copies_add(*, chunk: Chunk, blob: bytes, want: int, kept: list, relocate: bool) -> list[Disk]:
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
            chunk=chunk, blob=blob, workspace=workspace, want=want, exclude=holding, candidates=candidates
        )
    except NoRoomError:
        return []


def _good_copies(*, statuses, role) -> Count:
    """Per chunk: its good copies on disks of ``role`` in one of ``statuses``."""
    return Count(
        "replicas",
        filter=Q(replicas__state=Replica.State.OK, replicas__disk__status__in=statuses, replicas__disk__role=role),
    )


def chunks_needing_repair():
    """Chunks with fewer good copies on in-service primary disks than wanted, or with copies to drop
    (bad, on a failed or draining disk, the backup tier's included); fewest good copies first, so
    the most endangered go first."""
    wanted = replicas_wanted()
    good = _good_copies(statuses=STAYING, role=Disk.Role.PRIMARY)
    # Good copies on the backup tier: not replicas, but what a chunk without a primary copy is
    # read and repaired from.
    backed = _good_copies(statuses=READABLE, role=Disk.Role.BACKUP)
    doubtful = Count(
        "replicas",
        filter=Q(replicas__state=Replica.State.BAD)
        | Q(replicas__disk__status__in=(Disk.Status.FAILED, Disk.Status.DRAINING)),
    )
    # A chunk with copies still being written belongs to its upload (which settles them or fails)
    # or, after a crash, to GC: repairing it would only raise false "lost chunk" alarms. So does a
    # chunk with no good copy that no finished file uses: an upload in progress is writing it (its
    # row is recorded before its copies), or GC collects it.
    writing = Replica.objects.filter(chunk=OuterRef("pk"), state=Replica.State.NEW)
    in_a_file = ManifestChunk.objects.filter(chunk=OuterRef("pk"), manifest__state=Manifest.State.READY)
    return (
        Chunk.objects.annotate(good=good, backed=backed, doubtful=doubtful)
        .filter(Q(good__lt=wanted) | Q(doubtful__gt=0))
        .filter(~Exists(writing))
        .filter(Q(good__gt=0) | Exists(in_a_file))
        .order_by("good", "created_at")
    )


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


def disks_drain(*, limit: int | None = None) -> dict[str, dict[str, int]]:
    """One slice of draining for every draining disk that still holds copies (the beat job)."""
    limit = limit or settings.CLOUDSTORAGE_REPAIR_BATCH
    return {
        disk.name: disk_drain(disk=disk, limit=limit)
        for disk in Disk.objects.filter(status=Disk.Status.DRAINING, replicas__isnull=False).distinct()
    }


# --- Scrub --------------------------------------------------------------------------------------


def replicas_scrub(*, disk: Disk | None = None, limit: int | None = None) -> dict[str, int]:
    """Read and verify copies, least recently verified first; bad ones are marked and their chunks
    repaired in the same pass. ``limit`` None means every copy (on ``disk`` if given)."""
    replicas = Replica.objects.filter(state=Replica.State.OK, disk__status__in=READABLE).select_related("disk", "chunk")
    if disk is not None:
        replicas = replicas.filter(disk=disk)
    replicas = replicas.order_by(F("verified_at").asc(nulls_first=True), "pk")
    if limit is not None:
        replicas = replicas[:limit]
    keys_by_workspace: dict = {}
    checked = bad = 0
    to_repair = set()
    for replica in replicas.iterator(chunk_size=500):
        chunk = replica.chunk
        keys = keys_by_workspace.get(chunk.workspace_id)
        if keys is None:
            keys = keys_by_workspace[chunk.workspace_id] = workspace_keys(workspace_id=chunk.workspace_id)
        checked += 1
        if replica_read(replica=replica, chunk=chunk, keys=keys) is None:
            bad += 1
            to_repair.add(chunk.pk)
        else:
            Replica.objects.filter(pk=replica.pk).update(verified_at=timezone.now())
    repaired = 0
    for chunk_id in to_repair:
        if chunk_repair(chunk_id=chunk_id) in ("repaired", "ok"):
            repaired += 1
    return {"checked": checked, "bad": bad, "repaired": repaired}


def scrub_batch_size() -> int:
    """How many copies one scheduled scrub run verifies so every copy is verified once per period."""
    total = Replica.objects.count()
    runs = max(1, settings.CLOUDSTORAGE_SCRUB_PERIOD // max(1, settings.CLOUDSTORAGE_SCRUB_INTERVAL))
    return max(1, -(-total // runs))


# --- Garbage collection -------------------------------------------------------------------------


def chunk_collect(*, chunk_id) -> bool:
    """Delete a chunk if nothing references it (checked under the row lock a writer also takes
    before referencing it, so a concurrent deduplicating upload either sees it gone or keeps it)."""
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
    from disks.store import manifest_release

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
    from disks.store import manifest_release

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


def disk_sweep(*, disk: Disk, grace_seconds: int = SWEEP_GRACE_SECONDS) -> dict[str, int]:
    """Delete the chunk objects on ``disk`` that no Replica row on that disk references: the copies
    dropped while it was failed (nothing is deleted from a failed disk) and the leftovers of writes
    that crashed before their row was saved. Idempotent; returns counts.

    Only objects under ``ws/`` named by a chunk id are considered (probe objects and anything else
    are left alone), and only when last written more than ``grace_seconds`` ago, so a copy being
    written right now, whose row is not committed yet, is never touched. An object whose chunk still
    exists is deleted under that chunk's repair lock and only if it was not rewritten meanwhile; if a
    row for it appears anyway, that copy is marked bad so repair writes it again."""
    counts = {"scanned": 0, "referenced": 0, "recent": 0, "busy": 0, "deleted": 0, "errors": 0}
    if Disk.objects.filter(pk=disk.pk, status=Disk.Status.FAILED).exists():
        return counts  # failed again: nothing is read from or deleted on a failed disk
    backend = backend_for(disk)
    cutoff = timezone.now() - timedelta(seconds=grace_seconds)

    def sweep(batch: list[tuple[str, object, object]]) -> None:
        ids = {chunk_id for _key, chunk_id, _modified in batch}
        referenced = set(Replica.objects.filter(disk=disk, chunk_id__in=ids).values_list("chunk_id", flat=True))
        alive = set(Chunk.objects.filter(pk__in=ids - referenced).values_list("pk", flat=True))
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
                    # A writer may have put a fresh copy (and saved its row) since the listing.
                    if Replica.objects.filter(disk=disk, chunk_id=chunk_id).exists():
                        counts["referenced"] += 1
                        continue
                    current = backend.modified_at(key)
                    if current is None or current > cutoff:
                        counts["recent"] += 1
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
    return counts


# --- Capacity -----------------------------------------------------------------------------------


def capacity_alert(*, threshold: float | None = None) -> list[str]:
    """E-mail operators about each category whose in-service disks are fuller than the threshold
    (CLOUDSTORAGE_CAPACITY_ALERT_PERCENT). Not re-sent on every run: at most once per
    CLOUDSTORAGE_CAPACITY_ALERT_REPEAT seconds per category while it stays above; a category that
    went back below is alerted again as soon as it crosses the threshold anew."""
    from disks.models import CapacityAlert
    from disks.selectors import capacity_by_category, standby_counts

    threshold = threshold if threshold is not None else settings.CLOUDSTORAGE_CAPACITY_ALERT_PERCENT
    standbys = standby_counts()
    repeat = timedelta(seconds=settings.CLOUDSTORAGE_CAPACITY_ALERT_REPEAT)
    now = timezone.now()
    alerted = []
    for row in capacity_by_category():
        if row["percent"] < threshold:
            CapacityAlert.objects.filter(category=row["category"]).delete()
            continue
        last = CapacityAlert.objects.filter(category=row["category"]).first()
        if last and last.sent_at > now - repeat:
            continue
        sent = operators_notify(
            subject=f"Disk category {row['category']} is {row['percent']:.0f}% full",
            message=(
                f"The in-service disks of category {row['category']} hold {row['used_bytes']} of "
                f"{row['capacity_bytes']} bytes ({row['percent']:.1f}%, alert threshold {threshold}%).\n"
                + (
                    f"{standbys[row['category']]} standby disk(s) of this category wait to be activated.\n"
                    if standbys.get(row["category"])
                    else "No standby disk of this category is left: attach or register another in the admin "
                    "before it fills up.\n"
                )
            ),
        )
        if not sent:
            continue
        CapacityAlert.objects.update_or_create(
            category=row["category"], defaults={"sent_at": now, "percent": row["percent"]}
        )
        alerted.append(row["category"])
    return alerted
