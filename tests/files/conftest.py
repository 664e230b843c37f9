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


@pytest.fixture
def friend(db):
    """A user of another workspace to share things with."""
    from tests.factories import UserFactory

    return UserFactory(email="friend@example.com")


@pytest.fixture
def friend_api(friend):
    from tests.files.sharing_helpers import client_for

    return client_for(friend)
