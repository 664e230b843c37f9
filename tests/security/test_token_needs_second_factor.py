"""2FA and the token endpoint: with two-factor authentication on, ``POST /api/v1/auth/token/`` must
not issue a token for the password alone; it also asks for ``code`` (a TOTP or a recovery code)."""

from __future__ import annotations

from django.test import Client

from accounts.models import ApiToken
from tests.factories import PASSWORD, UserFactory, totp_code

TOKEN_URL = "/api/v1/auth/token/"


def _issue(body: dict, *, remote: str = "198.51.100.1"):
    return Client().post(TOKEN_URL, body, content_type="application/json", REMOTE_ADDR=remote)


def test_password_alone_gets_no_token_for_an_account_with_2fa(db):
    user = UserFactory(mfa=True)

    response = _issue({"email": user.email, "password": PASSWORD})

    assert response.status_code == 401, response.content
    assert response.json()["error"]["code"] == "second_factor_required"
    assert not ApiToken.objects.exists()


def test_a_wrong_code_gets_no_token(db):
    user = UserFactory(mfa=True)

    response = _issue({"email": user.email, "password": PASSWORD, "code": "000000"})

    assert response.status_code == 401, response.content
    assert response.json()["error"]["code"] == "invalid_code"
    assert not ApiToken.objects.exists()


def test_a_code_without_the_right_password_gets_no_token(db):
    user = UserFactory(mfa=True)

    response = _issue({"email": user.email, "password": "wrong-password", "code": totp_code(user.totp_secret)})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_credentials"
    assert not ApiToken.objects.exists()


def test_password_and_totp_code_issue_a_token(db):
    user = UserFactory(mfa=True)

    response = _issue({"email": user.email, "password": PASSWORD, "code": totp_code(user.totp_secret)})

    assert response.status_code == 201, response.content
    assert ApiToken.objects.get().user == user


def test_a_totp_code_works_once(db):
    user = UserFactory(mfa=True)
    code = totp_code(user.totp_secret)

    assert _issue({"email": user.email, "password": PASSWORD, "code": code}).status_code == 201
    assert _issue({"email": user.email, "password": PASSWORD, "code": code}).status_code == 401
    assert ApiToken.objects.count() == 1


def test_a_recovery_code_issues_a_token_once(db):
    user = UserFactory(mfa=True)
    code = user.recovery_codes[0]

    assert _issue({"email": user.email, "password": PASSWORD, "code": code}).status_code == 201
    again = _issue({"email": user.email, "password": PASSWORD, "code": code})

    assert again.status_code == 401
    assert again.json()["error"]["code"] == "invalid_code"
    assert ApiToken.objects.count() == 1


def test_code_guessing_is_limited_whatever_the_address(db):
    user = UserFactory(mfa=True)
    for n in range(5):
        body = {"email": user.email, "password": PASSWORD, "code": f"{n:06}"}
        assert _issue(body, remote=f"198.51.100.{n + 10}").status_code == 401

    late = _issue({"email": user.email, "password": PASSWORD, "code": totp_code(user.totp_secret)}, remote="192.0.2.9")

    assert late.status_code == 429, late.content
    assert not ApiToken.objects.exists()


def test_an_account_without_2fa_still_needs_only_the_password(db):
    user = UserFactory()

    assert _issue({"email": user.email, "password": PASSWORD}).status_code == 201


def test_the_schema_documents_the_code_field(db):
    schema = Client().get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    token_in = schema["components"]["schemas"]["TokenIssueInRequest"]

    assert "code" in token_in["properties"]
    assert "two-factor" in token_in["properties"]["code"]["description"]
