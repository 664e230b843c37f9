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


def test_change_plan_in_local_billing_mode_changes_the_quota(page, live_server, js_errors, settings):
    settings.STRIPE_SECRET_KEY = ""
    user = UserFactory(email="planner@example.com")
    workspace = personal_workspace(user)
    login(page, live_server, user)
    page.goto(f"/app/w/{workspace.pk}/usage/")
    assert re.search(r"\b1(\.0)?\sGB", page.get_by_test_id("quota-total").inner_text())

    page.get_by_role("link", name=re.compile("Plan")).first.click()
    page.locator("[data-billing-mode='local']").wait_for()
    page.get_by_label(re.compile("Size")).fill("25")
    assert page.locator("#category-out").inner_text() == "C"
    assert "5.00" in page.locator("#price-out").inner_text()  # 25 GB at the default 0.20 per GB
    page.get_by_role("button", name="Buy").click()
    page.get_by_text("The plan is now 25 GB").wait_for()

    page.get_by_role("link", name=re.compile("Usage")).click()
    page.get_by_test_id("quota-total").wait_for()
    assert re.search(r"\b25(\.0)?\sGB", page.get_by_test_id("quota-total").inner_text())
    workspace.refresh_from_db()
    assert workspace.plan_gb == 25 and workspace.category == "C"
    assert not js_errors
