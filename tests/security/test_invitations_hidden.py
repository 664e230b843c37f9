"""Viewers (and plain members) of a team workspace do not see its pending invitations: who was
invited, with which e-mail address and role, is for the owners and admins who manage membership."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.services import invitation_create
from tests.conftest import _client_for
from tests.factories import UserFactory, team_workspace

INVITEE = "secret.candidate@example.com"


@pytest.fixture
def team_with_invite(owner):
    viewer = UserFactory(email="viewer@example.com")
    member = UserFactory(email="member@example.com")
    team = team_workspace(owner, "Hiring", members={viewer: "viewer", member: "member"})
    invitation_create(workspace=team, inviter=owner, inviter_role="owner", email=INVITEE, role="member")
    return team, viewer, member


@pytest.mark.parametrize("role", ["viewer", "member"])
def test_non_manager_gets_403_on_the_invitation_list(team_with_invite, role):
    team, viewer, member = team_with_invite
    response = _client_for(viewer if role == "viewer" else member).get(f"/api/v1/workspaces/{team.pk}/invitations/")
    assert response.status_code == 403
    assert INVITEE not in response.content.decode()


@pytest.mark.parametrize("role", ["viewer", "member"])
def test_non_manager_workspace_page_names_no_invitee(team_with_invite, role):
    team, viewer, member = team_with_invite
    browser = Client()
    browser.force_login(viewer if role == "viewer" else member)
    response = browser.get(f"/app/workspaces/{team.pk}/")
    assert response.status_code == 200
    assert INVITEE not in response.content.decode()


def test_owner_still_sees_open_invitations(api, team_with_invite):
    team, _, _ = team_with_invite
    response = api.get(f"/api/v1/workspaces/{team.pk}/invitations/")
    assert response.status_code == 200 and [i["email"] for i in response.json()] == [INVITEE]
    browser = Client()
    browser.force_login(team.owner)
    assert INVITEE in browser.get(f"/app/workspaces/{team.pk}/").content.decode()
