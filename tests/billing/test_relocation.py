"""A plan change that changes the category really moves the workspace's chunks (real disks task)."""

from __future__ import annotations

import random

from disks.models import Replica
from disks.services import disk_create_local
from disks.store import manifest_open, manifest_write


def _disks(settings, category: str, count: int = 2):
    return [
        disk_create_local(
            name=f"{category.lower()}{n}",
            path=settings.CLOUDSTORAGE_DISKS_DIR / f"{category.lower()}{n}",
            category=category,
            capacity_bytes=16 * 1024 * 1024,
        )
        for n in range(count)
    ]


def test_buying_30_gb_moves_stored_chunks_from_category_a_to_c_disks(
    api, owner_workspace, local_mode, settings, django_capture_on_commit_callbacks, relocations
):
    settings.CLOUDSTORAGE_CHUNK_AVG = 1024
    settings.CLOUDSTORAGE_REPLICAS = 2
    settings.CLOUDSTORAGE_REPAIR_BYTES_PER_SECOND = 0
    _disks(settings, "A")
    c_disks = _disks(settings, "C")
    data = random.Random(7).randbytes(20_000)
    manifest = manifest_write(workspace=owner_workspace, stream=[data])
    assert set(Replica.objects.filter(chunk__workspace=owner_workspace).values_list("disk__category", flat=True)) == {
        "A"
    }

    with django_capture_on_commit_callbacks(execute=True):
        response = api.put(f"/api/v1/workspaces/{owner_workspace.pk}/plan/", {"gb": 30}, format="json")

    assert response.json()["category"] == "C"
    assert relocations == [{"workspace_id": str(owner_workspace.pk)}]
    disks_now = set(Replica.objects.filter(chunk__workspace=owner_workspace).values_list("disk_id", flat=True))
    assert disks_now <= {d.pk for d in c_disks}
    assert b"".join(manifest_open(manifest=manifest)) == data
