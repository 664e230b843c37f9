"""Reads for disks: capacity and replica health, for the admin, alerts and health checks."""

from __future__ import annotations

from django.db.models import Count, Q, Sum

from billing.plans import CATEGORIES
from disks.models import Disk, Replica

IN_SERVICE = (Disk.Status.ACTIVE, Disk.Status.READ_ONLY)


def capacity_by_category() -> list[dict]:
    """Per category: in-service disks, bytes used and capacity, percent full."""
    rows = {
        row["category"]: row
        for row in Disk.objects.filter(status__in=IN_SERVICE)
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
    rows = Disk.objects.filter(status=Disk.Status.STANDBY).values("category").annotate(n=Count("id"))
    return {row["category"]: row["n"] for row in rows}


def replica_health() -> dict[str, int]:
    """Counts of copies by state, and of chunks short of their copies (under-replicated) or with none."""
    from disks.placement import replicas_wanted
    from disks.services import chunks_needing_repair

    wanted = replicas_wanted()
    needing = chunks_needing_repair()
    return {
        "replicas_ok": Replica.objects.filter(state=Replica.State.OK).count(),
        "replicas_bad": Replica.objects.filter(state=Replica.State.BAD).count(),
        "replicas_on_failed_disks": Replica.objects.filter(disk__status=Disk.Status.FAILED).count(),
        "chunks_under_replicated": needing.filter(good__lt=wanted).count(),
        "chunks_without_good_copy": needing.filter(good=0).count(),
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
