"""Vaults in a real browser: create and unlock one, upload through the page (only ciphertext
reaches the server, and the Python reference client decrypts it), preview a file the Python client
uploaded, refuse a wrong passphrase, a flipped byte, swapped segments and a truncated file, and open a
public vault link logged out."""

from __future__ import annotations

import base64
import os
import struct
import time
import zlib

import pytest
import requests
from playwright.sync_api import expect

from accounts.services import token_create
from clients.vault import crypto
from clients.vault.api import VaultClient
from files.models import Node
from tests.e2e import test_files_browser
from tests.e2e.conftest import ARTIFACTS
from tests.e2e.test_files_browser import login, root_of
from tests.factories import UserFactory, local_disks

pytestmark = pytest.mark.django_db(transaction=True)

PASSPHRASE = "a vault passphrase for tests"
DESKTOP = {"width": 1366, "height": 860}
PHONE = {"width": 390, "height": 844}
js_errors = test_files_browser.js_errors  # the page's uncaught script errors (a fixture)


@pytest.fixture(autouse=True)
def disks(settings):
    settings.CLOUDSTORAGE_CHUNK_AVG = 64 * 1024
    return local_disks(settings)


def png(width: int = 96, height: int = 64) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def shares_a_window(stored: bytes, plain: bytes, width: int = 64) -> bool:
    windows = {plain[i : i + width] for i in range(len(plain) - width + 1)}
    return any(stored[i : i + width] in windows for i in range(len(stored) - width + 1))


def create_and_unlock(page, live_server, user, name="Secrets") -> str:
    login(page, live_server, user)
    page.goto(f"/app/w/{root_of(user).workspace_id}/f/{root_of(user).pk}/")
    page.get_by_test_id("new-vault").click()
    page.get_by_label("Name").fill(name)
    page.get_by_label("Passphrase", exact=True).fill(PASSPHRASE)
    page.get_by_label("Passphrase again").fill(PASSPHRASE)
    page.get_by_role("button", name="Create vault").click()
    page.wait_for_url("**/app/vaults/*/")
    unlock(page)
    return page.url.rstrip("/").rsplit("/", 1)[1]


def unlock(page, passphrase=PASSPHRASE, *, opens: bool = True) -> None:
    page.get_by_label("Passphrase").fill(passphrase)
    page.get_by_role("button", name="Unlock").click()
    if opens:
        # PBKDF2 with 600,000 iterations: a moment on a laptop, longer on a busy test machine.
        page.locator("#vault-listing[aria-busy='false']").wait_for(timeout=60_000)


def test_vault_forms_cannot_be_sent_before_their_script_handles_them(page, live_server):
    """Clicked before vault.js had loaded, "Create vault" (and "Unlock") submitted the form the
    browser's own way: a GET to the same page that dropped what was typed (seen in CI under load).
    Each button is disabled until the script has taken the form over."""
    page.set_viewport_size(PHONE)
    owner = UserFactory(email="early@example.com")
    login(page, live_server, owner)
    held: list = []
    script = {"released": False}

    def hold(route) -> None:
        if script["released"]:
            route.continue_()
        else:
            held.append(route)

    def release() -> None:
        script["released"] = True
        while held:
            held.pop().continue_()

    page.route(lambda url: "/js/vault" in url, hold)
    page.goto(f"/app/vaults/new/?parent={root_of(owner).pk}", wait_until="commit")
    create = page.get_by_role("button", name="Create vault")
    create.wait_for()
    expect(create).to_be_disabled()
    release()
    expect(create).to_be_enabled()

    page.get_by_label("Name").fill("Early")
    page.get_by_label("Passphrase", exact=True).fill(PASSPHRASE)
    page.get_by_label("Passphrase again").fill(PASSPHRASE)
    create.click()
    page.wait_for_url("**/app/vaults/*/", timeout=60_000)  # PBKDF2 first: slower on a busy machine
    script["released"] = False
    page.goto(page.url, wait_until="commit")
    unlock_button = page.get_by_role("button", name="Unlock")
    unlock_button.wait_for()
    expect(unlock_button).to_be_disabled()
    release()
    expect(unlock_button).to_be_enabled()
    unlock(page)


def row(page, name):
    return page.locator(f"#vault-listing tr[data-name='{name}']")


def test_browser_upload_stores_only_ciphertext_the_python_client_decrypts_it_and_previews_its_files(
    page, live_server, js_errors, tmp_path
):
    page.set_viewport_size(DESKTOP)
    owner = UserFactory(email="vaulter@example.com")
    vault_id = create_and_unlock(page, live_server, owner)
    page.get_by_test_id("vault-notice").get_by_text("names are not encrypted").wait_for()
    plain = b"".join(f"line {n}: the plans for the new office, keep them private.\n".encode() for n in range(4000))
    source = tmp_path / "plans.txt"
    source.write_bytes(plain)

    page.locator("#vault-pick-files").set_input_files(str(source))
    row(page, "plans.txt").wait_for()
    assert (
        row(page, "plans.txt").locator("td").nth(1).inner_text() == f"{len(plain) / 1024:.1f} KB"
    )  # the plaintext size, not the stored one
    page.screenshot(path=str(ARTIFACTS / "vault-desktop-listing.png"), full_page=True)

    token = token_create(user=owner, name="check").raw
    client = VaultClient(base=live_server.url, token=token)
    file_id = row(page, "plans.txt").get_attribute("data-id")
    stored = requests.get(
        f"{live_server.url}/api/v1/nodes/{file_id}/content", headers={"Authorization": f"Bearer {token}"}, timeout=30
    ).content
    assert stored != plain and len(stored) == crypto.ciphertext_size(len(plain))
    assert not shares_a_window(stored, plain)
    assert b"".join(client.file_get(node=file_id, passphrase=PASSPHRASE.encode())) == plain

    # What the Python client uploads opens in the browser's preview.
    note, image = tmp_path / "from-python.txt", tmp_path / "dot.png"
    note.write_bytes("Encrypted by the reference client. ✓".encode())
    image.write_bytes(png())
    for path in (note, image):
        client.file_put(folder=vault_id, name=path.name, path=path, passphrase=PASSPHRASE.encode())
    page.reload()
    unlock(page)
    row(page, "from-python.txt").get_by_role("button", name="Preview").click()
    assert page.get_by_test_id("vault-preview-text").inner_text() == "Encrypted by the reference client. ✓"
    row(page, "dot.png").get_by_role("button", name="Preview").click()
    preview = page.get_by_test_id("vault-preview-image")
    preview.wait_for()
    page.wait_for_function("document.querySelector('[data-testid=vault-preview-image]').naturalWidth === 96")
    page.screenshot(path=str(ARTIFACTS / "vault-desktop-preview.png"), full_page=True)

    # Download decrypts to the original.
    with page.expect_download() as download:
        row(page, "plans.txt").get_by_role("button", name="Download plans.txt").click()
    assert open(download.value.path(), "rb").read() == plain

    # Rename and move inside the vault; a move out of it is refused by the server.
    page.get_by_role("button", name="New folder").click()
    page.locator("#vault-folder-name").fill("Drafts")
    page.get_by_role("button", name="Create").click()
    row(page, "Drafts").wait_for()
    row(page, "plans.txt").get_by_role("button", name="Rename").click()
    page.locator("#vault-rename").fill("plans-v2.txt")
    page.locator("#vault-panel").get_by_role("button", name="Rename").click()
    row(page, "plans-v2.txt").get_by_role("button", name="Move").click()
    page.locator("#vault-panel").get_by_role("button", name="Move").click()
    row(page, "plans-v2.txt").wait_for(state="detached")
    row(page, "Drafts").get_by_role("link").click()
    row(page, "plans-v2.txt").wait_for()
    outside = requests.patch(
        f"{live_server.url}/api/v1/nodes/{file_id}/",
        json={"parent": str(root_of(owner).pk)},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert outside.status_code == 400 and outside.json()["error"]["code"] == "vault_boundary"
    assert not js_errors


def test_wrong_passphrase_and_tampered_bytes_show_clear_errors_and_no_plaintext(page, live_server, js_errors, tmp_path):
    page.set_viewport_size(PHONE)
    owner = UserFactory(email="tamper@example.com")
    vault_id = create_and_unlock(page, live_server, owner)
    token = token_create(user=owner, name="check").raw
    client = VaultClient(base=live_server.url, token=token)
    note = tmp_path / "diary.txt"
    note.write_bytes(b"dear diary, " * 20000)
    file_id = client.file_put(folder=vault_id, name="diary.txt", path=note, passphrase=PASSPHRASE.encode())
    page.screenshot(path=str(ARTIFACTS / "vault-phone-unlocked.png"), full_page=True)

    page.reload()
    unlock(page, "not the passphrase", opens=False)
    page.get_by_text("Wrong passphrase. Nothing was unlocked.").wait_for()
    assert page.locator("#vault-open").is_hidden()
    page.screenshot(path=str(ARTIFACTS / "vault-phone-wrong-passphrase.png"), full_page=True)

    headers = {"Authorization": f"Bearer {token}"}
    stored = bytearray(
        requests.get(f"{live_server.url}/api/v1/nodes/{file_id}/content", headers=headers, timeout=30).content
    )
    original = bytes(stored)
    stored[crypto.HEADER_SIZE + crypto.STORED_SEGMENT + 5] ^= 0x80
    requests.put(f"{live_server.url}/api/v1/nodes/{file_id}/content", data=bytes(stored), headers=headers, timeout=30)
    unlock(page)
    row(page, "diary.txt").get_by_role("button", name="Preview").click()
    page.get_by_text("Segment 1 failed its integrity check").wait_for()
    assert page.locator("#vault-panel").is_hidden()
    assert "dear diary" not in page.content()
    page.screenshot(path=str(ARTIFACTS / "vault-phone-tampered.png"), full_page=True)

    # Whole segments swapped, and the last segment cut off: each decrypts on its own, so only the
    # index and the "last segment" flag bound into each nonce and AAD can tell.
    head, seg = crypto.HEADER_SIZE, crypto.STORED_SEGMENT
    assert len(original) > head + 3 * seg  # four segments: three whole ones and a short last one
    swapped = (
        original[:head]
        + original[head + seg : head + 2 * seg]
        + original[head : head + seg]
        + original[head + 2 * seg :]
    )
    truncated = original[: head + 3 * seg]
    for damaged, message in (
        (swapped, "Segment 0 failed its integrity check"),
        (truncated, "Segment 2 failed its integrity check"),
    ):
        requests.put(f"{live_server.url}/api/v1/nodes/{file_id}/content", data=damaged, headers=headers, timeout=30)
        page.reload()
        unlock(page)
        row(page, "diary.txt").get_by_role("button", name="Preview").click()
        page.get_by_text(message).wait_for()
        assert "reordered or truncated" in page.get_by_text(message).inner_text()
        assert page.locator("#vault-panel").is_hidden()
        assert "dear diary" not in page.content()
    assert not js_errors


def test_public_vault_link_decrypts_logged_out_and_the_key_never_reaches_the_server(
    page, live_server, js_errors, settings, chromium, tmp_path
):
    settings.SITE_URL = live_server.url
    page.set_viewport_size(DESKTOP)
    owner = UserFactory(email="linker@example.com")
    vault_id = create_and_unlock(page, live_server, owner)
    secret = os.urandom(150_000)
    blob = tmp_path / "secret.bin"
    blob.write_bytes(secret)
    page.locator("#vault-pick-files").set_input_files(str(blob))
    row(page, "secret.bin").get_by_role("button", name="Link").click()
    url = page.get_by_test_id("vault-link-url").input_value()
    key = url.split("#k=", 1)[1]
    assert len(base64.urlsafe_b64decode(key + "=")) == 32
    assert vault_id not in url

    sent: list[str] = []
    context = chromium.new_context(base_url=live_server.url, viewport=PHONE)
    stranger = context.new_page()
    stranger.on("request", lambda req: sent.append(f"{req.method} {req.url} {req.headers} {req.post_data or ''}"))
    try:
        stranger.goto(url)
        stranger.get_by_text("end-to-end encrypted").first.wait_for()
        with stranger.expect_download() as download:
            stranger.get_by_role("button", name="Download").click()
        assert open(download.value.path(), "rb").read() == secret
        stranger.get_by_text("Decrypted and verified.").wait_for()
        stranger.screenshot(path=str(ARTIFACTS / "vault-phone-public-link.png"), full_page=True)
        # The same link without its fragment says what is missing and decrypts nothing.
        stranger.goto(url.split("#")[0])
        stranger.get_by_text("missing its key").wait_for()
    finally:
        context.close()
    assert sent and all(key not in request for request in sent)
    assert all("#" not in request.split(" ")[1] for request in sent)
    assert not js_errors


def test_large_file_goes_through_tus_then_versions_trash_and_a_passphrase_change(
    page, live_server, js_errors, settings, tmp_path
):
    settings.DASHBOARD_TUS_THRESHOLD = 200 * 1024
    settings.DASHBOARD_TUS_CHUNK = 64 * 1024
    page.set_viewport_size(DESKTOP)
    owner = UserFactory(email="tusvault@example.com")
    vault_id = create_and_unlock(page, live_server, owner)
    patches: list[str] = []
    page.on(
        "request", lambda req: patches.append(req.url) if req.method == "PATCH" and "/uploads/" in req.url else None
    )
    first, second = os.urandom(300_000), os.urandom(310_000)
    big = tmp_path / "big.bin"
    big.write_bytes(first)
    page.locator("#vault-pick-files").set_input_files(str(big))
    row(page, "big.bin").wait_for()
    assert len(patches) == -(-crypto.ciphertext_size(len(first)) // (64 * 1024))  # resumable chunks
    file_id = row(page, "big.bin").get_attribute("data-id")
    big.write_bytes(second)
    page.locator("#vault-pick-files").set_input_files(str(big))
    for _ in range(300):
        if Node.objects.get(pk=file_id).version == 2:
            break
        time.sleep(0.1)

    token = token_create(user=owner, name="check").raw
    client = VaultClient(base=live_server.url, token=token)
    assert b"".join(client.file_get(node=file_id, passphrase=PASSPHRASE.encode())) == second

    # Versions: the first version downloads decrypted, then is restored as a new version.
    row(page, "big.bin").get_by_role("button", name="Versions").click()
    panel = page.locator("#vault-panel")
    panel.get_by_text("v2").wait_for()
    with page.expect_download() as download:
        panel.locator("li", has_text="v1").get_by_role("button", name="Download").click()
    assert open(download.value.path(), "rb").read() == first
    panel.locator("li", has_text="v1").get_by_role("button", name="Restore").click()
    page.get_by_text("Restored v1 as a new version.").wait_for()
    assert b"".join(client.file_get(node=file_id, passphrase=PASSPHRASE.encode())) == first

    # Trash and restore keep it in the vault, still readable.
    row(page, "big.bin").get_by_role("button", name="Delete").click()
    row(page, "big.bin").wait_for(state="detached")
    headers = {"Authorization": f"Bearer {token}"}
    assert requests.post(f"{live_server.url}/api/v1/trash/{file_id}/restore/", headers=headers, timeout=30).ok
    page.get_by_role("button", name="Lock").click()

    # A new passphrase: the old one stops working, the files are untouched.
    unlock(page)
    page.get_by_role("button", name="Change passphrase").click()
    page.locator("#vault-current").fill(PASSPHRASE)
    page.locator("#vault-next").fill("the second passphrase")
    page.locator("#vault-next-again").fill("the second passphrase")
    page.locator("#vault-panel").get_by_role("button", name="Change passphrase").click()
    page.get_by_text("Passphrase changed.").wait_for()
    assert b"".join(client.file_get(node=file_id, passphrase=b"the second passphrase")) == first
    page.reload()
    unlock(page, PASSPHRASE, opens=False)
    page.get_by_text("Wrong passphrase. Nothing was unlocked.").wait_for()
    unlock(page, "the second passphrase")
    row(page, "big.bin").wait_for()
    assert vault_id in page.url
    page.screenshot(path=str(ARTIFACTS / "vault-desktop-after-passphrase-change.png"), full_page=True)
    assert not js_errors
