"""Which disks a workspace's chunks go to, and reserving room on them."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.db.models import F

from cloudstorage.compiled import CompiledQuery
from disks.models import Disk, Placement

# Where copies may be read from, and where new copies may be written.
READABLE = (Disk.Status.ACTIVE, Disk.Status.READ_ONLY, Disk.Status.DRAINING)
WRITABLE = (Disk.Status.ACTIVE,)


def replicas_wanted() -> int:
    return max(1, int(settings.CLOUDSTORAGE_REPLICAS))


def _fullness(disk: Disk) -> float:
    return disk.used_bytes / disk.capacity_bytes


def _ranked(disks: list[Disk], category: str) -> list[Disk]:
    """Same category first, then any other; least full first within each."""
    return sorted(disks, key=lambda d: (d.category != category, _fullness(d), d.name))


# Every write asks these two: compiled once per process (cloudstorage/compiled.py).
_WRITABLE_PRIMARIES = CompiledQuery(lambda: Disk.objects.filter(status__in=WRITABLE, role=Disk.Role.PRIMARY))
_PLACEMENT = CompiledQuery(
    lambda *, workspace: (
        Placement.objects.filter(workspace=workspace).order_by("rank").values_list("disk_id", flat=True)
    ),
    workspace=Placement._meta.get_field("workspace"),
)


def writable_primaries() -> list[Disk]:
    """The disks a write may go to. Backup-tier disks are never placed on: they get their copies
    from chunks_backup only."""
    return _WRITABLE_PRIMARIES.all()


def _placement_for(workspace, current: list, active: list[Disk] | None = None) -> list[Disk]:
    category = workspace.category
    wanted = replicas_wanted()
    active = writable_primaries() if active is None else active
    by_id = {d.pk: d for d in active}
    keep = [by_id[d] for d in current if d in by_id]
    in_category = [d for d in active if d.category == category]
    # A primary off-category (after a plan change) is replaced when the category has a disk.
    if keep and keep[0].category != category and in_category:
        keep = [d for d in keep if d.category == category] + [d for d in keep if d.category != category]
        if keep[0].category != category:
            keep.insert(0, _ranked(in_category, category)[0])
    for disk in _ranked([d for d in active if d not in keep], category):
        if len(keep) >= wanted:
            break
        keep.append(disk)
    return keep[:wanted]


def _current(workspace) -> list:
    return _PLACEMENT.all(workspace=workspace)


def workspace_place(*, workspace, active: list[Disk] | None = None) -> list[Disk]:
    """The workspace's placement disks, in rank order, fixing the placement when a disk left service
    or the plan's category changed: the primary is the least-full active disk of its category, the
    backups preferably in the same category, else any active disk.

    Safe under concurrency: when the placement must change, it is recomputed and rewritten under a
    lock on the workspace row, so two first uploads into one workspace never both insert rank 0.
    ``active``: the caller's fresh read of :func:`writable_primaries`, if it has one."""
    from accounts.locks import workspace_lock

    current = _current(workspace)
    keep = _placement_for(workspace, current, active)
    if [d.pk for d in keep] == current:
        return keep
    with transaction.atomic():
        # Serialises placement changes of this workspace. Whoever comes second sees the first one's rows.
        workspace_lock(workspace.pk)
        current = _current(workspace)
        keep = _placement_for(workspace, current)
        if [d.pk for d in keep] != current:
            Placement.objects.filter(workspace=workspace).delete()
            Placement.objects.bulk_create(
                [Placement(workspace=workspace, disk=disk, rank=rank) for rank, disk in enumerate(keep)]
            )
    return keep


def write_candidates(
    *, workspace, size: int, exclude: set, placement: list[Disk] | None = None, active: list[Disk] | None = None
) -> list[Disk]:
    """Active disks with room for ``size`` bytes, best first: the placement, then the category, then
    any. ``active``: the caller's fresh read of :func:`writable_primaries`, if it has one."""
    if active is None:
        active = writable_primaries()
    if placement is None:
        placement = workspace_place(workspace=workspace, active=active)
    placed = [d.pk for d in placement]
    active = [d for d in active if d.pk not in exclude and d.free_bytes >= size]
    first = sorted((d for d in active if d.pk in placed), key=lambda d: placed.index(d.pk))
    rest = _ranked([d for d in active if d.pk not in placed], workspace.category)
    return first + rest


def backup_targets(*, size: int = 0) -> list[Disk]:
    """Active backup-tier disks with room for ``size`` bytes, least full first (where a chunk's
    backup copy goes)."""
    disks = Disk.objects.filter(status__in=WRITABLE, role=Disk.Role.BACKUP)
    return sorted((d for d in disks if d.free_bytes >= size), key=lambda d: (_fullness(d), d.name))


def disk_reserve(*, disk: Disk, size: int) -> bool:
    """Count ``size`` bytes as used on the disk if it has room; one conditional UPDATE, so two writers
    can never overfill a disk between them."""
    return bool(
        Disk.objects.filter(pk=disk.pk, status__in=WRITABLE, used_bytes__lte=F("capacity_bytes") - size).update(
            used_bytes=F("used_bytes") + size
        )
    )


def disk_unreserve(*, disk_id, size: int) -> None:
    Disk.objects.filter(pk=disk_id, used_bytes__gte=size).update(used_bytes=F("used_bytes") - size)
