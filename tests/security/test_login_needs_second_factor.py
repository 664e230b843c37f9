"""With 2FA on, the password alone does not log in: not on the login form, not on the headless API."""

from __future__ import annotations

from django.test import Client

from tests.factories import PASSWORD, UserFactory, totp_code


def test_login_form_asks_for_the_code(db):
    user = UserFactory(mfa=True)
    client = Client()

    response = client.post("/accounts/login/", {"login": user.email, "password": PASSWORD})

    assert response["Location"] == "/accounts/2fa/authenticate/"
    assert client.get("/app/")["Location"].startswith("/accounts/login/")
    client.post("/accounts/2fa/authenticate/", {"code": totp_code(user.totp_secret)})
    assert client.get("/app/").status_code == 200


def test_headless_login_asks_for_the_code(db):
    user = UserFactory(mfa=True)
    client = Client()

    response = client.post(
        "/_allauth/app/v1/auth/login", {"email": user.email, "password": PASSWORD}, content_type="application/json"
    )

    assert response.status_code == 401
    pending = [flow for flow in response.json()["data"]["flows"] if flow.get("is_pending")]
    assert [flow["id"] for flow in pending] == ["mfa_authenticate"]
    assert "session_token" in response.json()["meta"]
    assert "access_token" not in response.json()["meta"]
