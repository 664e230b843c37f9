"""Writes for the disks themselves: checking that a disk is usable, attaching it, and changing its
status (remapping the workspaces placed on it). The lowest of the maintenance modules: disks.health,
disks.repair (and above it disks.scrub and disks.gc) build on it and it imports none of them; it
queues a disk's sweep through disks.tasks, imported inside the function (tasks sit above it)."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from django.db import IntegrityError, transaction
from django.utils import timezone

from disks.backends import MARKER, NO_SPACE, BackendError, DiskFullError, backend_for
from disks.chunks import repair_soon
from disks.identity import disk_mark
from disks.models import Disk
from disks.placement import workspace_place

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
        if exc.errno in NO_SPACE:
            # The same error as a backend's write that found no room (disk_examine asks for one).
            raise DiskFullError(str(exc)) from exc
        raise DiskProbeError(str(exc)) from exc
    finally:
        path.unlink(missing_ok=True)


def disk_check(*, disk: Disk) -> str | None:
    """Write, fsync, read back and delete a probe object; the error text, or None when healthy (a
    full disk is not: it cannot take data)."""
    return disk_examine(disk=disk)[0]


def disk_examine(*, disk: Disk) -> tuple[str | None, bool]:
    """disk_check's error text (or None), and whether that error is only that the disk is full."""
    try:
        if disk.backend == Disk.Backend.LOCAL:
            _probe_local(disk)
        else:
            backend_for(disk).probe()
    except Exception as exc:  # noqa: BLE001 - any failure of the disk is the answer we want
        return str(exc) or exc.__class__.__name__, isinstance(exc, DiskFullError)
    return None, False


def disk_create_local(
    *,
    name: str,
    path: Path | str,
    category: str,
    capacity_bytes: int,
    status: str = Disk.Status.ACTIVE,
    role: str = Disk.Role.PRIMARY,
    returning: bool = False,
) -> Disk:
    """Attach a local folder as a disk (or register it as a standby) after checking it is writable;
    ``returning`` as for disk_attach."""
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
    return disk_attach(disk=disk, returning=returning)


def disk_attach(*, disk: Disk, returning: bool = False) -> Disk:
    """Save a new disk only after a probe proved it reachable and writable and its identity marker
    is written (DiskProbeError otherwise). A place holding the marker of a disk the database does
    not know is refused, unless ``returning`` (the operator's word that it is one of ours, attached
    after the backup the database was restored from): it is then attached as that disk (see
    disks.identity.disk_mark) and its copies are recorded."""
    error = disk_check(disk=disk)
    adopted = False
    if not error:
        try:
            adopted = disk_mark(disk=disk, returning=returning)
        except BackendError as exc:
            error = str(exc)
    if error:
        raise DiskProbeError(f"disk {disk.name} is not usable: {error}")
    disk.last_check_at = timezone.now()
    disk.last_check_ok = True
    disk.probe_history = "1"
    try:
        with transaction.atomic():
            disk.save()
    except IntegrityError:
        # Refused (a name already taken): a marker left behind would name a disk no database
        # knows, and the next attach of this place would be refused as one (disks.identity). Only
        # on a refusal: after another error (a connection lost at the commit) the row may have been
        # saved, and its disk needs its marker.
        if not adopted:
            _marker_remove(disk)
        raise
    if adopted:
        disk_returned(disk=disk)
    return disk


def _marker_remove(disk: Disk) -> None:
    try:
        backend_for(disk).delete(MARKER)
    except BackendError:
        logger.exception("could not remove the marker of disk %s, which was not attached", disk.name)


def disk_returned(*, disk: Disk) -> None:
    """Record the copies on a disk attached again under its own id, once the attach commits."""
    from disks import tasks

    transaction.on_commit(lambda disk_id=str(disk.pk): tasks.disk_reconcile.delay(disk_id=disk_id))


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
