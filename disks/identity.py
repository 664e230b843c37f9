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

A place attached as a new disk that holds the marker of a disk the database does not know is
refused unless the operator says it is one of ours returning (``returning``: the admin's "returning
after a database restore" box, ``disk_attach_s3 --returning``): a disk attached after the backup the
database was restored from. Only then does it keep its id and are its copies recorded (disk_mark).
Adopting such a marker silently would also adopt a disk of another installation (another
deployment, a test instance, a disk being recycled): its objects belong to nobody here, and once
attached they would be counted, or deleted by the sweeps as unreferenced.

Beside the marker, attaching writes the id of the installation (``.cloudstorage-disk.installation``,
disks.crypto.installation_id: derived from the master key, which outlives a database restore and
which another installation does not have). A marker whose installation id is none of this one's
(current or previous master keys) is refused even as returning; one written before installation ids
existed has none, and then the operator's word alone decides. A test instance restored from this
installation's backup shares its master key, and so its id: that is what the word is for.
"""

from __future__ import annotations

import logging
import uuid

from django.utils import timezone

from disks.backends import INSTALLATION_MARKER, MARKER, BackendError, DiskIdentityError, backend_for
from disks.crypto import installation_ids
from disks.models import Disk, Replica

logger = logging.getLogger(__name__)

# Recorded copies looked for on a disk without a marker before one is written (newest first).
LEGACY_SAMPLE = 16


def _unknown_id(disk: Disk, found: str | None) -> uuid.UUID | None:
    """The id in a new disk's place's marker when it names a disk this database does not know."""
    if found is None or found == str(disk.pk) or not disk._state.adding:
        return None
    try:
        disk_id = uuid.UUID(found)
    except ValueError:
        return None
    return None if Disk.objects.filter(pk=disk_id).exists() else disk_id


def disk_marker_conflict(*, disk: Disk, returning: bool = False) -> str | None:
    """Why a new disk cannot be attached at this place: it holds the marker of another disk this
    database knows, of a disk of another installation, or (unless ``returning``) of a disk this
    database does not know; see disk_mark."""
    backend = backend_for(disk)
    try:
        found = backend.marker_read()
        if found is None or found == str(disk.pk):
            return None
        if _unknown_id(disk, found) is None:
            return (
                f"it already holds the {MARKER} marker of disk {found}; if that disk is gone for good, "
                f"remove the marker file first"
            )
        installation = backend.installation_read()
    except BackendError as exc:
        return str(exc)
    ours = installation_ids()
    if installation is not None and installation not in ours:
        return (
            f"it holds the {MARKER} marker of disk {found}, written by another installation ({INSTALLATION_MARKER} "
            f"names installation {installation}; this one is {ours[0]}), so it is not attached, not even as "
            "returning: its objects are nobody's here. If it is this installation's and its marker was written "
            "under a master key no longer configured, add that key to CLOUDSTORAGE_PREVIOUS_MASTER_KEYS; to "
            "reuse the disk, empty it and remove both marker files first"
        )
    if not returning:
        written = (
            "written under this installation's master key"
            if installation is not None
            else "written before markers named their installation"
        )
        return (
            f"it holds the {MARKER} marker of disk {found} ({written}), which this database does not know. If it "
            "is one of this installation's disks, attached after the backup the database was restored from, "
            "attach it again as returning after a database restore (the admin's checkbox, or "
            "disk_attach_s3 --returning) and its copies are recorded. If it is another installation's "
            "disk, do not attach it here: its objects would be deleted as nobody's; to reuse it, empty it "
            "and remove the marker file first"
        )
    return None


def disk_mark(*, disk: Disk, returning: bool = False) -> bool:
    """Write the disk's identity marker, and this installation's id beside it, and note when (saved
    at once when the disk is).

    A new disk whose place holds the marker of a disk this database does not know is refused
    (DiskIdentityError, disk_marker_conflict's words) unless ``returning``: the operator's word that
    it is that disk coming back, attached after the backup the database was restored from. It
    then takes that disk's id, and True is returned: the caller has its copies recorded
    (disks.gc.disk_sweep without deleting), which a restore's reconciliation could not do for a
    disk it did not know. Re-attached as a new disk instead, its objects would look like nobody's.
    Never by default: a marker unknown here is just as likely another installation's disk, whose
    objects are nobody's here; and never for a marker another installation wrote."""
    try:
        found = backend_for(disk).marker_read()
    except BackendError as exc:
        raise DiskIdentityError(str(exc)) from exc
    conflict = disk_marker_conflict(disk=disk, returning=returning)
    if conflict:
        raise DiskIdentityError(conflict)
    adopted = _unknown_id(disk, found)
    if adopted is not None:
        logger.warning("disk %s carries the marker of disk %s, unknown here: re-attached as that disk", disk, adopted)
        disk.id = adopted
    backend = backend_for(disk)
    # The installation first: a marker is never without it once written by this version.
    backend.installation_write(installation_ids()[0])
    backend.marker_write(disk.pk)
    disk.marked_at = timezone.now()
    if not disk._state.adding:
        Disk.objects.filter(pk=disk.pk).update(marked_at=disk.marked_at)
    return adopted is not None


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
