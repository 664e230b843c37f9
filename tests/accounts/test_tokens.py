from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import ApiToken, token_digest
from accounts.services import token_create
from tests.factories import PASSWORD


def _bearer(raw: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def test_token_issued_once_and_stored_hashed(anon_api, owner):
    response = anon_api.post(
        "/api/v1/auth/token/", {"email": owner.email, "password": PASSWORD, "name": "laptop"}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    raw = body["token"]
    token = ApiToken.objects.get(pk=body["id"])
    assert token.name == "laptop"
    assert token.token_hash == token_digest(raw) and raw not in token.token_hash
    # Listing never shows the value again.
    listed = anon_api.get("/api/v1/auth/tokens/", **_bearer(raw)).json()
    assert [t["id"] for t in listed] == [body["id"]]
    assert "token" not in listed[0]


@pytest.mark.parametrize(
    "payload",
    [
        {"email": "owner@example.com", "password": "wrong-password"},
        {"email": "nobody@example.com", "password": PASSWORD},
    ],
)
def test_wrong_credentials_get_one_answer(anon_api, owner, payload):
    response = anon_api.post("/api/v1/auth/token/", payload, format="json")
    assert response.status_code == 401
    assert response.json()["error"] == {
        "code": "invalid_credentials",
        "message": "Wrong e-mail or password.",
        "details": {},
    }
    assert ApiToken.objects.count() == 0


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"email": "owner@example.com"},
        {"email": "not-mail", "password": "x"},
        {"email": "owner@example.com", "password": PASSWORD, "expires_at": "2001-01-01T00:00:00Z"},
    ],
)
def test_bad_token_requests_are_refused_and_change_nothing(anon_api, owner, payload):
    response = anon_api.post("/api/v1/auth/token/", payload, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["message"]
    assert ApiToken.objects.count() == 0


def test_revoked_token_gets_401(api, owner):
    issued = token_create(user=owner, name="to revoke")
    client = Client()
    assert client.get("/api/v1/workspaces/", **_bearer(issued.raw)).status_code == 200
    assert client.delete(f"/api/v1/auth/tokens/{issued.token.pk}/", **_bearer(issued.raw)).status_code == 204
    response = client.get("/api/v1/workspaces/", **_bearer(issued.raw))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_revoking_a_token_twice_is_a_404_the_second_time_and_keeps_the_first_revocation(api, owner):
    issued = token_create(user=owner, name="twice")
    url = f"/api/v1/auth/tokens/{issued.token.pk}/"
    assert api.delete(url).status_code == 204
    issued.token.refresh_from_db()
    first = issued.token.revoked_at
    second = api.delete(url)
    assert second.status_code == 404, second.content
    assert second.json()["error"]["code"] == "not_found"
    issued.token.refresh_from_db()
    assert issued.token.revoked_at == first


def test_expired_token_gets_401(owner):
    issued = token_create(user=owner, name="short", expires_at=timezone.now() + timedelta(minutes=5))
    ApiToken.objects.filter(pk=issued.token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = Client().get("/api/v1/workspaces/", **_bearer(issued.raw))
    assert response.status_code == 401


def test_garbage_token_gets_401(db):
    assert Client().get("/api/v1/workspaces/", **_bearer("cst_nonsense")).status_code == 401
    assert Client().get("/api/v1/workspaces/", HTTP_AUTHORIZATION="Bearer a b").status_code == 401


def test_user_cannot_revoke_someone_elses_token(outsider_api, owner):
    issued = token_create(user=owner, name="mine")
    assert outsider_api.delete(f"/api/v1/auth/tokens/{issued.token.pk}/").status_code == 404
    issued.token.refresh_from_db()
    assert issued.token.revoked_at is None


def _confirmed_session(user) -> Client:
    """A browser session that has just confirmed the password (the token page asks for it)."""
    browser = Client()
    browser.force_login(user)
    assert browser.post("/accounts/reauthenticate/", {"password": PASSWORD}).status_code == 302
    return browser


def test_tokens_page_shows_a_new_token_once_and_revokes(owner):
    browser = _confirmed_session(owner)
    created = browser.post("/app/tokens/", {"name": "ci", "expires_in_days": "30"})
    assert created.status_code == 302  # post/redirect/get: a reload creates nothing
    page = browser.get(created["Location"])
    raw = page.context["issued"]["raw"]
    assert raw.encode() in page.content
    assert ApiToken.objects.filter(user=owner).count() == 1
    assert Client().get("/api/v1/workspaces/", **_bearer(raw)).status_code == 200
    assert raw.encode() not in browser.get("/app/tokens/").content
    token = ApiToken.objects.get(user=owner, name="ci")
    browser.post(f"/app/tokens/{token.pk}/revoke/")
    assert Client().get("/api/v1/workspaces/", **_bearer(raw)).status_code == 401


def test_tokens_page_rejects_bad_expiry(owner):
    browser = _confirmed_session(owner)
    page = browser.post("/app/tokens/", {"name": "ci", "expires_in_days": "-3"})
    assert page.status_code == 400
    assert page.context["form"].errors["expires_in_days"]
    assert not ApiToken.objects.filter(user=owner).exists()


def test_token_issue_is_throttled(anon_api, owner, settings):
    statuses = [
        anon_api.post("/api/v1/auth/token/", {"email": owner.email, "password": "wrong"}, format="json").status_code
        for _ in range(12)
    ]
    assert statuses[-1] == 429
    assert 401 in statuses
