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
from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, Q
from django.utils import timezone

from disks.chunks import (
    NoRoomError,
    chunk_store_copies,
    pending_deletes_run,
    readable_replicas,
    replica_drop,
    replica_read,
)
from disks.crypto import workspace_keys
from disks.models import Chunk, Disk, Manifest, ManifestChunk, PendingDelete, Replica
from disks.placement import READABLE, replicas_wanted, workspace_place, write_candidates

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


def disk_probe(*, disk: Disk) -> bool:
    """Probe a disk and record the result; N failures in a row mark it failed."""
    error = disk_check(disk=disk)
    now = timezone.now()
    with transaction.atomic():
        disk = Disk.objects.select_for_update().get(pk=disk.pk)
        disk.last_check_at = now
        disk.last_check_ok = error is None
        disk.last_check_error = error or ""
        fields = ["last_check_at", "last_check_ok", "last_check_error", "consecutive_failures"]
        if error is None:
            disk.consecutive_failures = 0
        else:
            disk.consecutive_failures = F("consecutive_failures") + 1
        disk.save(update_fields=fields)
        disk.refresh_from_db(fields=["consecutive_failures"])
        if (
            error is not None
            and disk.status != Disk.Status.FAILED
            and disk.consecutive_failures >= settings.CLOUDSTORAGE_DISK_PROBE_FAILURES
        ):
            disk.status = Disk.Status.FAILED
            disk.save(update_fields=["status"])
            logger.error(
                "disk %s marked failed after %s failed probes: %s", disk.name, disk.consecutive_failures, error
            )
    return error is None


def disk_create_local(*, name: str, path: Path | str, category: str, capacity_bytes: int) -> Disk:
    """Attach a local folder as a disk after checking it is writable."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    disk = Disk(name=name, backend=Disk.Backend.LOCAL, path=str(path), category=category, capacity_bytes=capacity_bytes)
    return disk_attach(disk=disk)


def disk_attach(*, disk: Disk) -> Disk:
    """Save a new disk only after a probe proved it reachable and writable (DiskProbeError otherwise)."""
    error = disk_check(disk=disk)
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
    next repair run copies its chunks elsewhere."""
    with transaction.atomic():
        Disk.objects.filter(pk=disk.pk).update(status=status)
        disk.status = status
    if status in (Disk.Status.FAILED, Disk.Status.DRAINING, Disk.Status.READ_ONLY):
        workspaces_remap(disk=disk)
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
    exist elsewhere. Returns "ok", "repaired", "degraded" (not enough room/disks) or "lost"."""
    chunk = Chunk.objects.select_related("workspace").filter(pk=chunk_id).first()
    if chunk is None:
        return "ok"
    workspace = chunk.workspace
    wanted = replicas_wanted()
    keys = None
    changed = False

    def keepers(replicas):
        good = [r for r in replicas if r.state == Replica.State.OK and r.disk.status in STAYING]
        if relocate:
            good = [r for r in good if r.disk.category == workspace.category]
        return good

    replicas = list(chunk.replicas.select_related("disk"))
    kept = keepers(replicas)
    missing = wanted - len(kept)
    if missing > 0:
        keys = workspace_keys(workspace_id=workspace.pk)
        blob = None
        for replica in readable_replicas(chunk=chunk):
            result = replica_read(replica=replica, chunk=chunk, keys=keys)
            if result is not None:
                blob = result[0]
                break
        if blob is None:
            logger.error("chunk %s of workspace %s has no good copy left", chunk.pk, workspace.pk)
            return "lost"
        holding = {r.disk_id for r in kept}
        if relocate:
            # Make the new copies inside the category where it has room.
            candidates = [
                d
                for d in write_candidates(workspace=workspace, size=len(blob), exclude=holding)
                if d.category == workspace.category
            ]
        else:
            candidates = None
        try:
            written = chunk_store_copies(
                chunk=chunk, blob=blob, workspace=workspace, want=missing, exclude=holding, candidates=candidates
            )
        except NoRoomError:
            written = []
        changed = bool(written)
        replicas = list(chunk.replicas.select_related("disk"))
        kept = keepers(replicas)
    kept_ids = {r.pk for r in kept}
    enough = len(kept) >= wanted
    for replica in replicas:
        if replica.pk in kept_ids:
            continue
        hopeless = replica.state == Replica.State.BAD or replica.disk.status == Disk.Status.FAILED
        if hopeless or enough:
            replica_drop(replica=replica)
            changed = True
    if len(kept) < wanted:
        return "degraded" if kept else ("lost" if not readable_replicas(chunk=chunk) else "degraded")
    return "repaired" if changed else "ok"


def chunks_needing_repair():
    """Chunks with fewer good copies on in-service disks than wanted, or with copies to drop (bad,
    on a failed or draining disk); fewest good copies first, so the most endangered go first."""
    wanted = replicas_wanted()
    good = Count("replicas", filter=Q(replicas__state=Replica.State.OK, replicas__disk__status__in=STAYING))
    doubtful = Count(
        "replicas",
        filter=Q(replicas__state=Replica.State.BAD)
        | Q(replicas__disk__status__in=(Disk.Status.FAILED, Disk.Status.DRAINING)),
    )
    return (
        Chunk.objects.annotate(good=good, doubtful=doubtful)
        .filter(Q(good__lt=wanted) | Q(doubtful__gt=0))
        .order_by("good", "created_at")
    )


def replicas_repair(*, limit: int | None = None) -> dict[str, int]:
    """One throttled repair run: at most ``limit`` chunks (CLOUDSTORAGE_REPAIR_BATCH), at most
    CLOUDSTORAGE_REPAIR_BYTES_PER_SECOND, fewest copies first. Safe to run concurrently: each
    chunk's repair re-reads the state and only adds missing copies."""
    workspaces_remap_all()
    limit = limit or settings.CLOUDSTORAGE_REPAIR_BATCH
    rate = settings.CLOUDSTORAGE_REPAIR_BYTES_PER_SECOND
    results: dict[str, int] = {}
    started = time.monotonic()
    moved = 0
    for chunk_id, size in list(chunks_needing_repair().values_list("id", "stored_size")[:limit]):
        outcome = chunk_repair(chunk_id=chunk_id)
        results[outcome] = results.get(outcome, 0) + 1
        if outcome == "repaired" and rate:
            moved += size
            ahead = moved / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
    return results


def workspace_relocate(*, workspace) -> dict[str, int]:
    """Move a workspace's chunks onto disks of its current category (after a plan change)."""
    workspace_place(workspace=workspace)
    results: dict[str, int] = {}
    off_category = Chunk.objects.filter(workspace=workspace).filter(
        replicas__disk__in=Disk.objects.exclude(category=workspace.category)
    )
    for chunk_id in off_category.values_list("id", flat=True).distinct().iterator():
        outcome = chunk_repair(chunk_id=chunk_id, relocate=True)
        results[outcome] = results.get(outcome, 0) + 1
    return results


def disk_drain(*, disk: Disk) -> dict[str, int]:
    """Retire a disk: mark it draining, then copy each of its chunks elsewhere and drop its copies.
    Files stay readable throughout (the draining copy serves reads until its replacement exists)."""
    if disk.status != Disk.Status.DRAINING:
        disk_set_status(disk=disk, status=Disk.Status.DRAINING)
    results: dict[str, int] = {}
    for chunk_id in Replica.objects.filter(disk=disk).values_list("chunk_id", flat=True).iterator():
        outcome = chunk_repair(chunk_id=chunk_id)
        results[outcome] = results.get(outcome, 0) + 1
    pending_deletes_run()
    return results


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


def chunks_gc(*, grace: timedelta | None = None, pending_grace: timedelta | None = None, limit: int = 5000) -> dict:
    """Collect chunks no manifest has referenced for the grace period, after releasing uploads that a
    crash abandoned (pending manifests idle longer than the pending grace)."""
    now = timezone.now()
    grace = grace if grace is not None else timedelta(seconds=settings.CLOUDSTORAGE_GC_GRACE)
    pending_grace = (
        pending_grace if pending_grace is not None else timedelta(seconds=settings.CLOUDSTORAGE_PENDING_GRACE)
    )
    from disks.store import manifest_release

    abandoned = 0
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
    return {"abandoned_uploads": abandoned, "chunks": collected, "objects_deleted": deleted}


# --- Capacity -----------------------------------------------------------------------------------


def capacity_alert(*, threshold: float | None = None) -> list[str]:
    """E-mail operators (settings.OPERATOR_EMAILS and staff users) about each category whose
    in-service disks are fuller than the threshold, at most once a day per category."""
    from django.contrib.auth import get_user_model
    from django.core.mail import send_mail

    from disks.models import CapacityAlert
    from disks.selectors import capacity_by_category

    threshold = threshold if threshold is not None else settings.CLOUDSTORAGE_CAPACITY_ALERT_PERCENT
    now = timezone.now()
    alerted = []
    for row in capacity_by_category():
        if row["percent"] < threshold:
            continue
        last = CapacityAlert.objects.filter(category=row["category"]).first()
        if last and last.sent_at > now - timedelta(days=1):
            continue
        staff = get_user_model().objects.filter(is_staff=True, is_active=True).values_list("email", flat=True)
        recipients = sorted(set(settings.OPERATOR_EMAILS) | set(staff))
        if not recipients:
            logger.error(
                "category %s is %.0f%% full and no operator address is configured", row["category"], row["percent"]
            )
            continue
        send_mail(
            subject=f"[Cloud Storage] Disk category {row['category']} is {row['percent']:.0f}% full",
            message=(
                f"The in-service disks of category {row['category']} hold {row['used_bytes']} of "
                f"{row['capacity_bytes']} bytes ({row['percent']:.1f}%, alert threshold {threshold}%).\n"
                "Attach another disk of this category in the admin before it fills up.\n"
            ),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=recipients,
        )
        CapacityAlert.objects.update_or_create(
            category=row["category"], defaults={"sent_at": now, "percent": row["percent"]}
        )
        alerted.append(row["category"])
    return alerted
