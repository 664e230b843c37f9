"""DESIGN.md: "All ids are UUIDs" and ids in URLs are unguessable. A member was listed and addressed
by the membership's sequential row id ("id": 3, /members/3/), which also told how many memberships
the service had; they are now listed and addressed by their user's id (audit 1)."""

from __future__ import annotations

import re
import uuid

from django.core import mail
from django.test import Client

from accounts.models import Membership
from tests.conftest import _client_for
from tests.factories import UserFactory


def test_members_are_listed_by_uuid(api, team, teammate):
    members = api.get(f"/api/v1/workspaces/{team.pk}/members/").json()

    assert {member["email"]: member["id"] for member in members}[teammate.email] == str(teammate.pk)
    for member in members:
        assert uuid.UUID(member["id"]) and member["id"] == member["user_id"]


def test_a_member_is_changed_and_removed_by_the_id_listed(api, team, teammate):
    (listed,) = [m for m in api.get(f"/api/v1/workspaces/{team.pk}/members/").json() if m["email"] == teammate.email]
    url = f"/api/v1/workspaces/{team.pk}/members/{listed['id']}/"

    changed = api.patch(url, {"role": "viewer"}, format="json")
    assert changed.status_code == 200 and changed.json()["id"] == listed["id"]
    assert Membership.objects.get(workspace=team, user=teammate).role == "viewer"
    assert api.delete(url).status_code == 204
    assert not Membership.objects.filter(workspace=team, user=teammate).exists()


def test_the_old_sequential_member_urls_are_gone(api, team, teammate):
    membership = Membership.objects.get(workspace=team, user=teammate)

    assert api.delete(f"/api/v1/workspaces/{team.pk}/members/{membership.pk}/").status_code == 404
    assert api.delete(f"/api/v1/workspaces/{team.pk}/members/{uuid.uuid4()}/").status_code == 404
    assert Membership.objects.filter(pk=membership.pk).exists()


def test_the_dashboard_changes_a_member_by_uuid(owner, team, teammate):
    browser = Client()
    browser.force_login(owner)
    page = browser.get(f"/app/workspaces/{team.pk}/").content.decode()
    assert f"/members/{teammate.pk}/role/" in page

    browser.post(f"/app/workspaces/{team.pk}/members/{teammate.pk}/role/", {"role": "viewer"})

    assert Membership.objects.get(workspace=team, user=teammate).role == "viewer"


def test_accepting_an_invitation_answers_the_members_uuid(api, team, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        invited = api.post(f"/api/v1/workspaces/{team.pk}/invitations/", {"email": "new@example.com"}, format="json")
    assert uuid.UUID(invited.json()["id"])
    token = re.search(r"/invitations/([\w-]+)/", mail.outbox[-1].body).group(1)
    newcomer = UserFactory(email="new@example.com")

    accepted = _client_for(newcomer).post("/api/v1/invitations/accept/", {"token": token}, format="json")

    assert accepted.status_code == 201, accepted.content
    assert accepted.json()["id"] == str(newcomer.pk)
