"""Celery tasks: thin, idempotent wrappers around the disk maintenance services (disks.health,
repair, scrub, gc, capacity, standby, services), safe to run concurrently. The top of the disks
layering: the lower disks modules that queue a task import this one inside the function."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from disks import capacity, gc, health, repair, scrub, services, standby
from disks.chunks import backup_pass_started, repair_pass_started
from disks.models import Disk


@shared_task
def disk_probe_all() -> dict[str, bool]:
    """Probe every disk that is not already failed."""
    return {disk.name: health.disk_probe(disk=disk) for disk in Disk.objects.exclude(status=Disk.Status.FAILED)}


@shared_task
def disk_probe(disk_id: str) -> bool | None:
    """Probe one disk now (queued when a write found it is not itself; runs on the probe queue)."""
    disk = Disk.objects.filter(pk=disk_id).first()
    return health.disk_probe(disk=disk) if disk else None


@shared_task
def replicas_repair() -> dict[str, int]:
    """Re-replicate under-replicated chunks, fewest copies first, throttled (beat: every minute)."""
    return repair.replicas_repair()


@shared_task
def repair_pass() -> dict[str, int]:
    """A repair run asked for by failed reads or a failed disk (coalesced: disks.chunks.repair_soon)."""
    repair_pass_started()
    return repair.replicas_repair()


@shared_task
def chunks_backup() -> dict[str, int]:
    """Copy chunks that have no copy on the backup tier there, oldest first, throttled (beat: every minute)."""
    return repair.chunks_backup()


@shared_task
def backup_pass() -> dict[str, int]:
    """The next backup-tier run at once, queued by one that found a full batch (coalesced)."""
    backup_pass_started()
    return repair.chunks_backup()


@shared_task
def standbys_activate() -> list[str]:
    """Activate a standby disk in every category past the capacity threshold (beat: every minute)."""
    return standby.standbys_activate()


@shared_task(autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def workspace_relocate(workspace_id: str) -> dict[str, int]:
    """Move a workspace's chunks to disks of its current category (queued by billing on a plan change)."""
    from accounts.models import Workspace

    workspace = Workspace.objects.filter(pk=workspace_id).first()
    if workspace is None:
        return {}
    return repair.workspace_relocate(workspace=workspace)


@shared_task
def workspaces_relocate_check() -> int:
    """Queue the relocation of every workspace with chunks left outside its category (beat)."""
    workspace_ids = repair.workspaces_off_category()
    for workspace_id in workspace_ids:
        workspace_relocate.delay(workspace_id=str(workspace_id))
    return len(workspace_ids)


@shared_task
def workspaces_remap() -> int:
    """Move every workspace placed on a disk out of service to healthy disks (beat: every minute)."""
    return services.workspaces_remap_all()


@shared_task
def disk_drain(disk_id: str) -> dict[str, int]:
    """Continue draining one disk (the operators' "drain" action), if it is still draining."""
    return repair.disk_drain_queued(disk_id=disk_id, limit=settings.CLOUDSTORAGE_REPAIR_BATCH)


@shared_task
def disks_drain() -> dict[str, dict[str, int]]:
    """A throttled slice of work on every draining disk (beat: every minute) until each is empty."""
    return repair.disks_drain()


@shared_task
def disk_scrub(disk_id: str) -> dict[str, int]:
    """Verify every copy on one disk now (the operators' "scrub" action)."""
    disk = Disk.objects.filter(pk=disk_id).first()
    return scrub.replicas_scrub(disk=disk) if disk else {}


@shared_task(autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def disk_sweep(disk_id: str) -> dict[str, int]:
    """Delete the objects on one disk that no copy references (queued when a failed disk comes back,
    and by the operators' "sweep" action)."""
    disk = Disk.objects.filter(pk=disk_id).first()
    return gc.disk_sweep(disk=disk) if disk else {}


@shared_task(autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def disk_reconcile(disk_id: str) -> dict[str, int]:
    """Record every verified copy of a known chunk on one disk that no row names, deleting nothing
    (queued when a disk the restored database did not know is attached again under its own id)."""
    disk = Disk.objects.filter(pk=disk_id).first()
    return gc.disk_sweep(disk=disk, grace_seconds=0, delete=False) if disk else {}


@shared_task
def replicas_scrub() -> dict[str, int]:
    """The scheduled scrub: a slice sized so every copy is verified once per CLOUDSTORAGE_SCRUB_PERIOD."""
    return scrub.replicas_scrub(limit=scrub.scrub_batch_size())


@shared_task
def chunks_gc() -> dict[str, int]:
    return gc.chunks_gc()


@shared_task
def capacity_alert() -> list[str]:
    return capacity.capacity_alert()


@shared_task(autoretry_for=(Exception,), retry_backoff=True, max_retries=3)
def metadata_backup() -> str:
    """Back the database up onto CLOUDSTORAGE_BACKUP_DISK (beat: every CLOUDSTORAGE_BACKUP_INTERVAL)."""
    from disks.metadata_backup import backup_create

    disk = Disk.objects.get(name=settings.CLOUDSTORAGE_BACKUP_DISK)
    return backup_create(disk=disk, keep=settings.CLOUDSTORAGE_BACKUP_KEEP)
