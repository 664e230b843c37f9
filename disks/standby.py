"""Standby disks: registered per category by operators, probed like any disk, holding no data until
their category fills past CLOUDSTORAGE_CAPACITY_ALERT_PERCENT; then the beat job activates one at
once (placements of new workspaces go to the least-full active disk, so to it) and tells the
operators what was attached and how many standbys are left."""

from __future__ import annotations

import logging

from django.conf import settings

from disks.health import operators_notify
from disks.identity import disk_identity_check
from disks.models import Disk
from disks.selectors import capacity_by_category, standby_counts
from disks.services import disk_check

logger = logging.getLogger(__name__)


def _ready_standby(category: str) -> Disk | None:
    """The largest standby of the category that passes a probe and its identity check now."""
    standbys = Disk.objects.filter(category=category, status=Disk.Status.STANDBY, role=Disk.Role.PRIMARY)
    for disk in standbys.order_by("-capacity_bytes", "name"):
        error = disk_identity_check(disk=disk) or disk_check(disk=disk)
        if error is None:
            return disk
        logger.warning("standby disk %s is not usable: %s", disk.name, error)
    return None


def standbys_activate(*, threshold: float | None = None) -> list[str]:
    """Activate one usable standby disk in every category whose in-service disks are fuller than the
    threshold (or that has none in service); the names of the disks activated."""
    threshold = threshold if threshold is not None else settings.CLOUDSTORAGE_CAPACITY_ALERT_PERCENT
    waiting = standby_counts()
    activated = []
    for row in capacity_by_category():
        category = row["category"]
        if not waiting.get(category) or (row["capacity_bytes"] and row["percent"] < threshold):
            continue
        disk = _ready_standby(category)
        # Conditional, so two runs at once never both activate (and announce) the same disk.
        if disk is None or not Disk.objects.filter(pk=disk.pk, status=Disk.Status.STANDBY).update(
            status=Disk.Status.ACTIVE
        ):
            continue
        left = Disk.objects.filter(category=category, status=Disk.Status.STANDBY).count()
        logger.warning("standby disk %s activated: category %s is %.0f%% full", disk.name, category, row["percent"])
        operators_notify(
            subject=f"Standby disk {disk.name} activated in category {category}",
            message=(
                f"Category {category} was {row['percent']:.1f}% full (threshold {threshold}%), so the standby "
                f"disk {disk.name} ({disk.capacity_bytes} bytes) is now active and takes new placements.\n"
                + (
                    f"{left} standby disk(s) of category {category} are left.\n"
                    if left
                    else f"No standby disk of category {category} is left: register another in the admin.\n"
                )
            ),
        )
        activated.append(disk.name)
    return activated
