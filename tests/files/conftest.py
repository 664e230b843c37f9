"""Files tests: two small local disks per category under tmp_path, and small chunks."""

from __future__ import annotations

import pytest

from tests.factories import local_disks


@pytest.fixture(autouse=True)
def disks(settings, db):
    settings.CLOUDSTORAGE_CHUNK_AVG = 64 * 1024
    settings.CLOUDSTORAGE_REPLICAS = 2
    return local_disks(settings)


@pytest.fixture
def root(owner_workspace):
    from files.models import Node

    return Node.objects.get(workspace=owner_workspace, parent__isnull=True)
