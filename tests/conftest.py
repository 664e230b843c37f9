"""The base every test folder shares: three people (an owner, a teammate and an outsider)."""

from __future__ import annotations

import os

import pytest
from rest_framework.test import APIClient

from accounts.services import token_create
from tests.factories import UserFactory, personal_workspace, team_workspace


def _serve_one_request_at_a_time():
    """On SQLite the test database lives in memory in shared-cache mode: each of the live server's
    request threads opens its own connection to it, and shared-cache connections lock whole tables
    and fail at once ("database table is locked", no busy wait) when another connection holds
    one. A browser sends requests in parallel, and a dashboard test failed now and then in CI (a
    renamed row never showed). On SQLite the live server answers one request at a time, closing each
    connection (Django's non-threaded server says ``Connection: close``); on PostgreSQL it keeps a
    thread per connection, as before."""
    from django.core.servers.basehttp import WSGIServer
    from django.db import connections
    from django.test.testcases import LiveServerThread, QuietWSGIRequestHandler

    threaded = LiveServerThread._create_server

    def create_server(self, connections_override=None):
        if connections["default"].vendor != "sqlite":
            return threaded(self, connections_override=connections_override)
        return WSGIServer((self.host, self.port), QuietWSGIRequestHandler, allow_reuse_address=False)

    LiveServerThread._create_server = create_server


_serve_one_request_at_a_time()


@pytest.fixture(autouse=True)
def _isolated_var(settings, tmp_path):
    """Mail, disks and the cache of one test never leak into another or into var/."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.CLOUDSTORAGE_DISKS_DIR = tmp_path / "disks"
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": str(tmp_path)}
    }
    settings.CELERY_TASK_ALWAYS_EAGER = True
    # The real hasher costs ~0.3 s a password; what it protects is not under test here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
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


requires_redis = pytest.mark.skipif(
    not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (enabled in .ci/run's PostgreSQL + Redis pass)"
)


@pytest.fixture
def celery_worker_live(settings, transactional_db):
    """A real Celery worker thread consuming from the configured broker (Redis in CI's second pass)."""
    from celery.contrib.testing.worker import start_worker

    from cloudstorage.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.task_always_eager = False
    # Both queues, as the Procfile's worker serves them (probes are routed to their own queue).
    with start_worker(
        app, pool="solo", perform_ping_check=False, shutdown_timeout=10, loglevel="WARNING", queues=["celery", "probes"]
    ) as worker:
        yield worker
    app.conf.task_always_eager = True
