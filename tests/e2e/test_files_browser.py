"""The file browser in a real browser: uploads by drag-and-drop, folder actions, trash, sharing,
public links, and the plan's quota; each test saves a screenshot (tests/e2e/conftest.py)."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import urlparse

import pytest
from django.test import Client

from disks.services import disk_create_local
from tests.e2e.conftest import ARTIFACTS
from tests.factories import PASSWORD, UserFactory, personal_workspace

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


@pytest.fixture
def second_page(chromium, live_server, request):
    """A second person's browser (own context, own cookies), held to the same no-foreign-host rule."""
    context = chromium.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    other = context.new_page()
    other.set_default_timeout(15_000)
    own_host = urlparse(live_server.url).netloc
    foreign: list[str] = []
    other.on(
        "request",
        lambda req: foreign.append(req.url)
        if req.url.startswith(("http://", "https://")) and urlparse(req.url).netloc != own_host
        else None,
    )
    yield other
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^\w.-]+", "_", request.node.name)
    other.screenshot(path=str(ARTIFACTS / f"{name}-second.png"), full_page=True)
    context.close()
    assert not foreign, f"the page reached other hosts: {foreign}"


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


def drop_paths(page, paths) -> None:
    """A real drag-and-drop of files and folders from disk onto the drop zone (Chromium's own drag
    pipeline through DevTools, so the page gets FileSystemEntry objects for folders as with an OS drag)."""
    box = page.locator("#dropzone").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + min(box["height"] / 2, 100)
    cdp = page.context.new_cdp_session(page)
    data = {"items": [], "files": [str(p) for p in paths], "dragOperationsMask": 1}
    for kind in ("dragEnter", "dragOver", "drop"):
        cdp.send("Input.dispatchDragEvent", {"type": kind, "x": x, "y": y, "data": data})
    cdp.detach()


def node_at(user, path: str):
    """The live node at '/a/b' in the user's personal workspace, or None."""
    from files.models import Node

    node = root_of(user)
    for name in [p for p in path.split("/") if p]:
        node = Node.objects.filter(parent=node, name=name, trashed_in__isnull=True).first()
        if node is None:
            return None
    return node


def row(page, name):
    return page.locator(f"#listing [data-name='{name}']")


def select(page, name):
    page.get_by_role("checkbox", name=f"Select {name}", exact=True).check()


def test_drop_folder_tree_uploads_with_progress_to_100(page, live_server, js_errors, tmp_path):
    tree = tmp_path / "drop" / "Photos"
    (tree / "2026" / "June").mkdir(parents=True)
    (tree / "Empty").mkdir()
    (tree / "cover.txt").write_text("cover")
    (tree / "2026" / "list.txt").write_text("list " * 100)
    (tree / "2026" / "June" / "beach.bin").write_bytes(bytes(range(256)) * 400)
    notes = tmp_path / "drop" / "notes.txt"
    notes.write_text("top level")
    user = UserFactory(email="dropper@example.com")
    open_files(page, live_server, user)

    drop_paths(page, [tree, notes])
    page.get_by_test_id("upload-total").filter(has_text=re.compile(r"^100%$")).wait_for()
    items = page.locator("#upload-list .upload-item")
    assert items.count() == 4
    for i in range(4):
        assert items.nth(i).locator(".pct").inner_text() == "100%"
    row(page, "Photos").wait_for()
    row(page, "notes.txt").wait_for()

    assert node_at(user, "/Photos/2026/June/beach.bin").size == 256 * 400
    assert node_at(user, "/Photos/2026/list.txt").size == 500
    assert node_at(user, "/Photos/Empty").kind == "folder"
    assert node_at(user, "/notes.txt").size == len("top level")

    page.locator("#listing").get_by_role("link", name="Photos").click()
    row(page, "2026").wait_for()
    assert row(page, "cover.txt").is_visible() and row(page, "Empty").is_visible()
    assert page.get_by_role("navigation", name="Breadcrumb").inner_text().split()[-1] == "Photos"
    assert not js_errors


def test_big_file_goes_through_tus_and_resumes_after_a_dropped_chunk(page, live_server, js_errors, settings, tmp_path):
    settings.DASHBOARD_TUS_THRESHOLD = 100 * 1024
    settings.DASHBOARD_TUS_CHUNK = 64 * 1024
    payload = hashlib.sha256(b"seed").digest() * (300 * 1024 // 32)
    big = tmp_path / "big.bin"
    big.write_bytes(payload)
    user = UserFactory(email="tus@example.com")
    open_files(page, live_server, user)

    patches = {"n": 0}

    def cut_second_chunk(route):
        if route.request.method == "PATCH":
            patches["n"] += 1
            if patches["n"] == 2:
                return route.abort("connectionreset")
        return route.continue_()

    page.route(re.compile(r".*/api/v1/uploads/.*"), cut_second_chunk)
    page.locator("#pick-files").set_input_files(str(big))
    page.get_by_test_id("upload-total").filter(has_text=re.compile(r"^100%$")).wait_for(timeout=30_000)
    node = node_at(user, "/big.bin")
    assert node.size == len(payload)
    assert node.sha256 == hashlib.sha256(payload).hexdigest()
    assert patches["n"] >= 6  # 5 chunks of 64 KiB, one of them sent twice
    assert not js_errors
