from celery import shared_task

from disks.models import Disk
from disks.services import disk_probe


@shared_task
def disk_probe_all() -> dict[str, bool]:
    """Probe every disk that is not already failed."""
    return {disk.name: disk_probe(disk=disk) for disk in Disk.objects.exclude(status=Disk.Status.FAILED)}
