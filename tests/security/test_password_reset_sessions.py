"""A password reset ends every session of the account (browser sessions and allauth's headless app
sessions), the reset e-mail says so, and the settings page lists personal access tokens with their
last use so the user can revoke those they no longer trust (a reset leaves tokens alone)."""

from __future__ import annotations

import re

import pytest
from django.contrib.sessions.models import Session
from django.core import mail
from django.test import Client

from accounts.services import token_create
from tests.factories import PASSWORD, UserFactory

NEW_PASSWORD = "a-brand-new-password-7"


@pytest.fixture
def victim(db):
    return UserFactory(email="victim@example.com")


def _login(email: str) -> Client:
    browser = Client()
    response = browser.post("/accounts/login/", {"login": email, "password": PASSWORD})
    assert response.status_code == 302 and "_auth_user_id" in browser.session
    return browser


def _headless_session(email: str) -> str:
    response = Client().post(
        "/_allauth/app/v1/auth/login", {"email": email, "password": PASSWORD}, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    return response.json()["meta"]["session_token"]


def _reset(email: str, password: str) -> None:
    browser = Client()
    assert browser.post("/accounts/password/reset/", {"email": email}).status_code == 302
    link = re.search(r"http://\S+/accounts/password/reset/key/\S+/", mail.outbox[-1].body).group(0)
    response = browser.get(link.split("8000", 1)[1])
    assert response.status_code == 302
    response = browser.post(response["Location"], {"password1": password, "password2": password})
    assert response.status_code == 302


def _user_sessions(user) -> list[str]:
    return [s.session_key for s in Session.objects.all() if s.get_decoded().get("_auth_user_id") == str(user.pk)]


def test_password_reset_ends_every_session_of_the_account(victim, django_capture_on_commit_callbacks):
    laptop, phone = _login(victim.email), _login(victim.email)
    app_token = _headless_session(victim.email)
    bystander = UserFactory(email="bystander@example.com")
    other = _login(bystander.email)
    assert len(_user_sessions(victim)) >= 2

    with django_capture_on_commit_callbacks(execute=True):
        _reset(victim.email, NEW_PASSWORD)

    assert _user_sessions(victim) == []  # deleted from the store, not merely stale
    for browser in (laptop, phone):
        response = browser.get("/app/")
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    response = Client().get("/_allauth/app/v1/auth/session", HTTP_X_SESSION_TOKEN=app_token)
    assert response.status_code in (401, 410)
    assert other.get("/app/").status_code == 200  # other people's sessions are untouched
    assert Client().login(email=victim.email, password=NEW_PASSWORD)


def test_reset_mail_says_every_session_ends_and_points_to_the_tokens(victim):
    Client().post("/accounts/password/reset/", {"email": victim.email})
    body = mail.outbox[-1].body
    assert "signed out of every session" in body
    assert "/app/settings/" in body


def test_settings_page_lists_tokens_with_their_last_use(victim):
    issued = token_create(user=victim, name="build server")
    unused = token_create(user=victim, name="old laptop")
    response = Client().get("/api/v1/workspaces/", HTTP_AUTHORIZATION=f"Bearer {issued.raw}")
    assert response.status_code == 200
    browser = Client()
    browser.force_login(victim)
    page = browser.get("/app/settings/").content.decode()
    assert "build server" in page and "old laptop" in page
    row = re.search(r"<tr[^>]*>(?:(?!</tr>).)*build server.*?</tr>", page, re.S).group(0)
    assert "never" not in row and "last used" in page.lower()
    assert f"/app/tokens/{issued.token.pk}/revoke/" in page and f"/app/tokens/{unused.token.pk}/revoke/" in page


def test_password_change_keeps_this_browser_and_ends_the_others(victim, django_capture_on_commit_callbacks):
    here, elsewhere = _login(victim.email), _login(victim.email)
    with django_capture_on_commit_callbacks(execute=True):
        response = here.post(
            "/accounts/password/change/",
            {"oldpassword": PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
        )
    assert response.status_code == 302
    assert here.get("/app/").status_code == 200
    assert elsewhere.get("/app/").status_code == 302
    assert len(_user_sessions(victim)) == 1
