"""Sign-up, e-mail verification, login, logout and password reset, in the browser and headless."""

import re
from datetime import timedelta
from urllib.parse import unquote

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.test import Client
from django.utils import timezone

from accounts.models import User, Workspace

PASSWORD = "correct-horse-battery-9"


def _link(message, pattern: str) -> str:
    match = re.search(pattern, message.body)
    assert match, message.body
    return match.group(0)


@pytest.fixture
def browser():
    return Client()


@pytest.mark.django_db
def test_signup_verify_login_in_the_browser(browser):
    response = browser.post(
        "/accounts/signup/", {"email": "Ada@Example.com", "password1": PASSWORD, "password2": PASSWORD}
    )
    assert response.status_code == 302
    user = User.objects.get(email="ada@example.com")
    # The personal workspace exists from the first moment, with the free plan.
    workspace = Workspace.objects.get(owner=user, kind="personal")
    assert (workspace.plan_gb, workspace.category) == (1, "A")
    assert workspace.nodes.filter(parent=None, kind="folder").count() == 1

    # Not verified yet: the login is held at the verification step.
    browser.logout()
    response = browser.post("/accounts/login/", {"login": "ada@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert "confirm-email" in response["Location"] or "verification" in response["Location"]
    assert "_auth_user_id" not in browser.session

    link = _link(mail.outbox[-1], r"http://\S+/accounts/confirm-email/\S+/")
    path = link.split("8000", 1)[1]
    assert browser.get(path).status_code == 200
    response = browser.post(path)
    assert response.status_code == 302
    assert EmailAddress.objects.get(user=user).verified

    browser.logout()
    response = browser.post("/accounts/login/", {"login": "ada@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert browser.session["_auth_user_id"] == str(user.pk)
    page = browser.get("/app/")
    assert page.status_code == 200
    assert b"Personal" in page.content and b"1 GB" in page.content


@pytest.mark.django_db
def test_login_gives_a_fresh_session_id(browser):
    from tests.factories import PASSWORD as FACTORY_PASSWORD
    from tests.factories import UserFactory

    UserFactory(email="bob@example.com")
    browser.get("/accounts/login/")
    browser.session.save()
    before = browser.cookies["sessionid"].value if "sessionid" in browser.cookies else None
    browser.post("/accounts/login/", {"login": "bob@example.com", "password": FACTORY_PASSWORD})
    after = browser.cookies["sessionid"].value
    assert after and after != before


@pytest.mark.django_db
def test_signup_headless_then_verify_then_token(browser):
    client = Client()
    response = client.post(
        "/_allauth/app/v1/auth/signup",
        {"email": "grace@example.com", "password": PASSWORD},
        content_type="application/json",
    )
    # 401 with a pending verify_email flow: the account exists but is not usable yet.
    assert response.status_code == 401
    flows = {flow["id"]: flow for flow in response.json()["data"]["flows"]}
    assert flows["verify_email"]["is_pending"]
    session_token = response.json()["meta"]["session_token"]

    token_attempt = client.post(
        "/api/v1/auth/token/", {"email": "grace@example.com", "password": PASSWORD}, content_type="application/json"
    )
    assert token_attempt.status_code == 403
    assert token_attempt.json()["error"]["code"] == "email_unverified"

    key = unquote(_link(mail.outbox[-1], r"/accounts/confirm-email/(\S+)/").split("/")[-2])
    response = client.post(
        "/_allauth/app/v1/auth/email/verify",
        {"key": key},
        content_type="application/json",
        HTTP_X_SESSION_TOKEN=session_token,
    )
    assert response.status_code == 200, response.content
    assert response.json()["meta"]["is_authenticated"]

    issued = client.post(
        "/api/v1/auth/token/",
        {"email": "grace@example.com", "password": PASSWORD, "name": "cli"},
        content_type="application/json",
    )
    assert issued.status_code == 201
    token = issued.json()["token"]
    listing = client.get("/api/v1/workspaces/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert listing.status_code == 200
    assert [w["kind"] for w in listing.json()] == ["personal"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "data, field",
    [
        ({"email": "not-an-email", "password1": PASSWORD, "password2": PASSWORD}, "email"),
        ({"email": "x@example.com", "password1": "short", "password2": "short"}, "password1"),
        ({"email": "x@example.com", "password1": PASSWORD, "password2": PASSWORD + "x"}, "password2"),
        ({"email": "", "password1": PASSWORD, "password2": PASSWORD}, "email"),
    ],
)
def test_bad_signup_shows_form_error_and_creates_nothing(browser, data, field):
    response = browser.post("/accounts/signup/", data)
    assert response.status_code == 200
    assert response.context["form"].errors.get(field)
    assert User.objects.count() == 0
    assert Workspace.objects.count() == 0


@pytest.mark.django_db
def test_signup_with_taken_email_does_not_reveal_it(browser):
    from tests.factories import UserFactory

    UserFactory(email="taken@example.com")
    response = browser.post(
        "/accounts/signup/", {"email": "taken@example.com", "password1": PASSWORD, "password2": PASSWORD}
    )
    # Enumeration prevention: the same "check your inbox" path as a new address; the owner of the
    # address gets a mail instead of a second account being made.
    assert response.status_code == 302
    assert User.objects.filter(email="taken@example.com").count() == 1
    assert "already" in mail.outbox[-1].body.lower() or "account" in mail.outbox[-1].subject.lower()


@pytest.mark.django_db
def test_wrong_password_and_unknown_email_get_the_same_message(browser):
    from tests.factories import UserFactory

    UserFactory(email="known@example.com")
    wrong = browser.post("/accounts/login/", {"login": "known@example.com", "password": "nope-nope-nope"})
    unknown = browser.post("/accounts/login/", {"login": "nobody@example.com", "password": "nope-nope-nope"})
    assert wrong.status_code == unknown.status_code == 200
    assert wrong.context["form"].non_field_errors() == unknown.context["form"].non_field_errors()


@pytest.mark.django_db
def test_login_is_rate_limited_after_repeated_failures(browser):
    from tests.factories import UserFactory

    UserFactory(email="target@example.com")
    responses = [
        browser.post("/accounts/login/", {"login": "target@example.com", "password": f"wrong-{i}"}) for i in range(7)
    ]
    last_errors = " ".join(responses[-1].context["form"].non_field_errors())
    assert "too many failed login attempts" in last_errors.lower()
    # Even the right password is held back while the limit lasts.
    from tests.factories import PASSWORD as FACTORY_PASSWORD

    response = browser.post("/accounts/login/", {"login": "target@example.com", "password": FACTORY_PASSWORD})
    assert "_auth_user_id" not in browser.session
    assert response.status_code in (200, 429)


def _reset_link(browser, email: str) -> str:
    response = browser.post("/accounts/password/reset/", {"email": email})
    assert response.status_code == 302
    link = _link(mail.outbox[-1], r"http://\S+/accounts/password/reset/key/\S+/")
    return link.split("8000", 1)[1]


@pytest.mark.django_db
def test_password_reset_end_to_end_and_link_is_single_use(browser):
    from tests.factories import UserFactory

    user = UserFactory(email="reset@example.com")
    path = _reset_link(browser, "reset@example.com")
    response = browser.get(path)
    assert response.status_code == 302  # allauth moves the key into the session
    form_path = response["Location"]
    new_password = "a-brand-new-password-7"
    response = browser.post(form_path, {"password1": new_password, "password2": new_password})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(new_password)

    # The same link again: refused, the password stays.
    again = Client()
    response = again.get(path, follow=True)
    assert response.context["token_fail"]
    response = again.post(path, {"password1": "yet-another-pass-9", "password2": "yet-another-pass-9"}, follow=True)
    user.refresh_from_db()
    assert user.check_password(new_password)


@pytest.mark.django_db
def test_expired_password_reset_link_is_refused(browser, settings, monkeypatch):
    from tests.factories import UserFactory

    user = UserFactory(email="late@example.com")
    path = _reset_link(browser, "late@example.com")
    # Django's token carries its creation time; move the clock past PASSWORD_RESET_TIMEOUT.
    later = timezone.now() + timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT + 60)
    from django.contrib.auth.tokens import PasswordResetTokenGenerator

    monkeypatch.setattr(PasswordResetTokenGenerator, "_now", lambda self: later.replace(tzinfo=None))
    response = Client().get(path, follow=True)
    assert response.context["token_fail"]
    user.refresh_from_db()
    assert not user.check_password("whatever-new-pass")


@pytest.mark.django_db
def test_password_reset_for_unknown_email_looks_the_same(browser):
    response = browser.post("/accounts/password/reset/", {"email": "ghost@example.com"})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/password/reset/done/"
    # Nothing reveals the address is unknown; at most a notice goes to that mailbox.
    assert all("ghost@example.com" in m.to for m in mail.outbox)


@pytest.mark.django_db
def test_password_change_requires_the_current_password(browser):
    from tests.factories import PASSWORD as FACTORY_PASSWORD
    from tests.factories import UserFactory

    user = UserFactory(email="change@example.com")
    browser.force_login(user)
    bad = browser.post(
        "/accounts/password/change/",
        {"oldpassword": "not-it-at-all", "password1": "fresh-password-11", "password2": "fresh-password-11"},
    )
    assert bad.status_code == 200 and bad.context["form"].errors.get("oldpassword")
    user.refresh_from_db()
    assert user.check_password(FACTORY_PASSWORD)
    good = browser.post(
        "/accounts/password/change/",
        {"oldpassword": FACTORY_PASSWORD, "password1": "fresh-password-11", "password2": "fresh-password-11"},
    )
    assert good.status_code == 302
    user.refresh_from_db()
    assert user.check_password("fresh-password-11")


@pytest.mark.django_db
def test_email_change_needs_verification_of_the_new_address(browser):
    from tests.factories import UserFactory

    user = UserFactory(email="old@example.com")
    browser.force_login(user)
    response = browser.post("/accounts/email/", {"action_add": "", "email": "new@example.com"})
    assert response.status_code == 302
    assert mail.outbox[-1].to == ["new@example.com"]
    user.refresh_from_db()
    assert user.email == "old@example.com"  # not until the new address is verified
    key_path = _link(mail.outbox[-1], r"http://\S+/accounts/confirm-email/\S+/").split("8000", 1)[1]
    assert browser.post(key_path).status_code == 302
    user.refresh_from_db()
    assert user.email == "new@example.com"


@pytest.mark.django_db
def test_logout(browser):
    from tests.factories import UserFactory

    browser.force_login(UserFactory())
    assert browser.post("/accounts/logout/").status_code == 302
    assert "_auth_user_id" not in browser.session
