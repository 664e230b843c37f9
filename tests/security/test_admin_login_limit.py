"""Finding C: no rate limit on /admin/login/ (12 wrong operator passwords -> 200 each, then the
right one logged in), and the admin's 2FA requirement for operators.

The attacker here follows the admin's own login, wherever it leads, and posts the fields of both
Django's admin form (``username``) and allauth's (``login``).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.test import Client

from tests.factories import PASSWORD, UserFactory, totp_code

ADMIN = "/admin/"


@pytest.fixture
def operator(db):
    return UserFactory(email="operator@example.com", is_staff=True, is_superuser=True)


def _admin_login_form(client: Client) -> str:
    """Where the admin's login page leads: the path whose form takes the password."""
    response = client.get("/admin/login/?next=/admin/")
    if response.status_code in (301, 302):
        return response["Location"]
    return "/admin/login/?next=/admin/"


def _post_password(client: Client, url: str, password: str, *, remote: str):
    body = {"username": "operator@example.com", "login": "operator@example.com", "password": password}
    return client.post(url, {**body, "next": ADMIN}, REMOTE_ADDR=remote)


def _reaches_admin(client: Client) -> bool:
    return client.get(ADMIN).status_code == 200


def test_wrong_passwords_lock_the_admin_login(operator):
    client = Client()
    url = _admin_login_form(client)
    answers = [_post_password(client, url, f"wrong-{n}", remote=f"203.0.113.{n}") for n in range(12)]

    assert "Too many failed login attempts" in answers[-1].content.decode()
    # The right password no longer helps while the lock lasts, from any address.
    _post_password(client, url, PASSWORD, remote="192.0.2.50")
    assert not _reaches_admin(client)


def test_admin_login_form_logs_nobody_in_by_itself(operator):
    client = Client()

    response = _post_password(client, "/admin/login/?next=/admin/", PASSWORD, remote="192.0.2.1")

    assert response.status_code == 302
    assert urlsplit(response["Location"]).path == "/accounts/login/"
    assert not _reaches_admin(client)


def test_admin_login_goes_through_allauth_and_asks_for_the_code(operator):
    client = Client()
    url = _admin_login_form(client)
    assert urlsplit(url).path == "/accounts/login/"

    after_password = _post_password(client, url, PASSWORD, remote="192.0.2.1")
    assert urlsplit(after_password["Location"]).path == "/accounts/2fa/authenticate/"
    assert not _reaches_admin(client)

    after_code = client.post("/accounts/2fa/authenticate/", {"code": totp_code(operator.totp_secret)})
    assert after_code["Location"] == ADMIN
    assert _reaches_admin(client)


def test_staff_without_2fa_is_sent_to_enrol(db):
    clerk = UserFactory(email="clerk@example.com", is_staff=True, is_superuser=True, mfa=False)
    client = Client()
    client.force_login(clerk)

    response = client.get("/admin/disks/disk/", follow=True)

    # (then allauth asks for the password again: force_login recorded no recent login)
    assert [url for url, _ in response.redirect_chain][:2] == [
        "/admin/login/?next=/admin/disks/disk/",
        "/accounts/2fa/totp/activate/",
    ]
    assert "Operators must use two-factor authentication" in response.content.decode()


def test_a_logged_in_non_operator_is_refused_not_looped(owner):
    client = Client()
    client.force_login(owner)

    response = client.get(ADMIN, follow=True)

    assert response.status_code == 403
    assert len(response.redirect_chain) == 1


def test_the_next_address_must_stay_on_this_site(operator):
    client = Client()
    client.force_login(operator)

    response = client.get("/admin/login/?next=https://evil.example/")

    assert response["Location"] == ADMIN
