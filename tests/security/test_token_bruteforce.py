"""Finding B: unlimited password guessing on POST /api/v1/auth/token/.

The throttle keyed on a client-chosen X-Forwarded-For, and the endpoint called ``authenticate``
directly, so the per-account lock of the login form never applied.
"""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import ApiToken
from tests.factories import PASSWORD

TOKEN_URL = "/api/v1/auth/token/"


def _issue(client, email: str, password: str, *, forwarded_for: str | None = None, remote: str = "198.51.100.1"):
    extra = {"REMOTE_ADDR": remote}
    if forwarded_for:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return client.post(TOKEN_URL, {"email": email, "password": password}, content_type="application/json", **extra)


def test_guessing_with_a_new_forwarded_for_each_time_is_stopped(owner):
    client = Client()
    answers = [_issue(client, owner.email, f"wrong-{n}", forwarded_for=f"203.0.113.{n}").status_code for n in range(25)]

    assert answers.count(401) <= 5, answers
    assert set(answers[10:]) == {429}, answers
    # The right password no longer helps while the lock lasts.
    assert _issue(client, owner.email, PASSWORD, forwarded_for="192.0.2.77").status_code == 429
    assert not ApiToken.objects.exists()


def test_an_account_locked_by_the_login_form_cannot_get_a_token(owner):
    browser = Client()
    for n in range(5):
        browser.post("/accounts/login/", {"login": owner.email, "password": f"wrong-{n}"}, REMOTE_ADDR="192.0.2.1")
    locked = browser.post("/accounts/login/", {"login": owner.email, "password": PASSWORD}, REMOTE_ADDR="192.0.2.1")
    assert "Too many failed login attempts" in locked.content.decode()

    # From another address, so only the account's own lock can refuse it.
    response = _issue(Client(), owner.email, PASSWORD, remote="198.51.100.99")

    assert response.status_code == 429, response.content
    assert response.json()["error"]["code"] == "throttled"
    assert not ApiToken.objects.exists()


def test_failed_guesses_at_one_account_count_whatever_the_address(owner):
    for n in range(5):
        assert _issue(Client(), owner.email, f"wrong-{n}", remote=f"198.51.100.{n + 10}").status_code == 401

    assert _issue(Client(), owner.email, PASSWORD, remote="198.51.100.200").status_code == 429


@pytest.mark.parametrize("proxies", [0, 1])
def test_the_address_is_the_peer_unless_a_proxy_is_trusted(settings, owner, proxies):
    """Without a trusted proxy X-Forwarded-For is ignored (a client cannot pick its address); behind
    one, each real client has its own address, so one client's failures do not lock out others."""
    from django.test import RequestFactory

    from cloudstorage.client_address import client_address

    settings.ALLAUTH_TRUSTED_PROXY_COUNT = proxies
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.8")

    assert client_address(request) == ("10.0.0.5" if proxies == 0 else "203.0.113.8")
