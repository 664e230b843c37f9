"""A browser session alone minted a personal access token that outlives the session.

Tokens survive a password reset (the reset ends every session, not the tokens), so whoever held a
session cookie for a moment (stolen, or an unlocked laptop) turned it into lasting API and WebDAV
access by POSTing /app/tokens/: no password, no second factor, no recent login was asked for, while
POST /api/v1/auth/token/ asks for both (found by audit 2). Creating a token now goes through
allauth's reauthentication ("Confirm it is you"), which replays the form once the password is given.
"""

from __future__ import annotations

from django.test import Client

from accounts.models import ApiToken
from tests.factories import PASSWORD, UserFactory

REAUTHENTICATE = "/accounts/reauthenticate/"


def _session_of(user) -> Client:
    browser = Client()
    browser.force_login(user)  # a session cookie, with no record of a recent password or code
    return browser


def test_a_session_without_recent_password_cannot_mint_a_token(db):
    victim = UserFactory(email="victim@example.com", mfa=True)
    stolen = _session_of(victim)

    response = stolen.post("/app/tokens/", {"name": "backup"})

    assert response.status_code == 302 and response["Location"].startswith(REAUTHENTICATE), response
    assert not ApiToken.objects.filter(user=victim).exists()
    # A wrong password on the confirmation page creates nothing either.
    refused = stolen.post(response["Location"], {"password": "not-the-password"})
    assert refused.status_code == 200 and not ApiToken.objects.filter(user=victim).exists()


def test_the_password_confirms_and_the_token_is_made_and_shown_once(owner):
    browser = _session_of(owner)
    assert browser.get("/app/tokens/").status_code == 200  # the page itself asks for nothing

    asked = browser.post("/app/tokens/", {"name": "ci", "expires_in_days": "30"})
    confirmed = browser.post(asked["Location"], {"password": PASSWORD})

    assert confirmed.status_code == 302 and confirmed["Location"] == "/app/tokens/", confirmed
    token = ApiToken.objects.get(user=owner)
    assert token.name == "ci" and token.expires_at is not None
    page = browser.get("/app/tokens/")
    assert page.context["issued"]["name"] == "ci"
    assert page.context["issued"]["raw"].encode() in page.content


def test_a_confirmation_lasts_the_reauthentication_timeout(owner, settings):
    browser = _session_of(owner)
    browser.post(browser.post("/app/tokens/", {"name": "one"})["Location"], {"password": PASSWORD})

    # Within the timeout a second token needs no second confirmation ...
    assert browser.post("/app/tokens/", {"name": "two"})["Location"] == "/app/tokens/"
    # ... after it, the password is asked for again.
    settings.ACCOUNT_REAUTHENTICATION_TIMEOUT = 0
    assert browser.post("/app/tokens/", {"name": "three"})["Location"].startswith(REAUTHENTICATE)
    assert sorted(ApiToken.objects.filter(user=owner).values_list("name", flat=True)) == ["one", "two"]
