"""Security regression tests: each reproduces a finding of the attack on the service (issue 13)."""

from __future__ import annotations

import pytest

from tests.factories import local_disks


@pytest.fixture(autouse=True)
def disks(settings, db):
    settings.CLOUDSTORAGE_CHUNK_AVG = 64 * 1024
    settings.CLOUDSTORAGE_REPLICAS = 2
    return local_disks(settings)
