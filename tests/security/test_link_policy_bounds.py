"""Finding G: the dashboard's link-policy form accepted any number.

Only the API's serializer bounded the policy's numbers; the form went straight to
``link_policy_update``, so ``default_expiry_days=99999999`` was saved and every later link creation
in the workspace was a 500 (OverflowError on the expiry date). The bounds now live in the service,
which both the form and the API call.
"""

from __future__ import annotations

import pytest
from django.test import Client

from files.access import node_get_for_user
from files.links import MAX_DOWNLOADS, MAX_EXPIRY_DAYS, link_create
from files.models import FilesPolicy, PublicLink
from tests.factories import UserFactory, team_workspace
from tests.files.sharing_helpers import client_for, root_of, upload


@pytest.fixture
def alice(db):
    return UserFactory(email="alice@example.com")


@pytest.fixture
def team(alice):
    return team_workspace(alice, "Team")


@pytest.fixture
def report(alice, team):
    return upload(alice, root_of(team), "report.pdf", b"report")


def _browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    "field, value",
    [
        ("default_expiry_days", "99999999"),
        ("max_expiry_days", str(MAX_EXPIRY_DAYS + 1)),
        ("default_max_downloads", str(MAX_DOWNLOADS + 1)),
        ("default_max_downloads", "99999999999999999999"),
    ],
)
def test_dashboard_form_refuses_a_number_out_of_bounds_and_changes_nothing(alice, team, report, field, value):
    response = _browser(alice).post(f"/app/w/{team.pk}/links/policy/", {field: value}, follow=True)

    assert response.status_code == 200
    assert "must be from 1 to" in response.content.decode()
    assert not FilesPolicy.objects.filter(workspace=team).exclude(**{f"link_{field}": None}).exists()
    created = client_for(alice).post(f"/api/v1/nodes/{report.pk}/links/", {}, format="json")
    assert created.status_code == 201, created.content


def test_api_and_form_share_one_bound(alice, team):
    api = client_for(alice).put(
        f"/api/v1/workspaces/{team.pk}/link-policy/", {"default_expiry_days": MAX_EXPIRY_DAYS + 1}, format="json"
    )
    form = _browser(alice).post(
        f"/app/w/{team.pk}/links/policy/", {"default_expiry_days": str(MAX_EXPIRY_DAYS)}, follow=True
    )

    assert api.status_code == 400
    assert "Link policy saved" in form.content.decode()
    assert FilesPolicy.objects.get(workspace=team).link_default_expiry_days == MAX_EXPIRY_DAYS


def test_a_policy_stored_before_the_bound_does_not_break_link_creation(alice, team, report):
    """Rows saved while the form was unbounded (the attack's own) must not keep failing."""
    FilesPolicy.objects.update_or_create(workspace=team, defaults={"link_default_expiry_days": 99_999_999})

    response = client_for(alice).post(f"/api/v1/nodes/{report.pk}/links/", {}, format="json")

    assert response.status_code == 201, response.content
    link = PublicLink.objects.get(pk=response.json()["id"])
    assert (link.expires_at - link.created_at).days == MAX_EXPIRY_DAYS


def test_the_service_refuses_an_unstorable_download_limit(alice, report):
    node = node_get_for_user(user=alice, node_id=report.pk, need="edit")
    from cloudstorage.errors import ServiceError

    with pytest.raises(ServiceError) as refused:
        link_create(actor=alice, node=node, max_downloads=2**40)

    assert refused.value.status_code == 400
    assert not PublicLink.objects.filter(node=report).exists()
