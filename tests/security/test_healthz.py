"""Finding E: ``/healthz`` was public and did real work.

Every anonymous call wrote, fsynced, read and deleted a probe object on every disk, and the answer
named the database vendor, the broker, the disks and raw error text. Now ``/healthz`` is liveness
(no database, no disk, nothing named) and the detailed check is ``/healthz/detail``, for staff
sessions or a monitor holding ``HEALTHZ_TOKEN``; everyone else gets a 404.
"""

from __future__ import annotations

import re
import shutil

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.factories import UserFactory

INTERNAL_WORDS = ("sqlite", "postgres", "filesystem", "redis", "broker", "vendor", "checks", "A1", "B2")


def _probe_traces(settings) -> list:
    """Every file under the disks' folders: a probe leaves at least a changed folder behind."""
    return sorted((path, path.stat().st_mtime_ns) for path in settings.CLOUDSTORAGE_DISKS_DIR.rglob("*"))


def test_liveness_does_no_work_and_names_nothing(settings, disks):
    before = _probe_traces(settings)

    with CaptureQueriesContext(connection) as queries:
        response = Client().get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert len(queries) == 0
    assert _probe_traces(settings) == before


def test_liveness_stays_up_when_a_disk_is_gone(settings, disks):
    """It does not probe disks, so a broken disk is the operators' business, not the load balancer's."""
    shutil.rmtree(settings.CLOUDSTORAGE_DISKS_DIR / disks[0].name)

    response = Client().get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize("who", ["anonymous", "user"])
def test_detailed_check_is_404_for_non_operators(settings, disks, who):
    client = Client()
    if who == "user":
        client.force_login(UserFactory(email="user@example.com"))
    before = _probe_traces(settings)

    response = client.get("/healthz/detail")
    asked = client.get("/healthz", {"detail": "1", "verbose": "1"})

    assert response.status_code == 404
    assert asked.json() == {"status": "ok"}
    # The 404 page carries random CSRF tokens (the meta tag, the log-out form), which may spell a
    # disk's name by chance.
    text = re.sub(
        r'name="csrf-token" content="[^"]*"|name="csrfmiddlewaretoken" value="[^"]*"',
        "",
        (response.content + asked.content).decode(),
    )
    for word in INTERNAL_WORDS:
        assert word not in text
    assert _probe_traces(settings) == before


def test_a_wrong_token_is_404(settings, disks):
    settings.HEALTHZ_TOKEN = "s3cret-monitor-token"

    response = Client().get("/healthz/detail", HTTP_AUTHORIZATION="Bearer guessed")

    assert response.status_code == 404


def test_staff_session_gets_the_detailed_check(disks):
    client = Client()
    client.force_login(UserFactory(email="operator@example.com", is_staff=True))

    response = client.get("/healthz/detail")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "broker", "disks"}
    assert set(body["checks"]["disks"]["disks"]) == {disk.name for disk in disks}


def test_monitor_with_the_token_gets_the_detailed_check(settings, disks):
    settings.HEALTHZ_TOKEN = "s3cret-monitor-token"

    response = Client().get("/healthz/detail", HTTP_AUTHORIZATION="Bearer s3cret-monitor-token")

    assert response.status_code == 200, response.content
    assert response.json()["checks"]["database"]["ok"]
