"""Disk health: the recorded, damped probe of every disk (a flapping disk is failed like a dead
one), failing a disk that stops answering, and the e-mail to the operators. Sits above
disks.services (it checks a disk with disk_examine and fails it, or makes a full one read-only,
through disk_set_status);
disks.capacity and disks.standby use operators_notify from here."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from disks.identity import disk_identity_check
from disks.models import Disk
from disks.services import disk_examine, disk_set_status

logger = logging.getLogger(__name__)

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
    once. A failed disk is not brought back by a good probe; an operator decides that in the admin.

    A disk whose probe could not write for lack of space (ENOSPC: the filesystem also holds what the
    store does not count) answered: that is no failure, and its copies are intact and must stay
    readable. An active one is made read-only (no new copies; still read, and repaired from) and
    operators are e-mailed; an operator marks it active again once it has room."""
    identity_error = disk_identity_check(disk=disk)
    if identity_error:
        error, full = identity_error, False
    else:
        error, full = disk_examine(disk=disk)
    now = timezone.now()
    newly_failed = newly_full = False
    with transaction.atomic():
        disk = Disk.objects.select_for_update().get(pk=disk.pk)
        disk.last_check_at = now
        disk.last_check_ok = error is None
        disk.last_check_error = f"full: {error}" if full else error or ""
        disk.probe_history = (disk.probe_history + ("1" if error is None or full else "0"))[-PROBE_HISTORY:]
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
        newly_full = full and disk.status == Disk.Status.ACTIVE
        newly_failed = (
            error is not None
            and not full
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
    if newly_full:
        logger.error("disk %s is full (%s): marked read-only", disk.name, error)
        disk_set_status(disk=disk, status=Disk.Status.READ_ONLY)
        operators_notify(
            subject=f"Disk {disk.name} is full",
            message=(
                f"Disk {disk.name} (category {disk.category}) has no space left for writes, although its "
                f"recorded use is {disk.used_bytes} of {disk.capacity_bytes} bytes (something else fills its "
                f"filesystem, or its capacity is set too high).\nLast error: {error}\n"
                "It was marked read-only: its copies are still read and repaired from, new copies go to other "
                "disks. Free space on it or lower its capacity, then mark it active in the admin.\n"
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
