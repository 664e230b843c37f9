"""The product name (SITE_NAME) in page titles and e-mails, never the host name."""

from __future__ import annotations

from django.core import mail
from django.test import Client

from accounts.services import invitation_create
from tests.factories import team_workspace


def test_titles_and_emails_carry_the_site_name(settings, owner, django_capture_on_commit_callbacks):
    settings.SITE_NAME = "Acme Drive"
    settings.ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Acme Drive] "
    assert "<title>Not found · Acme Drive</title>" in Client().get("/s/unknown").content.decode()

    Client().post("/accounts/password/reset/", {"email": owner.email})
    reset = mail.outbox[-1]
    assert reset.subject.startswith("[Acme Drive]")
    assert "Hello from Acme Drive!" in reset.body and "testserver" not in reset.body

    team = team_workspace(owner, "Crew")
    with django_capture_on_commit_callbacks(execute=True):
        invitation_create(inviter=owner, inviter_role="owner", workspace=team, email="new@example.com", role="member")
    assert mail.outbox[-1].body.rstrip().endswith("— Acme Drive")
