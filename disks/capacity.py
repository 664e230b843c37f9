"""Capacity alerts: e-mail the operators about each category whose in-service disks fill past the
threshold, at most once per repeat period while it stays above. Sits above disks.health
(operators_notify) and disks.selectors."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from disks.health import operators_notify
from disks.models import CapacityAlert
from disks.selectors import capacity_by_category, standby_counts


def capacity_alert(*, threshold: float | None = None) -> list[str]:
    """E-mail operators about each category whose in-service disks are fuller than the threshold
    (CLOUDSTORAGE_CAPACITY_ALERT_PERCENT). Not re-sent on every run: at most once per
    CLOUDSTORAGE_CAPACITY_ALERT_REPEAT seconds per category while it stays above; a category that
    went back below is alerted again as soon as it crosses the threshold anew."""
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
