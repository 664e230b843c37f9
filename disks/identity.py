"""Which disk is really there: the identity marker (``.cloudstorage-disk``, holding the disk's id)
written when a disk is attached and checked by every probe and, through disks/backends.py, by
every write to a local disk.

A mount point whose disk is unmounted is an empty folder on the root filesystem; without the marker
a disk there would pass its probes and take writes that vanish when the real disk comes back. A
missing or foreign marker fails the disk at once (disks.health.disk_probe), undamped: it is not
a flaky disk but the wrong place.

Disks attached before markers existed (``marked_at`` null) get one on their first probe, but only
when the copies recorded on them are really there: an empty mount point or a recreated folder holds
none of them, gets no marker, and is failed like any disk without its marker.
"""

from __future__ import annotations

from django.utils import timezone

from disks.backends import MARKER, BackendError, DiskIdentityError, backend_for
from disks.models import Disk, Replica

# Recorded copies looked for on a disk without a marker before one is written (newest first).
LEGACY_SAMPLE = 16


def disk_marker_conflict(*, disk: Disk) -> str | None:
    """Why a new disk cannot be attached at this place: it holds another disk's marker."""
    try:
        found = backend_for(disk).marker_read()
    except BackendError as exc:
        return str(exc)
    if found is not None and found != str(disk.pk):
        return (
            f"it already holds the {MARKER} marker of disk {found}; if that disk is gone for good, "
            f"remove the marker file first"
        )
    return None


def disk_mark(*, disk: Disk) -> None:
    """Write the disk's identity marker and note when (saved at once when the disk is)."""
    conflict = disk_marker_conflict(disk=disk)
    if conflict:
        raise DiskIdentityError(conflict)
    backend_for(disk).marker_write(disk.pk)
    disk.marked_at = timezone.now()
    if not disk._state.adding:
        Disk.objects.filter(pk=disk.pk).update(marked_at=disk.marked_at)


def disk_identity_check(*, disk: Disk) -> str | None:
    """Why the disk is not the one recorded (missing or foreign marker), or None. An unreachable
    disk is None here: that is the ordinary, damped probe's to judge."""
    try:
        if disk.marked_at is None:
            _legacy_mark(disk)
        else:
            backend_for(disk).identity_check(disk.pk)
    except DiskIdentityError as exc:
        return str(exc)
    except BackendError:
        return None
    return None


def _legacy_mark(disk: Disk) -> None:
    backend = backend_for(disk)
    found = backend.marker_read()
    if found is not None and found != str(disk.pk):
        raise DiskIdentityError(f"{MARKER} names disk {found}: another disk is mounted in its place")
    keys = [
        replica.chunk.key
        for replica in Replica.objects.filter(disk=disk, state=Replica.State.OK)
        .select_related("chunk")
        .order_by("-pk")[:LEGACY_SAMPLE]
    ]
    # All of them missing: not this disk. Some missing is bit rot or a lost file, scrub's business.
    if keys and all(backend.modified_at(key) is None for key in keys):
        raise DiskIdentityError(
            f"no {MARKER} marker and none of {len(keys)} copies recorded on it are there: "
            "the disk is not mounted, or this is another folder"
        )
    disk_mark(disk=disk)
