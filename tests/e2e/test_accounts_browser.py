"""A person signs up, verifies, logs in, creates a team, invites someone and makes an API token."""

import re

import pytest
from django.core import mail
from django.test import Client

from accounts.models import Invitation

PASSWORD = "correct-horse-battery-9"

pytestmark = pytest.mark.django_db(transaction=True)


def test_sign_up_verify_and_see_personal_workspace(page, live_server):
    page.goto("/accounts/signup/")
    page.get_by_label("Email").fill("ada@example.com")
    page.locator("#id_password1").fill(PASSWORD)
    page.locator("#id_password2").fill(PASSWORD)
    page.get_by_role("button", name=re.compile("Sign up", re.I)).click()
    page.wait_for_url(re.compile("confirm-email"))

    link = re.search(r"http://\S+/accounts/confirm-email/\S+/", mail.outbox[-1].body).group(0)
    page.goto(live_server.url + link.split("8000", 1)[1])
    page.get_by_role("button", name=re.compile("Confirm", re.I)).click()
    page.wait_for_url(re.compile("/app/"))
    row = page.get_by_role("row", name=re.compile("Personal"))
    assert "1 GB" in row.inner_text()
    assert "category" not in row.inner_text()  # an operator's word, not the customer's


def test_team_invite_and_api_token(page, live_server):
    from tests.factories import PASSWORD as FACTORY_PASSWORD
    from tests.factories import UserFactory

    UserFactory(email="lead@example.com")
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill("lead@example.com")
    page.get_by_label("Password").fill(FACTORY_PASSWORD)
    page.get_by_role("button", name=re.compile("Log in", re.I)).click()
    page.wait_for_url(re.compile("/app/"))

    page.get_by_label("Workspace name").fill("Studio")
    page.get_by_role("button", name="Create workspace").click()
    page.get_by_role("heading", name="Studio").wait_for()
    page.get_by_label("E-mail address").fill("pal@example.com")
    page.get_by_role("button", name="Send invitation").click()
    page.get_by_text("Invitation sent to pal@example.com").wait_for()
    assert Invitation.objects.filter(email="pal@example.com", workspace__name="Studio").exists()
    assert any("pal@example.com" in m.to for m in mail.outbox)

    page.get_by_role("link", name="API tokens").click()
    page.get_by_label("Token name").fill("laptop")
    page.get_by_role("button", name="Create token").click()
    # A token outlives the session: allauth asks for the password again, then makes it.
    page.wait_for_url(re.compile("/accounts/reauthenticate/"))
    page.get_by_label("Password").fill(FACTORY_PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    token = page.locator("#new-token").inner_text().strip()
    response = Client().get("/api/v1/workspaces/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    assert sorted(w["name"] for w in response.json()) == ["Personal", "Studio"]
