"""Two-factor authentication end to end: enrol an authenticator app from Settings, log out, log in
with a TOTP code the test computes from the secret the page shows, then with a recovery code."""

from __future__ import annotations

import re

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes

from tests.e2e.conftest import ARTIFACTS
from tests.factories import PASSWORD, UserFactory, totp_code

pytestmark = pytest.mark.django_db(transaction=True)

EMAIL = "sam@example.com"


def _log_in_with_password(page):
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name=re.compile("Log in", re.I)).click()


def _log_out(page):
    page.get_by_role("button", name="Log out").first.click()
    page.wait_for_url(re.compile(r"/$"))


def _shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for label, width, height in [("desktop", 1366, 860), ("phone", 390, 844)]:
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(ARTIFACTS / f"mfa_{name}_{label}.png"), full_page=True)
        # Nothing may stick out sideways on either width.
        assert page.evaluate("document.documentElement.scrollWidth") <= width, label
    page.set_viewport_size({"width": 1280, "height": 800})


def test_enrol_totp_then_log_in_with_a_code_and_with_a_recovery_code(page):
    user = UserFactory(email=EMAIL)
    _log_in_with_password(page)
    page.wait_for_url(re.compile("/app/"))

    page.goto("/app/settings/")
    page.get_by_role("link", name="Set up two-factor authentication").click()
    # allauth asks for the password again before a change to the account's security.
    page.wait_for_url(re.compile("/accounts/reauthenticate/"))
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url(re.compile("/accounts/2fa/totp/activate/"))
    secret = page.get_by_label("Authenticator secret").input_value()
    assert page.get_by_role("img", name="QR code for your authenticator app").is_visible()
    _shoot(page, "enrol")

    page.get_by_label("Authenticator code").fill(totp_code(secret))
    page.get_by_role("button", name="Activate").click()
    page.wait_for_url(re.compile("/accounts/2fa/recovery-codes/"))
    _shoot(page, "recovery_codes")
    codes = RecoveryCodes(Authenticator.objects.get(user=user, type=Authenticator.Type.RECOVERY_CODES))
    unused = codes.get_unused_codes()
    assert unused[0] in page.content()

    page.goto("/app/settings/")
    assert "Logging in asks for a code" in page.get_by_role("region", name="Two-factor authentication").inner_text()
    _log_out(page)

    # Password, then the app's code (the next 30 s window: the enrolment used this one's code).
    _log_in_with_password(page)
    page.wait_for_url(re.compile("/accounts/2fa/authenticate/"))
    _shoot(page, "authenticate")
    page.get_by_placeholder("Code").fill(totp_code(secret, step=1))
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile("/app/"))
    _log_out(page)

    # A wrong code is refused; a recovery code works, once.
    _log_in_with_password(page)
    page.wait_for_url(re.compile("/accounts/2fa/authenticate/"))
    page.get_by_placeholder("Code").fill("00000000")
    page.get_by_role("button", name="Log in").click()
    page.get_by_text("Incorrect code").wait_for()
    page.get_by_placeholder("Code").fill(unused[0])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile("/app/"))
    codes.instance.refresh_from_db()
    assert unused[0] not in codes.get_unused_codes()
