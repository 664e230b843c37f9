"""Public links in a real browser: the password form and download for a logged-out visitor, and the
owner revoking the link from the "Links & activity" page. Screenshots via tests/e2e/conftest.py."""

from __future__ import annotations

import pytest
from django.test import Client

from files.links import link_create
from files.models import Node, PublicLink
from files.uploads import file_upload
from tests.factories import PASSWORD, UserFactory, local_disks, personal_workspace

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def disks(settings):
    settings.CLOUDSTORAGE_CHUNK_AVG = 64 * 1024
    return local_disks(settings, categories="A", capacity_mb=64)


def shared_file(owner, name: str, data: bytes, **link_fields) -> PublicLink:
    root = Node.objects.get(workspace=personal_workspace(owner), parent__isnull=True)
    node = file_upload(user=owner, parent=root, name=name, stream=[data]).node
    node.permission = "manage"
    return link_create(actor=owner, node=node, **link_fields)


def test_password_protected_link_opens_and_downloads_for_a_logged_out_visitor(page):
    owner = UserFactory()
    link = shared_file(owner, "minutes.txt", b"the minutes of the meeting", password="blue heron 7")

    page.goto(f"/s/{link.token}")
    assert "minutes.txt" not in page.content()
    page.get_by_label("Password").fill("red heron")
    page.get_by_role("button", name="Open").click()
    page.get_by_role("alert").filter(has_text="Wrong password").wait_for()
    page.get_by_label("Password").fill("blue heron 7")
    page.get_by_role("button", name="Open").click()
    page.get_by_role("heading", name="minutes.txt").wait_for()

    with page.expect_download() as info:
        page.get_by_role("link", name="Download").click()
    download = info.value
    assert download.suggested_filename == "minutes.txt"
    with open(download.path(), "rb") as saved:
        assert saved.read() == b"the minutes of the meeting"


def test_owner_revokes_a_link_from_the_links_page_and_it_stops_working(page, live_server):
    owner = UserFactory()
    link = shared_file(owner, "plan.pdf", b"%PDF plan")
    client = Client()
    assert client.login(email=owner.email, password=PASSWORD)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )

    page.goto(f"/app/w/{personal_workspace(owner).pk}/links/")
    page.get_by_role("button", name="Revoke the link to /plan.pdf").click()
    page.get_by_text("no longer works").wait_for()

    assert PublicLink.objects.get(pk=link.pk).revoked_at is not None
    assert Client().get(f"/s/{link.token}").status_code == 410
