"""Files tests: two small local disks per category under tmp_path, and small chunks."""

from __future__ import annotations

import pytest

from disks.services import disk_create_local

MB = 1024 * 1024


@pytest.fixture(autouse=True)
def disks(settings, db):
    settings.CLOUDSTORAGE_CHUNK_AVG = 64 * 1024
    settings.CLOUDSTORAGE_REPLICAS = 2
    return [
        disk_create_local(
            name=f"{category}{n}",
            path=settings.CLOUDSTORAGE_DISKS_DIR / f"{category}{n}",
            category=category,
            capacity_bytes=512 * MB,
        )
        for category in "ABCDE"
        for n in (1, 2)
    ]


@pytest.fixture
def root(owner_workspace):
    from files.models import Node

    return Node.objects.get(workspace=owner_workspace, parent__isnull=True)
