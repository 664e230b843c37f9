"""One navigation: every page of a logged-in person has the dashboard's side menu (the account pages
of allauth too), with the same sections on pages that belong to no workspace."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from files.models import Node
from tests.factories import PASSWORD, personal_workspace

pytestmark = pytest.mark.django_db

ACCOUNT_PAGES = [
    "/accounts/email/",
    "/accounts/password/change/",
    "/accounts/reauthenticate/",
    "/accounts/2fa/",
    "/app/settings/",
    "/app/tokens/",
    "/app/starred/",
    "/app/shared/",
]


def _login(user) -> Client:
    client = Client()
    assert client.login(email=user.email, password=PASSWORD)
    return client


def _menu(body: str) -> str:
    match = re.search(r'<aside class="sidebar" id="side-menu".*?</aside>', body, re.S)
    assert match, "no side menu on the page"
    return match.group(0)


def _current(menu: str) -> list[str]:
    return re.findall(r'aria-current="page">([^<]+)</a>', menu)


@pytest.mark.parametrize("url", ACCOUNT_PAGES)
def test_account_pages_keep_the_side_menu_with_the_workspace_sections(owner, url):
    workspace = personal_workspace(owner)
    response = _login(owner).get(url)
    assert response.status_code == 200
    menu = _menu(response.content.decode())
    # Files, Trash, Plan... of the personal workspace, even on a page of no workspace.
    assert f'href="/app/w/{workspace.pk}/"' in menu
    assert f'href="/app/w/{workspace.pk}/trash/"' in menu
    assert f'href="/app/workspaces/{workspace.pk}/plan/"' in menu
    assert f'value="{workspace.pk}" selected' in menu
    expected = {"/app/tokens/": "API tokens", "/app/starred/": "Starred", "/app/shared/": "Shared with me"}
    assert _current(menu) == [expected.get(url, "Settings")]


def test_the_menu_follows_the_workspace_last_opened(owner, team):
    client = _login(owner)
    assert client.get(f"/app/w/{team.pk}/trash/").status_code == 200
    menu = _menu(client.get("/accounts/password/change/").content.decode())
    assert f'href="/app/w/{team.pk}/trash/"' in menu
    assert f'value="{team.pk}" selected' in menu
    assert f'href="/app/w/{team.pk}/links/"' in menu  # the owner manages it: Links & activity


def test_a_member_who_does_not_manage_gets_no_links_section(teammate, team):
    client = _login(teammate)
    client.get(f"/app/w/{team.pk}/trash/")
    menu = _menu(client.get("/app/settings/").content.decode())
    assert f'href="/app/w/{team.pk}/trash/"' in menu
    assert "/links/" not in menu


def test_a_workspace_left_behind_is_not_offered(owner, outsider):
    """A last workspace the person no longer belongs to (or never did) falls back to their own."""
    client = _login(outsider)
    session = client.session
    session["last_workspace"] = str(personal_workspace(owner).pk)
    session.save()
    menu = _menu(client.get("/app/settings/").content.decode())
    assert str(personal_workspace(owner).pk) not in menu
    assert f'href="/app/w/{personal_workspace(outsider).pk}/"' in menu


def test_someone_elses_shared_folder_highlights_shared_with_me(owner, outsider):
    from files.access import node_get_for_user
    from files.folders import folder_create
    from files.sharing import share_create

    root = Node.objects.get(workspace=personal_workspace(owner), parent__isnull=True)
    folder = folder_create(user=owner, parent=root, name="Plans")
    share_create(
        actor=owner, node=node_get_for_user(user=owner, node_id=folder.pk), email=outsider.email, permission="view"
    )
    body = _login(outsider).get(f"/app/w/{folder.workspace_id}/f/{folder.pk}/").content.decode()
    assert _current(_menu(body)) == ["Shared with me"]


def test_pages_before_login_have_no_side_menu(client):
    for url in ("/accounts/login/", "/accounts/signup/", "/accounts/password/reset/"):
        body = client.get(url).content.decode()
        assert 'id="side-menu"' not in body, url
        assert "nav-toggle" not in body, url


def test_public_pages_of_a_logged_in_person_have_no_dead_menu_button(owner):
    body = _login(owner).get("/s/no-such-link").content.decode()
    assert "nav-toggle" not in body


def test_a_vault_page_shows_a_managers_sections_like_every_other_page(owner):
    from files.folders import folder_create
    from files.models import Vault

    workspace = personal_workspace(owner)
    root = Node.objects.get(workspace=workspace, parent__isnull=True)
    folder = folder_create(user=owner, parent=root, name="Private")
    vault = Vault.objects.create(
        node=folder,
        workspace=workspace,
        kdf={"name": "PBKDF2-SHA-256", "iterations": 600_000, "salt": "c2FsdA=="},
        wrapped_key="d3JhcHBlZA==",
        verifier="dmVyaWZpZXI=",
    )
    menu = _menu(_login(owner).get(f"/app/vaults/{vault.pk}/").content.decode())
    assert f'href="/app/w/{workspace.pk}/links/"' in menu  # Links & activity, as on the Files page
    assert _current(menu) == ["Files"]
