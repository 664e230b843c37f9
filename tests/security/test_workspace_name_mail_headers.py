"""A team workspace's name goes into e-mail Subjects (invitations, billing mails). Python's header
folding breaks lines at \\v, \\f and \\x1c-\\x1e, not only at CR/LF, so such a name wrote lines of
its own into the header block of mail the service sends to any address it is asked to invite
(``Reply-To : …``), and CR/LF made Django refuse the invitation's mail after the invitation was
stored (a 500, no mail). Names with control characters are now refused on the way in, and every
Subject is put on one line, for names stored before.
"""

from __future__ import annotations

import re
from datetime import timedelta
from email import message_from_bytes

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client
from django.utils import timezone

from accounts.models import Workspace
from billing.models import Subscription
from billing.services import billing_grace_enforce
from tests.factories import team_workspace

# A header field ("Name:") or a folded continuation (leading white space): anything else in the
# header block is a line someone else wrote.
HEADER_LINE = re.compile(rb"^(?:[\x21-\x39\x3b-\x7e]+:|[ \t])")
INJECTED = "Team\x0bReply-To : mallory@evil.example\x0bX-Evil : 1"

BAD_NAMES = [
    pytest.param(INJECTED, id="vertical-tab"),
    pytest.param("Team\x0cX-Evil : 1", id="form-feed"),
    pytest.param("Team\x1cX-Evil : 1", id="file-separator"),
    pytest.param("Team\x1eX-Evil : 1", id="record-separator"),
    pytest.param("Team\r\nBcc: x@evil.example", id="crlf"),
    pytest.param("Team\tA", id="tab"),
    pytest.param("Team\u2028X-Evil : 1", id="line-separator"),
    pytest.param("Team\u2029X-Evil : 1", id="paragraph-separator"),
    pytest.param("Team\u202eevil", id="right-to-left-override"),
]


def _header_lines(message) -> list[bytes]:
    raw = message.message().as_bytes(linesep="\r\n")  # the bytes the SMTP backend sends
    return raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


def _assert_one_line_subject(message, expected_subject: str) -> None:
    lines = _header_lines(message)
    assert [line for line in lines if not HEADER_LINE.match(line)] == []
    parsed = message_from_bytes(b"\r\n".join(lines) + b"\r\n\r\n")
    assert not parsed.defects
    assert message.subject == expected_subject


def _invite(api, workspace_id, email="victim@example.org"):
    return api.post(
        f"/api/v1/workspaces/{workspace_id}/invitations/", {"email": email, "role": "member"}, format="json"
    )


@pytest.mark.parametrize("name", BAD_NAMES)
def test_api_refuses_to_create_a_workspace_named_with_control_characters(api, owner, name):
    response = api.post("/api/v1/workspaces/", {"name": name}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert "control characters" in response.json()["error"]["message"]
    assert not Workspace.objects.filter(owner=owner, kind=Workspace.Kind.TEAM).exists()


@pytest.mark.parametrize("name", BAD_NAMES)
def test_api_refuses_to_rename_a_workspace_to_a_name_with_control_characters(api, team, name):
    response = api.patch(f"/api/v1/workspaces/{team.pk}/", {"name": name}, format="json")

    assert response.status_code == 400
    assert "control characters" in response.json()["error"]["message"]
    team.refresh_from_db()
    assert team.name == "Acme"


@pytest.mark.parametrize("name", BAD_NAMES)
def test_dashboard_form_shows_an_error_for_a_name_with_control_characters(owner, name):
    browser = Client()
    browser.force_login(owner)

    response = browser.post("/app/workspaces/new/", {"name": name})

    assert response.status_code == 400
    assert "control characters" in response.context["form"].errors["name"][0]
    assert not Workspace.objects.filter(owner=owner, kind=Workspace.Kind.TEAM).exists()


def test_emoji_name_joined_with_zero_width_joiner_is_allowed(api, team):
    response = api.patch(f"/api/v1/workspaces/{team.pk}/", {"name": "Devs 👩\u200d💻"}, format="json")

    assert response.status_code == 200
    assert response.json()["name"] == "Devs 👩\u200d💻"


@pytest.mark.parametrize(
    "stored_name, subject_name",
    [
        pytest.param(INJECTED, "Team Reply-To : mallory@evil.example X-Evil : 1", id="vertical-tab"),
        pytest.param("Team\r\nBcc: x@evil.example", "Team Bcc: x@evil.example", id="crlf"),
    ],
)
def test_invitation_from_a_workspace_stored_with_line_breaks_has_a_one_line_subject(
    api, team, stored_name, subject_name, django_capture_on_commit_callbacks
):
    # As a name stored before names were checked: the row is written directly.
    Workspace.objects.filter(pk=team.pk).update(name=stored_name)

    with django_capture_on_commit_callbacks(execute=True):
        response = _invite(api, team.pk)

    assert response.status_code == 201
    [message] = mail.outbox
    assert message.to == ["victim@example.org"]
    _assert_one_line_subject(
        message, f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}owner@example.com invited you to {subject_name}"
    )


def test_billing_mails_of_workspaces_stored_with_line_breaks_have_one_line_subjects(
    owner, django_capture_on_commit_callbacks
):
    """The read-only mail of the first due workspace no longer raises out of the loop, so the
    second is locked and told as well."""
    past = timezone.now() - timedelta(days=8)
    first = team_workspace(owner, "First")
    second = team_workspace(owner, "Second")
    for workspace, stored_name in ((first, "First\r\nBcc: x@evil.example"), (second, "Second\x0bX-Evil : 1")):
        Workspace.objects.filter(pk=workspace.pk).update(name=stored_name)
        Subscription.objects.create(workspace=workspace, payment_failed_at=past, grace_until=past + timedelta(days=7))

    with django_capture_on_commit_callbacks(execute=True):
        assert billing_grace_enforce()["read_only"] == 2

    subjects = sorted(message.subject for message in mail.outbox)
    assert subjects == [
        f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}First Bcc: x@evil.example is now read-only",
        f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}Second X-Evil : 1 is now read-only",
    ]
    for message in mail.outbox:
        _assert_one_line_subject(message, message.subject)
