"""Writes for disks: attaching, health probes, status changes."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from disks.models import Disk

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
    error = disk_check(disk=disk)
    if error:
        raise DiskProbeError(f"{path} is not usable: {error}")
    disk.last_check_at = timezone.now()
    disk.last_check_ok = True
    disk.save()
    return disk
