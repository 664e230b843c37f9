"""Tasks through a real broker and a real worker process loop (Redis)."""

import pytest

from disks.models import Disk
from disks.services import disk_create_local
from disks.tasks import disk_probe_all
from tests.conftest import requires_redis

pytestmark = [pytest.mark.live_worker, requires_redis]


def test_probe_task_runs_on_a_live_worker(celery_worker_live, tmp_path):
    disk = disk_create_local(name="live", path=tmp_path / "live", category="A", capacity_bytes=10**9)
    Disk.objects.filter(pk=disk.pk).update(last_check_at=None)
    result = disk_probe_all.delay()
    assert result.get(timeout=30) == {"live": True}
    disk.refresh_from_db()
    assert disk.last_check_at is not None and disk.last_check_ok
