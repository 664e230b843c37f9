"""The dashboard for daily use, at 1366x860 and on a 390x844 phone: no sideways scroll on any page,
every action within reach on the phone, the context menu and keyboard, Undo, the upload conflict
prompt, thumbnails, a video preview streamed with Range requests, and the site's own 404."""

from __future__ import annotations

import base64
import hashlib
import io
import re

import pytest
from django.test import Client

from tests.e2e.conftest import ARTIFACTS, wait_until
from tests.e2e.test_files_browser import login, node_at, root_of, row
from tests.factories import PASSWORD, UserFactory, local_disks, personal_workspace, team_workspace

pytestmark = pytest.mark.django_db(transaction=True)

VIEWPORTS = {"desktop": {"width": 1366, "height": 860}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(autouse=True)
def disks(settings):
    settings.CLOUDSTORAGE_CHUNK_AVG = 64 * 1024
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        settings.DASHBOARD_UPLOAD_PARALLEL = 1  # the in-memory test database takes one writer
    return local_disks(settings)


@pytest.fixture(params=list(VIEWPORTS))
def view(request, page):
    """Runs the test at both sizes; returns "desktop" or "phone"."""
    page.set_viewport_size(VIEWPORTS[request.param])
    return request.param


@pytest.fixture
def js_errors(page):
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def upload(user, name: str, data: bytes, parent=None):
    from files.uploads import file_upload

    return file_upload(user=user, parent=parent or root_of(user), name=name, stream=io.BytesIO(data)).node


def png(size=(640, 480)) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, (30, 140, 60)).save(out, "PNG")
    return out.getvalue()


def open_folder(page, live_server, user, folder=None):
    login(page, live_server, user)
    workspace = personal_workspace(user)
    page.goto(f"/app/w/{workspace.pk}/f/{(folder or root_of(user)).pk}/")
    page.locator("#listing[aria-busy='false']").wait_for()


def no_sideways_scroll(page) -> bool:
    """Nothing sticks out to the right: the page's width and every element's right edge."""
    return page.evaluate(
        """() => document.documentElement.scrollWidth <= innerWidth + 1 && document.body.scrollWidth <= innerWidth + 1
        && [...document.body.querySelectorAll("*")].every((e) => e.closest(".table-scroll, .sr-only, dialog:not([open])")
           || e.getBoundingClientRect().right <= innerWidth + 1)"""
    )


STICKING_OUT = """() => [...document.querySelectorAll(".card, .sidebar, .tile")].flatMap((box) => {
  const edge = box.getBoundingClientRect().right;
  return [...box.querySelectorAll("*")]
    .filter((e) => !e.closest(".table-scroll, .sr-only") && e.getClientRects().length && e.getBoundingClientRect().right > edge + 1)
    .slice(0, 2).map((e) => `${e.tagName}.${e.className} out of ${box.className}`);
})"""


def within_screen(page, locator) -> bool:
    box = locator.bounding_box()
    width = page.viewport_size["width"]
    return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width + 1


def toast(page, text):
    return page.locator("#notices .msg").filter(has_text=text)


# ---- every page fits ----------------------------------------------------------------------------

PUBLIC_PAGES = {"public-file", "public-folder", "unknown-link", "home"}


def test_no_page_scrolls_sideways(page, live_server, view, js_errors, settings):
    from accounts.services import token_create
    from files.access import node_get_for_user
    from files.links import link_create
    from files.stars import star_set
    from files.trash import node_trash

    settings.STRIPE_SECRET_KEY = ""
    user = UserFactory(email="a.person.with.a.rather.long.address@example.com")
    mate = UserFactory(email="another.long.address.of.a.teammate@example.com")
    team = team_workspace(user, "Acme Documents and Presentations", members={mate: "member"})
    folder_name = "Documents of the quarterly planning meeting"
    from files.folders import folder_create

    folder = folder_create(user=user, parent=root_of(user), name=folder_name)
    upload(user, "a-very-long-file-name-without-any-spaces-in-it-at-all.txt", b"text", parent=folder)
    gone = upload(user, "old.txt", b"old")
    node_trash(user=user, node=gone)
    link = link_create(actor=user, node=node_get_for_user(user=user, node_id=folder.pk))
    picture = upload(user, "a-picture-with-a-long-name-taken-at-the-quarterly-meeting.png", png((1600, 900)))
    file_link = link_create(actor=user, node=node_get_for_user(user=user, node_id=picture.pk))
    star_set(user=user, node=node_get_for_user(user=user, node_id=folder.pk), starred=True)
    token_create(user=user, name="laptop", expires_at=None)
    workspace = personal_workspace(user)
    login(page, live_server, user)

    files_url = f"/app/w/{workspace.pk}/f/{root_of(user).pk}/"
    pages = {
        "files": files_url,
        "files-grid": files_url,  # the Grid button is pressed below
        "folder": f"/app/w/{workspace.pk}/f/{folder.pk}/",
        "search": f"/app/w/{workspace.pk}/search/?q=long",
        "recent": f"/app/w/{workspace.pk}/recent/",
        "starred": "/app/starred/",
        "trash": f"/app/w/{workspace.pk}/trash/",
        "usage": f"/app/w/{workspace.pk}/usage/",
        "links": f"/app/w/{workspace.pk}/links/",
        "plan": f"/app/workspaces/{workspace.pk}/plan/",
        "members": f"/app/workspaces/{team.pk}/",
        "workspaces": "/app/",
        "shared": "/app/shared/",
        "settings": "/app/settings/",
        "tokens": "/app/tokens/",
        "password": "/accounts/password/change/",
        "email": "/accounts/email/",
        "two-factor": "/accounts/2fa/",
        "confirm-access": "/accounts/reauthenticate/",
        "password-reset": "/accounts/password/reset/",
        "log-out": "/accounts/logout/",  # the confirmation page (a GET logs nobody out)
        "new-vault": f"/app/vaults/new/?parent={root_of(user).pk}",
        "public-file": f"/s/{file_link.token}",
        "public-folder": f"/s/{link.token}",
        "unknown-link": "/s/no-such-link",
        "home": "/",
    }
    too_wide, sticking_out, no_menu = {}, {}, []
    for name, url in pages.items():
        page.goto(url)
        page.wait_for_load_state("networkidle")
        if name.startswith("files"):
            page.locator("#listing[aria-busy='false']").wait_for()
            page.get_by_role("button", name="Grid" if name == "files-grid" else "List").click()
        if not no_sideways_scroll(page):
            too_wide[name] = page.evaluate(
                "() => [...document.body.querySelectorAll('*')].filter((e) => e.getBoundingClientRect().right > innerWidth + 1)"
                ".slice(0, 3).map((e) => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))"
            )
        # Nor out of its card (a table wider than the card that holds it).
        if out := page.evaluate(STICKING_OUT):
            sticking_out[name] = out
        page.screenshot(path=str(ARTIFACTS / f"fit-{view}-{name}.png"), full_page=True)
        # One navigation: every logged-in page has the side menu (folded on the phone), with Files in it.
        if name not in PUBLIC_PAGES and page.locator("#side-menu a", has_text=re.compile("^Files$")).count() != 1:
            no_menu.append(name)
    assert not too_wide, f"pages wider than the {view} screen: {too_wide}"
    assert not sticking_out, f"things wider than the card that holds them ({view}): {sticking_out}"
    assert not no_menu, f"logged-in pages without the side menu: {no_menu}"

    # Recent lists the files, newest first.
    page.goto(pages["recent"])
    page.locator("#recent[aria-busy='false']").wait_for()
    names = page.locator("#recent tbody a").all_inner_texts()
    # Not the trashed old.txt.
    assert names == [picture.name, "a-very-long-file-name-without-any-spaces-in-it-at-all.txt"]

    # Names break between words, never inside one ("Docume/nts").
    page.goto(pages["files"])
    page.locator("#listing[aria-busy='false']").wait_for()
    name = page.locator("#listing").get_by_role("link", name=folder_name)
    assert page.evaluate(
        "(el) => el.getClientRects().length <= 1 || el.textContent.split(' ').every(w => w.length < 20)",
        name.element_handle(),
    )
    assert not js_errors


# ---- phone: every action ------------------------------------------------------------------------


def test_every_action_works_on_the_phone(page, live_server, js_errors, tmp_path):
    from files.access import node_get_for_user
    from files.folders import folder_create
    from files.links import link_create

    page.set_viewport_size(VIEWPORTS["phone"])
    user = UserFactory(email="phone@example.com")
    folder_create(user=user, parent=root_of(user), name="Archive")
    upload(user, "report.txt", b"the report")
    open_folder(page, live_server, user)

    # The side menu folds behind the Menu button.
    trash_link = page.get_by_role("link", name="Trash")
    assert not trash_link.is_visible()
    page.get_by_role("button", name="Menu").click()
    assert trash_link.is_visible()
    page.get_by_role("button", name="Menu").click()

    # Upload
    upload_button = page.locator("label[for='pick-files']")
    assert upload_button.is_visible() and within_screen(page, upload_button)
    new_file = tmp_path / "photo-notes.txt"
    new_file.write_text("notes")
    page.locator("#pick-files").set_input_files(str(new_file))
    row(page, "photo-notes.txt").wait_for()

    # A tap on a row selects it; its actions appear in the bar at the bottom of the screen.
    row(page, "report.txt").locator("td").nth(2).click()
    bar = page.locator("#selection-bar")
    bar.wait_for()
    box = bar.bounding_box()
    assert box["y"] + box["height"] >= 844 - 2 and within_screen(page, bar)
    # Every action in sight, none behind a sideways scroll of the bar.
    assert bar.evaluate("bar => bar.scrollWidth <= bar.clientWidth")
    for button in bar.get_by_role("button").all():
        assert within_screen(page, button), button.inner_text()
    page.screenshot(path=str(ARTIFACTS / "phone-selection-bar.png"))

    # Rename
    bar.get_by_role("button", name="Rename").click()
    page.get_by_label("Name", exact=True).fill("final report.txt")
    page.locator("#name-dialog").get_by_role("button", name="Rename").click()
    row(page, "final report.txt").wait_for()
    assert page.locator("#selection-bar").is_hidden()  # the selection ends with the rename

    # Download
    row(page, "final report.txt").locator("td").nth(2).click()
    with page.expect_download() as info:
        bar.get_by_role("button", name="Download").click()
    assert info.value.suggested_filename == "final report.txt"

    # Share: a public link, with feedback at once
    bar.get_by_role("button", name="Share").click()
    share = page.locator("#share-dialog")
    share.get_by_role("button", name="Create link").click()
    toast(page, "Link created").wait_for()
    assert within_screen(page, toast(page, "Link created"))
    share.locator(".link-url").wait_for()
    share.get_by_role("button", name="Close").click()

    # Move
    row(page, "final report.txt").locator("td").nth(2).click()
    bar.get_by_role("button", name="Move").click()
    page.locator("#picker-list").get_by_role("button", name="Archive").click()
    page.get_by_role("button", name="Move here").click()
    row(page, "final report.txt").wait_for(state="detached")
    assert node_at(user, "/Archive/final report.txt") is not None

    # Delete
    row(page, "photo-notes.txt").locator("td").nth(2).click()
    bar.get_by_role("button", name="Delete").click()
    page.locator("#confirm-dialog").get_by_role("button", name="Delete").click()
    row(page, "photo-notes.txt").wait_for(state="detached")

    # Trash: Restore and Delete forever are on screen and work.
    upload(user, "scrap.txt", b"scrap")
    from files.trash import node_trash

    node_trash(user=user, node=node_at(user, "/scrap.txt"))
    page.goto(f"/app/w/{personal_workspace(user).pk}/trash/")
    restore = page.get_by_role("button", name="Restore photo-notes.txt")
    assert within_screen(page, restore)
    restore.click()
    toast(page, "Restored").wait_for()
    page.locator("#trash [data-name='photo-notes.txt']").wait_for(state="detached")
    forever = page.get_by_role("button", name="Delete scrap.txt forever")
    assert within_screen(page, forever)
    forever.click()
    page.locator("#confirm-dialog").get_by_role("button", name="Delete forever").click()
    page.locator("#trash").get_by_text("The trash is empty.").wait_for()
    assert node_at(user, "/photo-notes.txt") is not None

    # API tokens: create after confirming the password (a reload creates no second one), copy, revoke.
    page.goto("/app/tokens/")
    page.get_by_label("Name").fill("phone")
    page.get_by_role("button", name="Create token").click()
    page.wait_for_url(re.compile("/accounts/reauthenticate/"))
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    page.locator("#new-token").wait_for()
    page.reload()
    from accounts.models import ApiToken

    assert ApiToken.objects.filter(user=user).count() == 1
    revoke = page.get_by_role("button", name="Revoke")
    assert within_screen(page, revoke)
    revoke.click()
    toast(page, "revoked").wait_for()
    assert not ApiToken.objects.filter(user=user, revoked_at__isnull=True).exists()

    # Links & activity: Revoke on screen and working.
    link = link_create(actor=user, node=node_get_for_user(user=user, node_id=node_at(user, "/Archive").pk))
    page.goto(f"/app/w/{personal_workspace(user).pk}/links/")
    revoke_link = page.get_by_role("button", name="Revoke the link to /Archive", exact=True)
    assert within_screen(page, revoke_link)
    revoke_link.click()
    page.get_by_text("no longer works").wait_for()
    link.refresh_from_db()
    assert link.revoked_at is not None
    assert no_sideways_scroll(page)
    assert not js_errors


def test_the_other_actions_work_on_the_phone_too(page, live_server, js_errors, settings):
    """New folder, copy, preview, the ⋮ menu, sharing with a person (change, revoke), a link revoked
    in the share dialog, emptying the trash, members (invite, role, remove) and buying a plan."""
    from files.models import Share

    settings.STRIPE_SECRET_KEY = ""  # local billing mode: a plan change applies at once
    page.set_viewport_size(VIEWPORTS["phone"])
    user = UserFactory(email="phone2@example.com")
    mate = UserFactory(email="mate@example.com")
    upload(user, "report.txt", b"the report")
    open_folder(page, live_server, user)
    bar = page.locator("#selection-bar")

    # New folder
    new_folder = page.get_by_role("button", name="New folder")
    assert within_screen(page, new_folder)
    new_folder.click()
    page.get_by_label("Name", exact=True).fill("Drafts")
    page.locator("#name-dialog").get_by_role("button", name="Create").click()
    row(page, "Drafts").wait_for()

    # The ⋮ menu opens on screen.
    row(page, "report.txt").get_by_role("button", name="More actions").click()
    menu = page.get_by_role("menu", name="Actions for report.txt")
    menu.wait_for()
    assert within_screen(page, menu)
    page.screenshot(path=str(ARTIFACTS / "phone-context-menu.png"))

    # Copy, from the menu
    menu.get_by_role("menuitem", name="Copy").click()
    picker = page.locator("#picker-dialog")
    picker.locator("#picker-list").get_by_role("button", name="Drafts").click()
    assert within_screen(page, picker.get_by_role("button", name="Copy here"))
    page.screenshot(path=str(ARTIFACTS / "phone-copy-dialog.png"))
    picker.get_by_role("button", name="Copy here").click()
    toast(page, "Copied").wait_for()
    assert node_at(user, "/Drafts/report.txt") is not None and node_at(user, "/report.txt") is not None

    # Preview: a tap on the name
    page.locator("#listing").get_by_role("button", name="report.txt", exact=True).click()
    preview = page.locator("#preview-dialog")
    preview.locator(".preview-text").get_by_text("the report").wait_for()
    assert within_screen(page, preview.get_by_role("link", name="Download"))
    page.screenshot(path=str(ARTIFACTS / "phone-preview.png"))
    preview.get_by_role("button", name="Close").click()

    # Share with a person, change what they may do, revoke; a link made and revoked in the dialog.
    row(page, "report.txt").locator("td").nth(2).click()
    bar.get_by_role("button", name="Share").click()
    share = page.locator("#share-dialog")
    share.get_by_label("E-mail address").fill(mate.email)
    share.get_by_role("button", name="Share", exact=True).click()
    person = share.locator(f".share-row[data-email='{mate.email}']")
    person.wait_for()
    person.get_by_label(f"Permission of {mate.email}").select_option("edit")
    toast(page, f"{mate.email} can now edit.").wait_for()
    assert Share.objects.get(user=mate).permission == "edit"
    share.get_by_role("button", name="Create link").click()
    share.locator(".link-url").wait_for()
    for control in (
        person.get_by_role("button", name=f"Revoke access of {mate.email}"),
        share.get_by_role("button", name="Revoke link"),
    ):
        assert within_screen(page, control)
    page.screenshot(path=str(ARTIFACTS / "phone-share-dialog.png"), full_page=True)
    assert page.locator("#notices .msg").count() == 2  # five quick notices: the newest two stay
    person.get_by_role("button", name=f"Revoke access of {mate.email}").click()
    share.get_by_text("Not shared with anyone yet.").wait_for()
    assert not Share.objects.filter(user=mate).exists()
    share.get_by_role("button", name="Revoke link").click()
    share.get_by_text("No public links.").wait_for()
    share.get_by_role("button", name="Close").click()

    # Empty the trash
    row(page, "Drafts").get_by_role("button", name="More actions").click()
    page.get_by_role("menuitem", name="Delete").click()
    page.locator("#confirm-dialog").get_by_role("button", name="Delete").click()
    row(page, "Drafts").wait_for(state="detached")
    page.goto(f"/app/w/{personal_workspace(user).pk}/trash/")
    page.locator("#trash [data-name='Drafts']").wait_for()
    empty = page.get_by_role("button", name="Empty the trash")
    assert within_screen(page, empty)
    empty.click()
    page.locator("#confirm-dialog").get_by_role("button", name="Empty the trash").click()
    page.locator("#trash").get_by_text("The trash is empty.").wait_for()

    # Members: invite, change a role, remove
    team = team_workspace(user, "Field team", members={mate: "member"})
    page.goto(f"/app/workspaces/{team.pk}/")
    page.get_by_label("E-mail address").fill("newcomer@example.com")
    page.get_by_role("button", name="Send invitation").click()
    page.get_by_text("newcomer@example.com as member").wait_for()
    page.get_by_label(f"Role of {mate.email}", exact=True).select_option("viewer")
    change = page.get_by_role("button", name=f"Change the role of {mate.email}")
    assert within_screen(page, change)
    change.click()
    page.wait_for_load_state()
    assert team.memberships.get(user=mate).role == "viewer"
    remove = page.get_by_role("button", name=f"Remove {mate.email}")
    assert within_screen(page, remove)
    page.screenshot(path=str(ARTIFACTS / "phone-members.png"), full_page=True)
    remove.click()
    page.wait_for_load_state()
    assert not team.memberships.filter(user=mate).exists()
    assert no_sideways_scroll(page)

    # Plan: buy more space (local billing mode)
    page.goto(f"/app/workspaces/{team.pk}/plan/")
    buy = page.get_by_role("button", name="Buy")
    assert within_screen(page, buy)
    buy.click()
    page.get_by_role("heading", name="Change the size").wait_for()
    team.refresh_from_db()
    assert team.plan_gb == 10
    assert not js_errors


# ---- interaction --------------------------------------------------------------------------------


def test_context_menu_and_keyboard(page, live_server, view, js_errors):
    from files.folders import folder_create

    user = UserFactory(email="keys@example.com")
    folder = folder_create(user=user, parent=root_of(user), name="Folder")
    for name in ("a.txt", "b.txt", "c.txt"):
        upload(user, name, name.encode())
    open_folder(page, live_server, user)

    # Right-click (desktop) and the ⋮ button (both) open the same menu.
    if view == "desktop":
        row(page, "a.txt").locator("td").nth(2).click(button="right")
    else:
        row(page, "a.txt").get_by_role("button", name="More actions").click()
    menu = page.get_by_role("menu", name="Actions for a.txt")
    menu.wait_for()
    labels = menu.get_by_role("menuitem").all_inner_texts()
    assert labels == ["Preview", "Download", "Details", "Add star", "Rename", "Move", "Copy", "Share", "Delete"]
    menu.get_by_role("menuitem", name="Add star").click()
    toast(page, "Starred “a.txt”.").wait_for()
    row(page, "a.txt").get_by_role("button", name="Star a.txt", pressed=True).wait_for()
    row(page, "a.txt").get_by_role("button", name="More actions").click()
    menu.get_by_role("menuitem", name="Rename").click()
    page.get_by_label("Name", exact=True).fill("a2.txt")
    page.locator("#name-dialog").get_by_role("button", name="Rename").click()
    row(page, "a2.txt").wait_for()

    # Ctrl adds to the selection, Shift extends it.
    row(page, "a2.txt").locator("td").nth(2).click()
    row(page, "c.txt").locator("td").nth(2).click(modifiers=["Control"])
    assert page.locator("#selection-count").inner_text() == "2 items selected"
    row(page, "a2.txt").locator("td").nth(2).click()
    row(page, "c.txt").locator("td").nth(2).click(modifiers=["Shift"])
    assert page.locator("#selection-count").inner_text() == "3 items selected"

    # Keyboard: arrows move the selection, F2 renames, Delete asks, Enter opens.
    row(page, "Folder").focus()
    page.keyboard.press("ArrowDown")
    assert page.locator("#selection-count").inner_text() == "1 item selected"
    assert "selected" in row(page, "a2.txt").get_attribute("class")
    page.keyboard.press("F2")
    page.locator("#name-dialog[open]").wait_for()
    assert page.get_by_label("Name", exact=True).input_value() == "a2.txt"
    page.keyboard.press("Escape")
    row(page, "a2.txt").focus()
    page.keyboard.press("Shift+ArrowDown")
    assert page.locator("#selection-count").inner_text() == "2 items selected"
    page.keyboard.press("Delete")
    page.locator("#confirm-dialog[open]").get_by_text("2 items will be moved to the trash.").wait_for()
    page.keyboard.press("Escape")
    page.goto("/app/starred/")
    page.locator("#starred[aria-busy='false']").get_by_role("link", name="a2.txt").wait_for()
    page.go_back()
    page.locator("#listing[aria-busy='false']").wait_for()
    row(page, "Folder").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(f"/f/{folder.pk}/"))
    page.get_by_text("This folder is empty.").wait_for()
    assert not js_errors


def test_star_from_the_list_the_grid_the_details_and_the_starred_view(page, live_server, view, js_errors):
    from files.folders import folder_create
    from files.models import Star

    user = UserFactory(email="stars@example.com")
    folder_create(user=user, parent=root_of(user), name="Projects")
    upload(user, "notes.txt", b"notes")
    open_folder(page, live_server, user)

    def starred() -> set[str]:
        return set(Star.objects.filter(user=user).values_list("node__name", flat=True))

    # List: every row has its star, on screen on the phone too; a tap stars, the row says so.
    star = row(page, "notes.txt").get_by_role("button", name="Star notes.txt")
    assert star.get_attribute("aria-pressed") == "false" and within_screen(page, star)
    star.click()
    toast(page, "Starred “notes.txt”.").wait_for()
    row(page, "notes.txt").get_by_role("button", name="Star notes.txt", pressed=True).wait_for()
    assert starred() == {"notes.txt"}
    assert page.locator("#selection-bar").is_hidden()  # starring is not selecting

    # Grid: the same toggle on each tile.
    page.get_by_role("button", name="Grid").click()
    tile = page.locator(".tile[data-name='Projects']")
    tile.get_by_role("button", name="Star Projects").click()
    tile.get_by_role("button", name="Star Projects", pressed=True).wait_for()
    assert within_screen(page, tile.get_by_role("button", name="Star Projects"))
    assert starred() == {"notes.txt", "Projects"}
    page.screenshot(path=str(ARTIFACTS / f"stars-grid-{view}.png"), full_page=True)

    # Details panel: shows the state and changes it; the tile follows.
    page.locator(".tile[data-name='notes.txt']").get_by_role("button", name="More actions").click()
    page.get_by_role("menuitem", name="Details").click()
    in_details = page.locator("#details").get_by_role("button", name="Star notes.txt", pressed=True)
    in_details.wait_for()
    assert "null" not in page.locator("#details").inner_text()  # a file with no thumbnail
    in_details.click()
    page.locator("#details").get_by_role("button", name="Star notes.txt", pressed=False).wait_for()
    page.locator(".tile[data-name='notes.txt']").get_by_role("button", name="Star notes.txt", pressed=False).wait_for()
    assert starred() == {"Projects"}
    page.screenshot(path=str(ARTIFACTS / f"stars-details-{view}.png"), full_page=True)

    # Starred view: a star there takes the item off the list, with Undo.
    page.goto("/app/starred/")
    listed = page.locator("#starred[aria-busy='false'] tr[data-name='Projects']")
    listed.wait_for()
    assert within_screen(page, listed.get_by_role("button", name="Star Projects"))
    listed.get_by_role("button", name="Star Projects").click()
    page.locator("#starred").get_by_text("Nothing starred yet.").wait_for()
    assert starred() == set()
    toast(page, "Removed the star from “Projects”.").get_by_role("button", name="Undo").click()
    page.locator("#starred tr[data-name='Projects']").wait_for()
    assert starred() == {"Projects"}
    assert not js_errors


def test_undo_a_move_and_a_delete(page, live_server, view, js_errors):
    from files.folders import folder_create

    user = UserFactory(email="undo@example.com")
    folder_create(user=user, parent=root_of(user), name="Box")
    original = upload(user, "plan.txt", b"plan")
    open_folder(page, live_server, user)

    row(page, "plan.txt").get_by_role("button", name="More actions").click()
    page.get_by_role("menuitem", name="Move").click()
    page.locator("#picker-list").get_by_role("button", name="Box").click()
    page.get_by_role("button", name="Move here").click()
    row(page, "plan.txt").wait_for(state="detached")
    assert node_at(user, "/Box/plan.txt") is not None
    toast(page, "Moved 1 item.").get_by_role("button", name="Undo").click()
    row(page, "plan.txt").wait_for()
    assert node_at(user, "/plan.txt").pk == original.pk

    row(page, "plan.txt").get_by_role("button", name="More actions").click()
    page.get_by_role("menuitem", name="Delete").click()
    page.locator("#confirm-dialog").get_by_role("button", name="Delete").click()
    row(page, "plan.txt").wait_for(state="detached")
    assert node_at(user, "/plan.txt") is None
    toast(page, "Moved 1 item to the trash.").get_by_role("button", name="Undo").click()
    row(page, "plan.txt").wait_for()
    toast(page, "Restored 1 item.").wait_for()
    assert node_at(user, "/plan.txt").pk == original.pk
    assert not js_errors


def test_upload_of_an_existing_name_asks_replace_or_keep_both(page, live_server, view, js_errors, tmp_path):
    user = UserFactory(email="conflict@example.com")
    upload(user, "budget.csv", b"a,b\n1,2\n")
    open_folder(page, live_server, user)
    newer = tmp_path / "budget.csv"
    newer.write_bytes(b"a,b\n3,4\n")

    page.locator("#pick-files").set_input_files(str(newer))
    dialog = page.locator("#conflict-dialog")
    dialog.get_by_role("heading", name="“budget.csv” already exists here").wait_for()
    page.screenshot(path=str(ARTIFACTS / f"conflict-prompt-{view}.png"))
    dialog.get_by_role("button", name="Keep both").click()
    copy = page.locator("#listing [data-name^='budget (conflicted copy ']")
    copy.wait_for()
    assert re.fullmatch(r"budget \(conflicted copy \d{4}-\d\d-\d\d \d{4}\)\.csv", copy.get_attribute("data-name"))
    assert node_at(user, "/budget.csv").version == 1

    page.locator("#pick-files").set_input_files(str(newer))
    dialog.get_by_role("button", name="Replace (new version)").click()
    # Both uploads listed as done in the panel (the listing's earlier toast may still show).
    wait_until(
        page,
        "() => document.querySelectorAll('#upload-list .upload-item').length === 2 && document.querySelector('#upload-total-text').textContent === '100%'",
    )
    assert node_at(user, "/budget.csv").version == 2
    assert page.locator("#listing [data-name^='budget']").count() == 2
    # Done: the upload panel folds to its title line, off the listing.
    page.locator("#uploads.collapsed").wait_for()
    assert page.locator("#upload-list").is_hidden()
    assert not js_errors


def test_upload_never_overwrites_a_change_made_after_the_listing(page, live_server, view, js_errors, tmp_path):
    """Replace replaces the version the person saw (If-Match), a new name stays new (If-None-Match):
    what someone else wrote meanwhile is kept, and the upload says why it failed."""
    user = UserFactory(email="race@example.com")
    upload(user, "budget.csv", b"v1")
    open_folder(page, live_server, user)
    # Both land after the listing was loaded: the page still shows budget.csv v1 and no notes.txt.
    upload(user, "budget.csv", b"theirs")
    upload(user, "notes.txt", b"their notes")
    mine = tmp_path / "budget.csv"
    mine.write_bytes(b"mine")
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"my notes")

    # Both in one pick: the page refreshes its listing after an upload ends, and would then know.
    page.locator("#pick-files").set_input_files([str(mine), str(notes)])
    dialog = page.locator("#conflict-dialog")
    dialog.get_by_role("heading", name="“budget.csv” already exists here").wait_for()
    dialog.get_by_role("button", name="Replace (new version)").click()
    wait_until(page, "() => document.querySelectorAll('#upload-list .upload-item.failed').length === 2")
    assert "changed since you read it" in page.locator("#upload-list [data-path='budget.csv']").inner_text()
    assert "already exists" in page.locator("#upload-list [data-path='notes.txt']").inner_text()
    page.screenshot(path=str(ARTIFACTS / f"upload-race-refused-{view}.png"))

    budget, their_notes = node_at(user, "/budget.csv"), node_at(user, "/notes.txt")
    assert budget.version == 2 and budget.sha256 == hashlib.sha256(b"theirs").hexdigest()
    assert their_notes.version == 1 and their_notes.sha256 == hashlib.sha256(b"their notes").hexdigest()
    assert not js_errors


# ---- thumbnails and previews -------------------------------------------------------------------


def test_thumbnails_in_the_grid_and_on_a_public_folder_link(page, live_server, view, js_errors, tmp_path):
    from files.access import node_get_for_user
    from files.links import link_create

    user = UserFactory(email="pictures@example.com")
    open_folder(page, live_server, user)
    picture = tmp_path / "meadow.png"
    picture.write_bytes(png())
    page.locator("#pick-files").set_input_files(str(picture))  # the worker makes the thumbnail
    row(page, "meadow.png").wait_for()
    page.get_by_role("button", name="Grid").click()
    thumb = page.locator(".tile[data-name='meadow.png'] .thumb img")
    thumb.wait_for()
    assert "/app/thumbnail/" in thumb.get_attribute("src")
    wait_until(page, "() => document.querySelector(\".tile[data-name='meadow.png'] .thumb img\").naturalWidth === 320")

    row(page, "meadow.png").get_by_role("button", name="More actions").click()
    page.get_by_role("menuitem", name="Details").click()
    wait_until(page, "() => document.querySelector('#details img.details-thumb')?.naturalWidth === 320")
    page.get_by_role("button", name="List").click()

    link = link_create(actor=user, node=node_get_for_user(user=user, node_id=root_of(user).pk))
    anonymous = page.context.browser.new_context(base_url=live_server.url, viewport=VIEWPORTS[view])
    public = anonymous.new_page()
    public.goto(f"/s/{link.token}")
    wait_until(public, "() => document.querySelector('img.thumb-small')?.naturalWidth === 320")
    public.screenshot(path=str(ARTIFACTS / f"public-folder-thumbnails-{view}.png"), full_page=True)
    anonymous.close()
    assert not js_errors


RECORD_VIDEO = """async () => {
  const canvas = document.createElement("canvas");
  canvas.width = 160; canvas.height = 120;
  const g = canvas.getContext("2d");
  const recorder = new MediaRecorder(canvas.captureStream(25), { mimeType: "video/webm" });
  const parts = [];
  recorder.ondataavailable = (e) => parts.push(e.data);
  const stopped = new Promise((resolve) => (recorder.onstop = resolve));
  recorder.start();
  for (let i = 0; i < 30; i++) {
    g.fillStyle = `hsl(${i * 12}, 80%, 50%)`; g.fillRect(0, 0, 160, 120);
    await new Promise((r) => setTimeout(r, 40));
  }
  recorder.stop();
  await stopped;
  const bytes = new Uint8Array(await new Blob(parts).arrayBuffer());
  let text = ""; for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text);
}"""


def test_a_video_plays_in_the_preview_with_range_requests(page, live_server, view, js_errors):
    """The video is made by the browser's own encoder (MediaRecorder): no fixture, no ffmpeg."""
    from files.access import node_get_for_user
    from files.links import link_create

    page.goto("/")
    video = base64.b64decode(page.evaluate(RECORD_VIDEO))
    assert video[:4] == b"\x1a\x45\xdf\xa3"  # a WebM (Matroska) header
    user = UserFactory(email="film@example.com")
    node = upload(user, "clip.webm", video)
    assert node.current_version.mime_type == "video/webm"

    ranges: list[tuple[str, int]] = []
    page.on(
        "response",
        lambda r: ranges.append((r.request.headers.get("range", ""), r.status)) if "/preview" in r.url else None,
    )
    open_folder(page, live_server, user)
    page.locator("#listing").get_by_role("button", name="clip.webm", exact=True).click()
    player = page.locator("#preview-body video")
    player.wait_for()
    page.evaluate("() => { const v = document.querySelector('#preview-body video'); v.muted = true; return v.play(); }")
    wait_until(page, "() => document.querySelector('#preview-body video').currentTime > 0.2")
    assert any(header.startswith("bytes=") and status == 206 for header, status in ranges), ranges
    page.screenshot(path=str(ARTIFACTS / f"video-preview-{view}.png"))
    page.keyboard.press("Escape")

    # The same on the file's public link page, for someone not logged in.
    link = link_create(actor=user, node=node_get_for_user(user=user, node_id=node.pk))
    ranges.clear()
    page.context.clear_cookies()
    page.goto(f"/s/{link.token}")
    page.evaluate(
        "() => { const v = document.querySelector('.public-preview video'); v.muted = true; return v.play(); }"
    )
    wait_until(page, "() => document.querySelector('.public-preview video').currentTime > 0.2")
    assert any(header.startswith("bytes=") and status == 206 for header, status in ranges), ranges
    link.refresh_from_db()
    assert link.download_count == 0  # watching is not downloading
    assert not js_errors


def test_an_unknown_link_shows_the_sites_page_not_a_debug_page(page, live_server, view, settings):
    settings.DEBUG = True
    response = page.goto("/s/not-a-real-link")
    assert response.status == 404
    page.get_by_role("heading", name="This page does not exist").wait_for()
    body = page.content()
    assert "URLconf" not in body and "Technical" not in body and "DEBUG = True" not in body
    client = Client()
    assert client.get("/s/not-a-real-link/download").status_code == 404
