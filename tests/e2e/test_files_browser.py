"""The file browser in a real browser: uploads by drag-and-drop, folder actions, trash, sharing,
public links, and the plan's quota; each test saves a screenshot (tests/e2e/conftest.py)."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import urlparse

import pytest
from django.test import Client
from playwright.sync_api import expect

from tests.e2e.conftest import ARTIFACTS, wait_until
from tests.factories import PASSWORD, UserFactory, local_disks, personal_workspace

pytestmark = pytest.mark.django_db(transaction=True)


def _route_missing(path: str) -> bool:
    from django.urls import Resolver404, resolve

    try:
        resolve(path)
    except Resolver404:
        return True
    return False


# The browser page lists folders through the files REST API; until it is on main those tests are
# expected to fail (and pass again by themselves once it lands).
needs_nodes_api = pytest.mark.xfail(
    _route_missing("/api/v1/nodes/00000000-0000-0000-0000-000000000000/children/"),
    reason="the files REST API (nodes, children, content: issue 4) has not landed",
    strict=False,
)


@pytest.fixture(autouse=True)
def disks(settings):
    settings.CLOUDSTORAGE_CHUNK_AVG = 64 * 1024
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        # The live server's threads share the in-memory test database, which refuses concurrent
        # writers ("table is locked"); real SQLite files (WAL) and PostgreSQL take parallel uploads.
        settings.DASHBOARD_UPLOAD_PARALLEL = 1
    return local_disks(settings)


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
        lambda req: (
            foreign.append(req.url)
            if req.url.startswith(("http://", "https://")) and urlparse(req.url).netloc != own_host
            else None
        ),
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
    expect(page.locator("#price-out")).to_contain_text("5.00")  # 25 GB at the default 0.20 per GB
    page.get_by_role("button", name="Buy").click()
    page.get_by_text("The plan is now 25 GB").wait_for()

    page.get_by_role("link", name=re.compile("Usage")).click()
    page.get_by_test_id("quota-total").wait_for()
    assert re.search(r"\b25(\.0)?\sGB", page.get_by_test_id("quota-total").inner_text())
    workspace.refresh_from_db()
    assert workspace.plan_gb == 25 and workspace.category == "C"
    assert not js_errors


def drop_paths(page, paths, target="#dropzone") -> None:
    """A real drag-and-drop of files and folders from disk onto `target` (Chromium's own drag
    pipeline through DevTools, so the page gets FileSystemEntry objects for folders as with an OS drag)."""
    box = page.locator(target).bounding_box()
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


@needs_nodes_api
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
    items = page.locator("#upload-list .upload-item:not(.folder)")
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


def upload_via_picker(page, path) -> None:
    page.locator("#pick-files").set_input_files(str(path))
    page.get_by_test_id("upload-total").filter(has_text=re.compile(r"^100%$")).wait_for()


@needs_nodes_api
def test_create_rename_copy_move_delete_and_restore_to_original_path(page, live_server, js_errors, tmp_path):
    user = UserFactory(email="organiser@example.com")
    open_files(page, live_server, user)

    for name in ("Projects", "Archive"):
        page.get_by_role("button", name="New folder").click()
        page.get_by_label("Name", exact=True).fill(name)
        page.get_by_role("button", name="Create").click()
        row(page, name).wait_for()

    # A bad name is refused by the API, and its message is shown in the dialog.
    page.get_by_role("button", name="New folder").click()
    page.get_by_label("Name", exact=True).fill("Projects")
    page.get_by_role("button", name="Create").click()
    page.locator("#name-dialog .dialog-error").wait_for()
    assert page.locator("#name-dialog .dialog-error").inner_text().strip()
    page.locator("#name-dialog").get_by_role("button", name="Cancel").click()

    plan = tmp_path / "plan.txt"
    plan.write_text("the plan")
    upload_via_picker(page, plan)
    row(page, "plan.txt").wait_for()

    select(page, "plan.txt")
    page.get_by_role("button", name="Rename").click()
    page.get_by_label("Name", exact=True).fill("plan-v2.txt")
    page.get_by_role("button", name="Rename", exact=True).last.click()
    row(page, "plan-v2.txt").wait_for()
    assert node_at(user, "/plan-v2.txt") is not None

    select(page, "plan-v2.txt")
    page.locator("#selection-bar").get_by_role("button", name="Copy").click()
    page.locator("#picker-list").get_by_role("button", name="Archive").click()
    page.get_by_role("button", name="Copy here").click()
    page.get_by_text("Copied 1 item.").wait_for()
    assert node_at(user, "/Archive/plan-v2.txt") is not None

    select(page, "plan-v2.txt")
    page.locator("#selection-bar").get_by_role("button", name="Move").click()
    page.locator("#picker-list").get_by_role("button", name="Projects").click()
    page.get_by_role("button", name="Move here").click()
    page.get_by_text("Moved 1 item.").wait_for()
    row(page, "plan-v2.txt").wait_for(state="detached")
    moved = node_at(user, "/Projects/plan-v2.txt")
    assert moved is not None

    page.locator("#listing").get_by_role("link", name="Projects").click()
    select(page, "plan-v2.txt")
    page.locator("#selection-bar").get_by_role("button", name="Delete").click()
    page.locator("#confirm-dialog").get_by_role("button", name="Delete").click()
    page.get_by_text("Moved 1 item to the trash.").wait_for()
    page.get_by_text("This folder is empty.").wait_for()
    assert node_at(user, "/Projects/plan-v2.txt") is None

    page.get_by_role("link", name="Trash").click()
    trashed = page.locator("#trash [data-name='plan-v2.txt']")
    trashed.wait_for()
    assert "/Projects" in trashed.inner_text()
    assert re.search(r"(29|30) days", trashed.inner_text())
    page.get_by_role("button", name="Restore plan-v2.txt").click()
    page.get_by_text(re.compile(r"Restored “plan-v2.txt” to /Projects/plan-v2.txt")).wait_for()
    page.locator("#trash").get_by_text("The trash is empty.").wait_for()
    restored = node_at(user, "/Projects/plan-v2.txt")
    assert restored is not None and restored.pk == moved.pk
    assert not js_errors


@needs_nodes_api
def test_share_with_second_user_then_revoke(page, second_page, live_server, js_errors):
    from files.folders import folder_create

    owner = UserFactory(email="alice@example.com")
    friend = UserFactory(email="bob@example.com")
    folder_create(user=owner, parent=root_of(owner), name="Team docs")
    open_files(page, live_server, owner)

    select(page, "Team docs")
    page.locator("#selection-bar").get_by_role("button", name="Share").click()
    dialog = page.locator("#share-dialog")
    dialog.get_by_label("E-mail address").fill("nobody@example.com")
    dialog.get_by_role("button", name="Share", exact=True).click()
    dialog.locator(".dialog-error").wait_for()  # an unknown user: the API's message, in the dialog
    dialog.get_by_label("E-mail address").fill("bob@example.com")
    dialog.get_by_label("Permission").select_option("edit")
    dialog.get_by_role("button", name="Share", exact=True).click()
    dialog.locator("[data-email='bob@example.com']").wait_for()

    login(second_page, live_server, friend)
    second_page.goto("/app/shared/")
    shared_row = second_page.locator("#shared [data-name='Team docs']")
    shared_row.wait_for()
    assert "alice@example.com" in shared_row.inner_text()
    assert "edit" in shared_row.inner_text()
    shared_row.get_by_role("link", name="Team docs").click()
    second_page.get_by_role("heading", name="Team docs").wait_for()

    dialog.get_by_role("button", name="Revoke access of bob@example.com").click()
    dialog.get_by_text("Not shared with anyone yet.").wait_for()

    second_page.goto("/app/shared/")
    second_page.get_by_text("Nothing has been shared with you yet.").wait_for()
    assert second_page.locator("#shared [data-name='Team docs']").count() == 0
    assert not js_errors


@needs_nodes_api
def test_public_link_downloads_logged_out(page, second_page, live_server, js_errors, settings):
    import io

    settings.SITE_URL = live_server.url  # links are made absolute with the site's public address

    from files.uploads import file_upload

    owner = UserFactory(email="publisher@example.com")
    file_upload(user=owner, parent=root_of(owner), name="report.txt", stream=io.BytesIO(b"quarterly numbers"))
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    open_files(page, live_server, owner)

    select(page, "report.txt")
    page.locator("#selection-bar").get_by_role("button", name="Share").click()
    dialog = page.locator("#share-dialog")
    dialog.get_by_role("button", name="Create link").click()
    link_input = dialog.locator("#link-list .link-url").first
    link_input.wait_for()
    url = link_input.input_value()
    assert re.search(r"/s/[\w-]{16,}$", url)
    page.get_by_text("Link created and copied to the clipboard.").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == url

    # A second link with a password, an expiry and a limit shows those facts.
    dialog.get_by_label("Password (optional)").fill("open sesame")
    dialog.get_by_label("Expires on (optional)").fill("2099-12-31")
    dialog.get_by_label("Download limit (optional)").fill("3")
    dialog.get_by_role("button", name="Create link").click()
    dialog.get_by_text(re.compile("password · expires .* · 0/3 downloads")).wait_for()

    second_page.goto(url)  # nobody logged in here
    with second_page.expect_download() as download:
        second_page.get_by_role("link", name="Download", exact=True).click()
    assert download.value.suggested_filename == "report.txt"
    assert open(download.value.path(), "rb").read() == b"quarterly numbers"
    assert not js_errors


def test_trash_restore_recreates_the_original_path_delete_forever_and_empty(page, live_server, js_errors):
    import io

    from files.folders import folder_create
    from files.trash import node_trash
    from files.uploads import file_upload

    user = UserFactory(email="tidy@example.com")
    docs = folder_create(user=user, parent=root_of(user), name="Docs")
    keep = file_upload(user=user, parent=docs, name="keep.txt", stream=io.BytesIO(b"keep me")).node
    drop = file_upload(user=user, parent=docs, name="drop.txt", stream=io.BytesIO(b"drop me")).node
    other = file_upload(user=user, parent=root_of(user), name="other.txt", stream=io.BytesIO(b"x")).node
    for node in (keep, drop):
        node_trash(user=user, node=node)
    node_trash(user=user, node=docs)  # the parent goes too: restore must re-create it
    node_trash(user=user, node=other)
    login(page, live_server, user)
    page.goto(f"/app/w/{personal_workspace(user).pk}/trash/")

    item = page.locator("#trash [data-name='keep.txt']")
    item.wait_for()
    assert "/Docs" in item.inner_text() and "30 days" in item.inner_text()
    page.get_by_role("button", name="Restore keep.txt").click()
    page.get_by_text(re.compile(r"Restored “keep.txt” to /Docs/keep.txt")).wait_for()
    item.wait_for(state="detached")
    restored = node_at(user, "/Docs/keep.txt")
    assert restored is not None and restored.pk == keep.pk

    # The old folder itself comes back beside the re-created one, under a free name.
    page.get_by_role("button", name="Restore Docs").click()
    page.get_by_text(re.compile(r"Restored “Docs” to /Docs \(restored\)")).wait_for()
    assert node_at(user, "/Docs (restored)").pk == docs.pk

    page.get_by_role("button", name="Delete drop.txt forever").click()
    page.locator("#confirm-dialog").get_by_role("button", name="Delete forever").click()
    page.locator("#trash [data-name='drop.txt']").wait_for(state="detached")

    page.get_by_role("button", name="Empty the trash").click()
    page.locator("#confirm-dialog").get_by_role("button", name="Empty the trash").click()
    page.locator("#trash").get_by_text("The trash is empty.").wait_for()
    from files.models import Node

    assert not Node.objects.filter(pk__in=[drop.pk, other.pk]).exists()
    assert not js_errors


def _png_1x1() -> bytes:
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


def test_details_versions_tags_previews_search_usage_and_phone_layout(page, live_server, js_errors):
    import io

    from files.models import Node
    from files.uploads import file_upload

    user = UserFactory(email="curator@example.com")
    root = root_of(user)
    file_upload(user=user, parent=root, name="notes.txt", stream=io.BytesIO(b"first draft"))
    notes = file_upload(user=user, parent=root, name="notes.txt", stream=io.BytesIO(b"second draft")).node
    file_upload(user=user, parent=root, name="pic.png", stream=io.BytesIO(_png_1x1()))
    pdf = file_upload(user=user, parent=root, name="doc.pdf", stream=io.BytesIO(b"%PDF-1.4\n%%EOF\n")).node
    open_files(page, live_server, user)

    # PDF preview: our own same-origin frame
    page.locator("#listing").get_by_role("button", name="doc.pdf", exact=True).click()
    frame = page.locator("#preview-body iframe")
    frame.wait_for()
    assert frame.get_attribute("src") == f"/app/preview/{pdf.pk}/"
    page.keyboard.press("Escape")

    # Text preview
    page.locator("#listing").get_by_role("button", name="notes.txt", exact=True).click()
    page.locator("#preview-body pre").get_by_text("second draft").wait_for()
    page.locator("#preview-dialog").get_by_role("button", name="Close").click()
    # Image preview
    page.locator("#listing").get_by_role("button", name="pic.png", exact=True).click()
    image = page.locator("#preview-body img")
    image.wait_for()
    page.wait_for_function("document.querySelector('#preview-body img').naturalWidth === 1")
    page.keyboard.press("Escape")

    # Details: restore version 1 (as version 3), tags and description
    select(page, "notes.txt")
    page.locator("#selection-bar").get_by_role("button", name="Details").click()
    details = page.locator("#details")
    details.get_by_text("v2 (current)").wait_for()
    details.get_by_role("button", name="Restore version 1").click()
    details.get_by_text("restored from v1").wait_for()
    notes.refresh_from_db()
    assert notes.version == 3
    details.get_by_label("Tags (comma-separated)").fill("alpha, beta")
    details.get_by_label("Description").fill("quarterly figures")
    details.get_by_role("button", name="Save details").click()
    page.get_by_text("Details saved.").wait_for()
    notes = Node.objects.get(pk=notes.pk)
    assert sorted(notes.tags.values_list("name", flat=True)) == ["alpha", "beta"]
    assert notes.description == "quarterly figures"

    # Grid view shows an image thumbnail
    page.get_by_role("button", name="Grid").click()
    wait_until(page, "() => [...document.querySelectorAll('.tile img')].some(i => i.naturalWidth === 1)")

    # Search by tag text
    page.get_by_role("link", name="Search").click()
    page.get_by_label("Name, tag or description").fill("alpha")
    page.get_by_role("button", name="Search").click()
    hit = page.locator("#results [data-id]")
    hit.wait_for()
    assert hit.get_by_role("link", name="notes.txt").is_visible()
    assert hit.locator("td").nth(1).inner_text() == "/"  # the folder it is in (the top here)

    # Usage: the chart by use and by type
    page.get_by_role("link", name="Usage").click()
    page.locator("#use-chart .bars").get_by_text("Older versions").wait_for()
    page.locator("#types-chart .bars").get_by_text("Image").wait_for()

    # A phone: the same page without horizontal scrolling
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/app/files/")
    page.locator("#listing[aria-busy='false']").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    page.screenshot(path=str(ARTIFACTS / "phone_file_browser.png"), full_page=True)
    assert not js_errors


def test_upload_over_quota_shows_the_api_message_and_stores_nothing(page, live_server, js_errors, tmp_path):
    from accounts.models import Workspace

    user = UserFactory(email="full@example.com")
    workspace = personal_workspace(user)
    Workspace.objects.filter(pk=workspace.pk).update(used_bytes=workspace.quota_bytes - 100)
    big = tmp_path / "too-big.bin"
    big.write_bytes(b"x" * 4096)
    open_files(page, live_server, user)

    page.locator("#pick-files").set_input_files(str(big))
    failed = page.locator("#upload-list .upload-item.failed")
    failed.wait_for()
    assert "Not enough space" in failed.inner_text()
    assert "failed" in page.get_by_test_id("upload-total").inner_text()
    assert node_at(user, "/too-big.bin") is None
    assert not js_errors


def test_tus_upload_resumes_from_the_server_offset_after_a_reload(page, live_server, js_errors, settings, tmp_path):
    settings.DASHBOARD_TUS_THRESHOLD = 100 * 1024
    settings.DASHBOARD_TUS_CHUNK = 64 * 1024
    payload = hashlib.sha256(b"reload").digest() * (320 * 1024 // 32)
    big = tmp_path / "video.bin"
    big.write_bytes(payload)
    user = UserFactory(email="reload@example.com")
    open_files(page, live_server, user)

    seen = {"patches": 0, "cut": False}

    def cut_third_chunk(route):
        if route.request.method == "PATCH":
            seen["patches"] += 1
            if seen["patches"] == 3:
                seen["cut"] = True
                return route.abort("connectionreset")
        return route.continue_()

    page.route(re.compile(r".*/api/v1/uploads/.*"), cut_third_chunk)
    page.locator("#pick-files").set_input_files(str(big))
    page.wait_for_function("document.querySelector('#upload-list .status')?.textContent.includes('resumable')")
    for _ in range(300):
        if seen["cut"]:
            break
        page.wait_for_timeout(50)
    assert seen["cut"], "the third chunk was never sent"
    page.reload()  # the tab is gone mid-upload; the upload URL stays in localStorage
    page.unroute(re.compile(r".*/api/v1/uploads/.*"))
    page.locator("#listing[aria-busy='false']").wait_for()

    offsets: list[str] = []
    page.on(
        "request",
        lambda req: offsets.append(req.headers.get("upload-offset")) if req.method == "PATCH" else None,
    )
    page.locator("#pick-files").set_input_files(str(big))  # the same file again
    page.get_by_test_id("upload-total").filter(has_text=re.compile(r"^100%$")).wait_for(timeout=30_000)
    assert offsets[0] == str(2 * 64 * 1024)  # went on after the two chunks the server had
    node = node_at(user, "/video.bin")
    assert node.sha256 == hashlib.sha256(payload).hexdigest()
    assert not js_errors


def test_drag_rows_onto_a_folder_moves_them_and_files_dropped_on_a_folder_land_inside(
    page, live_server, js_errors, tmp_path
):
    import io

    from files.folders import folder_create
    from files.uploads import file_upload

    user = UserFactory(email="dragger@example.com")
    root = root_of(user)
    folder_create(user=user, parent=root, name="Inbox")
    for name in ("a.txt", "b.txt"):
        file_upload(user=user, parent=root, name=name, stream=io.BytesIO(name.encode()))
    open_files(page, live_server, user)

    select(page, "a.txt")
    select(page, "b.txt")
    row(page, "a.txt").drag_to(row(page, "Inbox"))
    page.get_by_text("Moved 2 items to “Inbox”.").wait_for()
    row(page, "a.txt").wait_for(state="detached")
    assert node_at(user, "/Inbox/a.txt") and node_at(user, "/Inbox/b.txt")

    letter = tmp_path / "letter.txt"
    letter.write_text("dear")
    drop_paths(page, [letter], target="#listing [data-name='Inbox']")
    page.get_by_test_id("upload-total").filter(has_text=re.compile(r"^100%$")).wait_for()
    assert node_at(user, "/Inbox/letter.txt") is not None
    assert node_at(user, "/letter.txt") is None
    assert not js_errors


def test_cancelling_a_tus_upload_terminates_it_on_the_server(page, live_server, js_errors, settings, tmp_path):
    from files.models import Upload

    settings.DASHBOARD_TUS_THRESHOLD = 100 * 1024
    settings.DASHBOARD_TUS_CHUNK = 64 * 1024
    big = tmp_path / "huge.bin"
    big.write_bytes(b"z" * (256 * 1024))
    user = UserFactory(email="cancel@example.com")
    open_files(page, live_server, user)

    held, methods = [], []

    def hold_second_chunk(route):
        methods.append(route.request.method)
        if route.request.method == "PATCH" and methods.count("PATCH") == 2:
            held.append(route)  # left pending: the chunk is "on the wire" until cancelled
            return None
        return route.continue_()

    page.route(re.compile(r".*/api/v1/uploads/.*"), hold_second_chunk)
    page.locator("#pick-files").set_input_files(str(big))
    for _ in range(300):
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the second chunk was never sent"
    assert Upload.objects.count() == 1
    page.get_by_role("button", name="Cancel huge.bin").click()
    page.locator("#upload-list .upload-item.failed").get_by_text("Upload cancelled.").wait_for()
    page.wait_for_function("!localStorage.length || !Object.keys(localStorage).some(k => k.startsWith('tus:'))")
    for _ in range(100):
        if "DELETE" in methods and not Upload.objects.exists():
            break
        page.wait_for_timeout(50)
    assert "DELETE" in methods
    assert not Upload.objects.exists()
    assert node_at(user, "/huge.bin") is None
    assert personal_workspace(user).used_bytes == 0  # the reservation went back with it
    assert not js_errors


# Every control has an accessible name, every image a text alternative, and the focus ring shows.
A11Y_PROBLEMS = """() => {
  const problems = [];
  const named = (el) => (el.getAttribute('aria-label') || '').trim() || el.getAttribute('aria-labelledby')
    || (el.labels && [...el.labels].some(l => l.textContent.trim())) || (el.textContent || '').trim() || el.title;
  for (const el of document.querySelectorAll('input, select, textarea, button, a[href]')) {
    if (el.type === 'hidden' || el.closest('[hidden]') || el.closest('dialog:not([open])')) continue;
    if (el.tabIndex === -1 && el.classList.contains('sr-only')) continue;  // file inputs behind labels
    if (!named(el)) problems.push('unnamed ' + el.outerHTML.slice(0, 120));
  }
  for (const img of document.querySelectorAll('img')) if (!img.hasAttribute('alt')) problems.push('no alt ' + img.src);
  if (!document.documentElement.lang) problems.push('no lang');
  if (!document.querySelector('h1')) problems.push('no h1');
  return problems;
}"""


def test_pages_have_named_controls_headings_and_visible_focus(page, live_server, js_errors):
    import io

    from files.uploads import file_upload

    user = UserFactory(email="a11y@example.com")
    workspace = personal_workspace(user)
    file_upload(user=user, parent=root_of(user), name="x.txt", stream=io.BytesIO(b"x"))
    page.goto("/")
    assert page.evaluate(A11Y_PROBLEMS) == []
    login(page, live_server, user)
    for url in (
        "/app/files/",
        f"/app/w/{workspace.pk}/trash/",
        f"/app/w/{workspace.pk}/search/?q=x",
        f"/app/w/{workspace.pk}/usage/",
        f"/app/workspaces/{workspace.pk}/plan/",
        f"/app/workspaces/{workspace.pk}/",
        "/app/shared/",
        "/app/settings/",
    ):
        assert page.goto(url).status == 200, url
        page.wait_for_load_state("networkidle")
        assert page.evaluate(A11Y_PROBLEMS) == [], url

    page.goto("/app/files/")
    page.locator("#listing[aria-busy='false']").wait_for()
    select(page, "x.txt")
    page.locator("#selection-bar").get_by_role("button", name="Share").click()
    page.locator("#share-dialog").get_by_role("button", name="Create link").click()
    page.locator("#link-list .link-url").wait_for()
    assert page.evaluate(A11Y_PROBLEMS) == []
    page.keyboard.press("Escape")
    # Keyboard focus is visible: a focused button gets an outline.
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none")
    assert not js_errors
