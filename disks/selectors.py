"""Reads for disks: capacity and replica health, for the admin, alerts and health checks, and the
chunks that repair and the backup tier work on (for disks.repair)."""

from __future__ import annotations

from django.db.models import Count, Exists, Min, OuterRef, Q, QuerySet, Sum
from django.utils import timezone

from disks.categories import CATEGORIES
from disks.models import Chunk, Disk, Manifest, ManifestChunk, Replica
from disks.placement import READABLE, replicas_wanted

IN_SERVICE = (Disk.Status.ACTIVE, Disk.Status.READ_ONLY)

# Disks whose copies count towards a chunk's replicas (a draining disk's copies are on their way out).
STAYING = (Disk.Status.ACTIVE, Disk.Status.READ_ONLY)


def capacity_by_category() -> list[dict]:
    """Per category: in-service primary disks, bytes used and capacity, percent full (the backup
    tier's disks hold no category's data)."""
    rows = {
        row["category"]: row
        for row in Disk.objects.filter(status__in=IN_SERVICE, role=Disk.Role.PRIMARY)
        .values("category")
        .annotate(disks=Count("id"), used_bytes=Sum("used_bytes"), capacity_bytes=Sum("capacity_bytes"))
    }
    result = []
    for category in CATEGORIES:
        row = rows.get(category, {"disks": 0, "used_bytes": 0, "capacity_bytes": 0})
        capacity = row["capacity_bytes"] or 0
        used = row["used_bytes"] or 0
        result.append(
            {
                "category": category,
                "disks": row["disks"],
                "used_bytes": used,
                "capacity_bytes": capacity,
                "percent": (100.0 * used / capacity) if capacity else 0.0,
            }
        )
    return result


def standby_counts() -> dict[str, int]:
    """Standby disks per category (categories without any are absent)."""
    rows = (
        Disk.objects.filter(status=Disk.Status.STANDBY, role=Disk.Role.PRIMARY)
        .values("category")
        .annotate(n=Count("id"))
    )
    return {row["category"]: row["n"] for row in rows}


def replica_health() -> dict[str, int]:
    """Counts of copies by state, and of chunks short of their copies (under-replicated) or with none."""
    wanted = replicas_wanted()
    needing = chunks_needing_repair()
    return {
        "replicas_ok": Replica.objects.filter(state=Replica.State.OK).count(),
        "replicas_bad": Replica.objects.filter(state=Replica.State.BAD).count(),
        "replicas_on_failed_disks": Replica.objects.filter(disk__status=Disk.Status.FAILED).count(),
        "chunks_under_replicated": needing.filter(good__lt=wanted).count(),
        "chunks_without_good_copy": needing.filter(good=0, backed=0).count(),
        "chunks_only_on_backup": needing.filter(good=0, backed__gt=0).count(),
        "chunks_needing_repair": needing.count(),
    }


def disk_replica_counts() -> dict:
    """Per disk id: (good copies, bad copies)."""
    return {
        row["disk"]: (row["ok"], row["bad"])
        for row in Replica.objects.values("disk").annotate(
            ok=Count("id", filter=Q(state=Replica.State.OK)), bad=Count("id", filter=Q(state=Replica.State.BAD))
        )
    }


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


def chunks_needing_backup() -> QuerySet[Chunk]:
    """Chunks of finished files without a good copy on an in-service backup disk (a copy on a
    draining backup disk is on its way out), leaving aside those an upload is writing right now."""
    backed = Replica.objects.filter(
        chunk=OuterRef("pk"),
        state=Replica.State.OK,
        disk__role=Disk.Role.BACKUP,
        disk__status__in=IN_SERVICE,
    )
    writing = Replica.objects.filter(chunk=OuterRef("pk"), state=Replica.State.NEW)
    in_a_file = ManifestChunk.objects.filter(chunk=OuterRef("pk"), manifest__state=Manifest.State.READY)
    return Chunk.objects.filter(Exists(in_a_file)).filter(~Exists(backed)).filter(~Exists(writing))


def backup_lag() -> dict | None:
    """How far the backup tier is behind: the chunks (and their stored bytes) not on it yet, and
    the age of the oldest; None when no disk is a backup target (a draining one does not count:
    its operator is retiring it). A failed backup disk still counts, so the lag shows its loss."""
    if not Disk.objects.filter(role=Disk.Role.BACKUP).exclude(status=Disk.Status.DRAINING).exists():
        return None
    row = chunks_needing_backup().aggregate(chunks=Count("id"), bytes=Sum("stored_size"), oldest=Min("created_at"))
    oldest = row["oldest"]
    return {
        "chunks": row["chunks"],
        "bytes": row["bytes"] or 0,
        "oldest_at": oldest,
        "age_seconds": max((timezone.now() - oldest).total_seconds(), 0.0) if oldest else 0.0,
        "disks": list(
            Disk.objects.filter(role=Disk.Role.BACKUP).order_by("name").values("name", "status", "used_bytes")
        ),
    }
