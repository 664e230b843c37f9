"""Dashboard pages: who may open them, what they render, and the inline preview's safety."""

from __future__ import annotations

import io

import pytest
from django.test import Client

from files.folders import folder_create
from files.models import Share
from files.uploads import file_upload
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def _login(user) -> Client:
    client = Client()
    assert client.login(email=user.email, password=PASSWORD)
    return client


def test_landing_page_shows_price_per_gb_from_settings(client, settings):
    settings.BILLING_PRICE_PER_GB_CENTS = 35
    settings.BILLING_CURRENCY = "eur"
    body = client.get("/").content.decode()
    assert "0.35 EUR per GB" in body
    assert "3.50 EUR" in body  # the 10 GB plan
    assert "35.00 EUR" in body  # the 100 GB plan


def test_files_home_redirects_to_personal_root(owner, root):
    response = _login(owner).get("/app/files/", follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == f"/app/w/{root.workspace_id}/f/{root.pk}/"
    assert b'id="browser"' in response.content


def test_folder_page_has_breadcrumbs_and_csrf_meta(owner, root):
    docs = folder_create(user=owner, parent=root, name="Docs")
    sub = folder_create(user=owner, parent=docs, name="2026")
    body = _login(owner).get(f"/app/w/{root.workspace_id}/f/{sub.pk}/").content.decode()
    assert 'name="csrf-token"' in body
    assert f'href="/app/w/{root.workspace_id}/f/{docs.pk}/">Docs</a>' in body
    assert '<span aria-current="page">2026</span>' in body


@pytest.mark.parametrize("page", ["f/{root}/", "trash/", "search/", "usage/", ""])
def test_outsider_gets_404_on_workspace_pages(outsider, root, page):
    url = f"/app/w/{root.workspace_id}/" + page.format(root=root.pk)
    assert _login(outsider).get(url).status_code == 404


def test_folder_of_another_workspace_in_url_is_404(owner, outsider, root):
    from tests.factories import personal_workspace

    other = personal_workspace(outsider)
    assert _login(owner).get(f"/app/w/{other.pk}/f/{root.pk}/").status_code == 404


def test_shared_folder_opens_for_recipient_without_revealing_parents(owner, outsider, root):
    secret = folder_create(user=owner, parent=root, name="Secret parent")
    shared = folder_create(user=owner, parent=secret, name="Shared here")
    Share.objects.create(workspace=root.workspace, node=shared, user=outsider, permission="view", created_by=owner)
    client = _login(outsider)
    response = client.get(f"/app/open/{shared.pk}/", follow=True)
    assert response.status_code == 200
    body = response.content.decode()
    assert "Shared here" in body
    assert "Secret parent" not in body
    assert 'data-can-edit="0"' in body
    assert client.get(f"/app/w/{root.workspace_id}/f/{secret.pk}/").status_code == 404


def test_pages_need_login(client, root):
    response = client.get(f"/app/w/{root.workspace_id}/f/{root.pk}/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_preview_streams_images_inline_in_a_sandbox(owner, root):
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
    version = file_upload(user=owner, parent=root, name="pic.png", stream=io.BytesIO(png))
    response = _login(owner).get(f"/app/preview/{version.node_id}/")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"] == "inline"
    assert "sandbox" in response["Content-Security-Policy"]
    assert b"".join(response.streaming_content) == png


def test_preview_never_serves_html_as_html(owner, root):
    version = file_upload(user=owner, parent=root, name="page.html", stream=io.BytesIO(b"<script>alert(1)</script>"))
    response = _login(owner).get(f"/app/preview/{version.node_id}/")
    assert response["Content-Type"] == "text/plain; charset=utf-8"


def test_preview_outsider_gets_404(owner, outsider, root):
    version = file_upload(user=owner, parent=root, name="a.txt", stream=io.BytesIO(b"hello"))
    assert _login(outsider).get(f"/app/preview/{version.node_id}/").status_code == 404


def test_workspace_switcher_redirects_only_to_own_workspaces(owner, outsider, root, team):
    client = _login(owner)
    response = client.get("/app/switch/", {"workspace": str(team.pk)})
    assert response.status_code == 302
    assert response["Location"] == f"/app/w/{team.pk}/"
    from tests.factories import personal_workspace

    assert client.get("/app/switch/", {"workspace": str(personal_workspace(outsider).pk)}).status_code == 404


def test_settings_page_links_email_password_and_tokens(owner):
    body = _login(owner).get("/app/settings/").content.decode()
    for url in ("/accounts/email/", "/accounts/password/change/", "/app/tokens/"):
        assert url in body


def test_pdf_preview_may_be_framed_by_our_own_pages_only(owner, root):
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    version = file_upload(user=owner, parent=root, name="doc.pdf", stream=io.BytesIO(pdf))
    response = _login(owner).get(f"/app/preview/{version.node_id}/")
    assert response["Content-Type"] == "application/pdf"
    assert response["X-Frame-Options"] == "SAMEORIGIN"


def test_preview_of_unknown_binary_is_refused(owner, root):
    version = file_upload(user=owner, parent=root, name="blob.bin", stream=io.BytesIO(b"\x00\x01\x02" * 10))
    assert _login(owner).get(f"/app/preview/{version.node_id}/").status_code == 415


def test_open_outsider_gets_404(owner, outsider, root):
    docs = folder_create(user=owner, parent=root, name="Docs")
    assert _login(outsider).get(f"/app/open/{docs.pk}/").status_code == 404


def test_viewer_gets_a_read_only_browser(owner, outsider, team):
    from accounts.models import Membership
    from files.models import Node

    Membership.objects.create(workspace=team, user=outsider, role="viewer")
    team_root = Node.objects.get(workspace=team, parent__isnull=True)
    body = _login(outsider).get(f"/app/w/{team.pk}/f/{team_root.pk}/").content.decode()
    assert 'data-can-edit="0"' in body
    assert "New folder" not in body and "Upload files" not in body
    assert "Download as zip" in body


def test_preview_of_a_file_with_every_copy_lost_is_a_clear_503(owner, root):
    from disks.models import Replica

    version = file_upload(user=owner, parent=root, name="gone.txt", stream=io.BytesIO(b"lost bytes"))
    Replica.objects.update(state=Replica.State.BAD)
    response = _login(owner).get(f"/app/preview/{version.node_id}/")
    assert response.status_code == 503
    assert b"cannot be read" in response.content


def test_home_takes_a_logged_in_person_to_their_files(owner, root):
    client = Client()
    client.force_login(owner)
    response = client.get("/", follow=True)
    assert response.redirect_chain[-1][0] == f"/app/w/{root.workspace_id}/f/{root.pk}/"
    assert response.status_code == 200
