"""The base every test folder shares: three people (an owner, a teammate and an outsider)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.services import token_create
from tests.factories import UserFactory, personal_workspace, team_workspace


@pytest.fixture(autouse=True)
def _isolated_var(settings, tmp_path):
    """Mail, disks and the cache of one test never leak into another or into var/."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.CLOUDSTORAGE_DISKS_DIR = tmp_path / "disks"
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": str(tmp_path)}
    }
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from cloudstorage.celery import app

    app.conf.task_always_eager = True
    yield


@pytest.fixture
def owner(db):
    return UserFactory(email="owner@example.com")


@pytest.fixture
def teammate(db):
    return UserFactory(email="teammate@example.com")


@pytest.fixture
def outsider(db):
    return UserFactory(email="outsider@example.com")


@pytest.fixture
def team(owner, teammate):
    return team_workspace(owner, "Acme", members={teammate: "member"})


@pytest.fixture
def owner_workspace(owner):
    return personal_workspace(owner)


def _client_for(user) -> APIClient:
    client = APIClient()
    issued = token_create(user=user, name="test")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.raw}")
    return client


@pytest.fixture
def api(owner) -> APIClient:
    """An API client authenticated as the owner with a personal access token."""
    return _client_for(owner)


@pytest.fixture
def teammate_api(teammate) -> APIClient:
    return _client_for(teammate)


@pytest.fixture
def outsider_api(outsider) -> APIClient:
    return _client_for(outsider)


@pytest.fixture
def anon_api() -> APIClient:
    return APIClient()
