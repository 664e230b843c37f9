"""The file browser in a real browser: uploads by drag-and-drop, folder actions, trash, sharing,
public links, and the plan's quota; each test saves a screenshot (tests/e2e/conftest.py)."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from disks.services import disk_create_local
from tests.factories import PASSWORD, UserFactory, personal_workspace  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)
MB = 1024 * 1024


@pytest.fixture(autouse=True)
def disks(settings):
    settings.CLOUDSTORAGE_CHUNK_AVG = 64 * 1024
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
def js_errors(page):
    """Uncaught script errors of the page; a test ends by asserting there were none."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def login(page, live_server, user) -> None:
    """Log the browser in by handing it a session made by Django's test client (the sign-up and
    login forms have their own browser test)."""
    client = Client()
    assert client.login(email=user.email, password=PASSWORD)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )


def root_of(user):
    from files.models import Node

    return Node.objects.get(workspace=personal_workspace(user), parent__isnull=True)


def open_files(page, live_server, user):
    login(page, live_server, user)
    page.goto("/app/files/")
    page.locator("#listing[aria-busy='false']").wait_for()


def test_landing_page_shows_pricing_and_no_foreign_requests(page, js_errors):
    page.goto("/")
    page.get_by_role("heading", name="Simple pricing").wait_for()
    assert "per GB" in page.get_by_test_id("price-per-gb").inner_text()
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    assert page.get_by_role("link", name=re.compile("Start free")).is_visible()
    assert not js_errors
