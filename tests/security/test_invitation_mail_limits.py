"""Invitation e-mails carry a workspace name the inviter words to any address they type, so the
service sends them sparingly: an address is mailed again from one workspace only after a while,
and each user sends a bounded number an hour (audit 2)."""

from __future__ import annotations

from datetime import timedelta

from django.core import mail
from django.test import Client

from tests.factories import team_workspace


def _invite(api, workspace, email: str, role: str = "viewer", **headers):
    return api.post(
        f"/api/v1/workspaces/{workspace.pk}/invitations/", {"email": email, "role": role}, format="json", **headers
    )


def _mails_to(address: str) -> int:
    return sum(address in message.to for message in mail.outbox)


def _age_mails(by: timedelta) -> None:
    from accounts.models import InvitationMail

    for sent in InvitationMail.objects.all():
        sent.sent_at -= by
        sent.save(update_fields=["sent_at"])


def test_inviting_an_address_again_and_again_sends_one_mail(owner, api, django_capture_on_commit_callbacks):
    made = api.post("/api/v1/workspaces/", {"name": "Account locked - verify at evil.example"}, format="json")
    workspace = made.json()["id"]
    url = f"/api/v1/workspaces/{workspace}/invitations/"

    with django_capture_on_commit_callbacks(execute=True):
        answers = [api.post(url, {"email": "victim@example.org", "role": "viewer"}, format="json") for _ in range(30)]

    assert _mails_to("victim@example.org") == 1
    assert answers[0].status_code == 201
    assert {answer.status_code for answer in answers[1:]} == {409}
    error = answers[1].json()["error"]
    assert error["code"] == "invitation_pending"
    assert "victim@example.org" in error["message"] and "15 minutes" in error["message"]
    assert 0 < error["details"]["retry_after"] <= 15 * 60


def test_revoking_and_inviting_again_sends_no_new_mail_before_the_interval(
    owner, api, django_capture_on_commit_callbacks
):
    team = team_workspace(owner, "Acme")
    with django_capture_on_commit_callbacks(execute=True):
        first = _invite(api, team, "victim@example.org")
        assert api.delete(f"/api/v1/workspaces/{team.pk}/invitations/{first.json()['id']}/").status_code == 204
        again = _invite(api, team, "victim@example.org")
    assert again.status_code == 409
    assert _mails_to("victim@example.org") == 1


def test_the_address_may_be_invited_again_once_the_interval_passed(owner, api, django_capture_on_commit_callbacks):
    team = team_workspace(owner, "Acme")
    with django_capture_on_commit_callbacks(execute=True):
        assert _invite(api, team, "late@example.org").status_code == 201
    _age_mails(timedelta(minutes=16))
    with django_capture_on_commit_callbacks(execute=True):
        assert _invite(api, team, "late@example.org", role="member").status_code == 201
    assert _mails_to("late@example.org") == 2


def test_one_user_sends_at_most_the_hourly_cap_over_all_their_workspaces(
    owner, api, settings, django_capture_on_commit_callbacks
):
    settings.CLOUDSTORAGE_INVITATIONS_PER_HOUR = 3
    one, two = team_workspace(owner, "One"), team_workspace(owner, "Two")
    with django_capture_on_commit_callbacks(execute=True):
        answers = [
            _invite(api, workspace, f"person{n}@example.org", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}")
            for n, workspace in enumerate([one, two, one, two, one])
        ]
    assert [answer.status_code for answer in answers] == [201, 201, 201, 429, 429]
    assert len(mail.outbox) == 3
    error = answers[3].json()["error"]
    assert error["code"] == "throttled"
    assert 0 < error["details"]["retry_after"] <= 3600

    _age_mails(timedelta(minutes=61))
    with django_capture_on_commit_callbacks(execute=True):
        assert _invite(api, one, "person9@example.org").status_code == 201
    assert len(mail.outbox) == 4


def test_dashboard_says_why_an_invitation_is_not_sent_again(owner, django_capture_on_commit_callbacks):
    team = team_workspace(owner, "Acme")
    browser = Client()
    browser.force_login(owner)
    with django_capture_on_commit_callbacks(execute=True):
        sent = browser.post(f"/app/workspaces/{team.pk}/invite/", {"email": "v@example.org", "role": "viewer"})
        again = browser.post(f"/app/workspaces/{team.pk}/invite/", {"email": "v@example.org", "role": "viewer"})
    assert sent.status_code == 302
    assert again.status_code == 400
    assert b"can be sent again in 15 minutes" in again.content
    assert _mails_to("v@example.org") == 1
