"""allauth's account pages speak the site's words (sentence case, "Log out"), from locale/en."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client
from django.utils import translation

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

PO = Path(__file__).resolve().parents[2] / "locale" / "en" / "LC_MESSAGES" / "django.po"


def test_the_compiled_catalogue_matches_the_po_file():
    """The committed .mo is the .po compiled: every word of the .po is what Django serves."""
    pairs = re.findall(r'^msgid "(.+)"\nmsgstr "(.+)"$', PO.read_text(), re.M)
    assert len(pairs) > 10
    with translation.override("en-us"):
        for msgid, msgstr in pairs:
            assert translation.gettext(msgid) == msgstr, f"{msgid!r}: compile locale/en again"


@pytest.mark.parametrize(
    "url, heading, gone",
    [
        ("/accounts/password/change/", "Change password", "Change Password"),
        ("/accounts/email/", "E-mail address", "Email Address"),
        ("/accounts/2fa/", "Two-factor authentication", "Two-Factor"),
        ("/accounts/reauthenticate/", "Confirm it is you", "Confirm Access"),
        ("/accounts/logout/", "Log out", "Sign Out"),
    ],
)
def test_account_pages_use_the_sites_words(owner, url, heading, gone):
    client = Client()
    assert client.login(email=owner.email, password=PASSWORD)
    body = client.get(url).content.decode()
    assert re.search(rf"<h1[^>]*>\s*{re.escape(heading)}\s*</h1>", body), body[:2000]
    assert gone not in body
