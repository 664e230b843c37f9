"""The dashboard's "Links & activity" page: owners and admins see and revoke every link, set the
policy and read the activity; members are refused, outsiders get 404."""

from __future__ import annotations

import pytest
from django.test import Client

from files.links import link_create
from files.models import FilesPolicy, PublicLink
from tests.files.sharing_helpers import root_of, upload


@pytest.fixture
def team_link(owner, team):
    node = upload(owner, root_of(team), "plan.pdf", b"plan")
    node.permission = "manage"
    return link_create(actor=owner, node=node)


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_owner_sees_every_link_with_last_access_and_revokes_one(owner, team, team_link):
    Client().get(f"/s/{team_link.token}")
    browser = logged_in(owner)

    page = browser.get(f"/app/w/{team.pk}/links/")

    html = page.content.decode()
    assert page.status_code == 200 and "/plan.pdf" in html and "opened a public link" in html
    assert "link_access" not in html  # activity in words, not the log's codes
    response = browser.post(f"/app/w/{team.pk}/links/{team_link.pk}/revoke/", follow=True)
    assert response.status_code == 200 and "no longer works" in response.content.decode()
    assert PublicLink.objects.get(pk=team_link.pk).revoked_at is not None
    assert Client().get(f"/s/{team_link.token}").status_code == 410
    # Sent again (a second click), the page says so instead of claiming to switch it off again.
    again = browser.post(f"/app/w/{team.pk}/links/{team_link.pk}/revoke/", follow=True)
    assert again.status_code == 200 and "was already switched off" in again.content.decode()


def test_owner_sets_the_policy_and_a_bad_value_changes_nothing(owner, team):
    browser = logged_in(owner)
    url = f"/app/w/{team.pk}/links/policy/"
    browser.post(url, {"default_expiry_days": "3", "max_expiry_days": "10", "password_required": "on"})
    policy = FilesPolicy.objects.get(workspace=team)
    assert (policy.link_default_expiry_days, policy.link_max_expiry_days, policy.link_password_required) == (
        3,
        10,
        True,
    )

    response = browser.post(url, {"default_expiry_days": "30", "max_expiry_days": "10"}, follow=True)

    assert "cannot be longer" in response.content.decode()
    policy.refresh_from_db()
    assert policy.link_default_expiry_days == 3


def test_members_are_refused_and_outsiders_get_404(teammate, outsider, team, team_link):
    for user, status in ((teammate, 403), (outsider, 404)):
        browser = logged_in(user)
        assert browser.get(f"/app/w/{team.pk}/links/").status_code == status
        assert browser.post(f"/app/w/{team.pk}/links/{team_link.pk}/revoke/").status_code == status
        assert browser.post(f"/app/w/{team.pk}/links/policy/", {"password_required": "on"}).status_code == status
    assert PublicLink.objects.get(pk=team_link.pk).revoked_at is None
    assert not FilesPolicy.objects.filter(workspace=team, link_password_required=True).exists()
