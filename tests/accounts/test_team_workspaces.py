import re
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from accounts.models import Invitation, Membership, Workspace
from tests.conftest import _client_for
from tests.factories import UserFactory, personal_workspace


def _invite(api, workspace, email, role="member"):
    return api.post(f"/api/v1/workspaces/{workspace.pk}/invitations/", {"email": email, "role": role}, format="json")


def _token_from_mail() -> str:
    match = re.search(r"/invitations/([\w-]+)/", mail.outbox[-1].body)
    assert match, mail.outbox[-1].body
    return match.group(1)


def test_invite_accept_once(api, team, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = _invite(api, team, "New.Person@Example.com", role="viewer")
    assert response.status_code == 201
    assert mail.outbox[-1].to == ["new.person@example.com"]
    token = _token_from_mail()

    newcomer = UserFactory(email="new.person@example.com")
    browser = Client()
    browser.force_login(newcomer)
    assert b"Accept invitation" in browser.get(f"/invitations/{token}/").content
    response = browser.post(f"/invitations/{token}/")
    assert response.status_code == 302
    assert Membership.objects.get(workspace=team, user=newcomer).role == "viewer"
    # Single use: the same link is dead now.
    assert browser.get(f"/invitations/{token}/").status_code == 404
    assert browser.post(f"/invitations/{token}/").status_code == 404


def test_invitation_for_another_address_cannot_be_accepted(api, team, outsider, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        _invite(api, team, "someone@example.com")
    token = _token_from_mail()
    response = Client().post(
        "/api/v1/invitations/accept/",
        {"token": token},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {__import__('accounts.services', fromlist=['x']).token_create(user=outsider, name='t').raw}",
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "wrong_account"
    assert not Membership.objects.filter(workspace=team, user=outsider).exists()


def test_expired_invitation_is_refused(api, team, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        _invite(api, team, "late@example.com")
    token = _token_from_mail()
    Invitation.objects.filter(email="late@example.com").update(expires_at=timezone.now() - timedelta(seconds=1))
    late = UserFactory(email="late@example.com")
    browser = Client()
    browser.force_login(late)
    assert browser.post(f"/invitations/{token}/").status_code == 404
    assert not Membership.objects.filter(workspace=team, user=late).exists()


@pytest.mark.parametrize(
    "payload, status",
    [
        ({"email": "bad"}, 400),
        ({"email": "x@example.com", "role": "god"}, 400),
        ({"email": "teammate@example.com"}, 409),
    ],
)
def test_bad_invitations_are_refused(api, team, payload, status):
    response = api.post(f"/api/v1/workspaces/{team.pk}/invitations/", payload, format="json")
    assert response.status_code == status
    assert response.json()["error"]["message"]
    assert not Invitation.objects.exists()


def test_personal_workspace_cannot_invite(api, owner):
    response = _invite(api, personal_workspace(owner), "friend@example.com")
    assert response.status_code == 400
    assert not Invitation.objects.exists()


def test_member_cannot_invite_or_change_roles(teammate_api, team, owner):
    assert _invite(teammate_api, team, "x@example.com").status_code == 403
    owner_membership = Membership.objects.get(workspace=team, user=owner)
    response = teammate_api.patch(
        f"/api/v1/workspaces/{team.pk}/members/{owner_membership.user_id}/", {"role": "viewer"}, format="json"
    )
    assert response.status_code == 403
    owner_membership.refresh_from_db()
    assert owner_membership.role == "owner"


def test_change_role_and_remove(api, team, teammate):
    membership = Membership.objects.get(workspace=team, user=teammate)
    url = f"/api/v1/workspaces/{team.pk}/members/{membership.user_id}/"
    assert api.patch(url, {"role": "admin"}, format="json").json()["role"] == "admin"
    assert api.patch(url, {"role": "nonsense"}, format="json").status_code == 400
    assert api.delete(url).status_code == 204
    assert not Membership.objects.filter(pk=membership.pk).exists()


def test_admin_cannot_touch_owner_role(teammate_api, team, teammate, owner):
    Membership.objects.filter(workspace=team, user=teammate).update(role="admin")
    owner_membership = Membership.objects.get(workspace=team, user=owner)
    url = f"/api/v1/workspaces/{team.pk}/members/{owner_membership.user_id}/"
    assert teammate_api.delete(url).status_code == 403
    mine = Membership.objects.get(workspace=team, user=teammate)
    response = teammate_api.patch(
        f"/api/v1/workspaces/{team.pk}/members/{mine.user_id}/", {"role": "owner"}, format="json"
    )
    assert response.status_code == 403


def test_last_owner_cannot_leave_or_be_demoted(api, team, owner):
    mine = Membership.objects.get(workspace=team, user=owner)
    url = f"/api/v1/workspaces/{team.pk}/members/{mine.user_id}/"
    response = api.delete(url)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "last_owner"
    assert api.patch(url, {"role": "member"}, format="json").status_code == 409
    assert Membership.objects.get(pk=mine.pk).role == "owner"


def test_owner_can_leave_when_another_owner_exists(api, team, owner, teammate):
    Membership.objects.filter(workspace=team, user=teammate).update(role="owner")
    mine = Membership.objects.get(workspace=team, user=owner)
    assert api.delete(f"/api/v1/workspaces/{team.pk}/members/{mine.user_id}/").status_code == 204
    assert not Membership.objects.filter(workspace=team, user=owner).exists()


def test_member_can_leave(teammate_api, team, teammate):
    mine = Membership.objects.get(workspace=team, user=teammate)
    assert teammate_api.delete(f"/api/v1/workspaces/{team.pk}/members/{mine.user_id}/").status_code == 204


def test_nobody_leaves_their_personal_workspace(api, owner):
    workspace = personal_workspace(owner)
    mine = Membership.objects.get(workspace=workspace, user=owner)
    assert api.delete(f"/api/v1/workspaces/{workspace.pk}/members/{mine.user_id}/").status_code in (400, 409)
    assert Membership.objects.filter(pk=mine.pk).exists()


def test_outsider_gets_404_on_every_workspace_route(outsider_api, team, owner):
    membership = Membership.objects.get(workspace=team, user=owner)
    base = f"/api/v1/workspaces/{team.pk}"
    assert outsider_api.get(f"{base}/").status_code == 404
    assert outsider_api.patch(f"{base}/", {"name": "x"}, format="json").status_code == 404
    assert outsider_api.get(f"{base}/members/").status_code == 404
    assert (
        outsider_api.patch(f"{base}/members/{membership.user_id}/", {"role": "viewer"}, format="json").status_code
        == 404
    )
    assert outsider_api.delete(f"{base}/members/{membership.user_id}/").status_code == 404
    assert outsider_api.get(f"{base}/invitations/").status_code == 404
    assert outsider_api.post(f"{base}/invitations/", {"email": "a@example.com"}, format="json").status_code == 404
    assert Workspace.objects.get(pk=team.pk).name == "Acme"
    assert Membership.objects.get(pk=membership.pk).role == "owner"


def test_outsider_gets_404_on_workspace_pages(outsider, team):
    browser = Client()
    browser.force_login(outsider)
    assert browser.get(f"/app/workspaces/{team.pk}/").status_code == 404
    assert (
        browser.post(f"/app/workspaces/{team.pk}/invite/", {"email": "a@example.com", "role": "member"}).status_code
        == 404
    )
    assert not Invitation.objects.exists()


def test_workspace_pages_create_and_invite(owner, django_capture_on_commit_callbacks):
    browser = Client()
    browser.force_login(owner)
    response = browser.post("/app/workspaces/new/", {"name": "Studio"})
    assert response.status_code == 302
    studio = Workspace.objects.get(name="Studio")
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(f"/app/workspaces/{studio.pk}/invite/", {"email": "pal@example.com", "role": "member"})
    assert response.status_code == 302
    assert mail.outbox[-1].to == ["pal@example.com"]
    page = browser.get(f"/app/workspaces/{studio.pk}/")
    assert b"pal@example.com" in page.content


def test_workspace_page_form_errors(owner):
    browser = Client()
    browser.force_login(owner)
    response = browser.post("/app/workspaces/new/", {"name": ""})
    assert response.status_code == 400
    assert response.context["form"].errors["name"]
    team = Workspace.objects.create(owner=owner, name="T", kind="team")
    Membership.objects.create(workspace=team, user=owner, role="owner")
    response = browser.post(f"/app/workspaces/{team.pk}/invite/", {"email": "nope", "role": "member"})
    assert response.status_code == 400
    assert response.context["invite_form"].errors["email"]
    assert not Invitation.objects.exists()


def _admins_invitation_to_their_second_address(teammate, team, capture) -> tuple[Membership, str]:
    """The teammate, made admin, invites another address of their own as admin."""
    membership = Membership.objects.get(workspace=team, user=teammate)
    membership.role = "admin"
    membership.save(update_fields=["role"])
    with capture(execute=True):
        assert _invite(_client_for(teammate), team, "teammate.alt@example.com", role="admin").status_code == 201
    return membership, _token_from_mail()


@pytest.mark.parametrize("change", [{"method": "delete"}, {"method": "patch", "role": "viewer"}])
def test_removed_or_demoted_admin_cannot_walk_back_in_with_their_invitation(
    api, team, teammate, django_capture_on_commit_callbacks, change
):
    membership, token = _admins_invitation_to_their_second_address(teammate, team, django_capture_on_commit_callbacks)
    url = f"/api/v1/workspaces/{team.pk}/members/{membership.user_id}/"
    if change["method"] == "delete":
        assert api.delete(url).status_code == 204
    else:
        assert api.patch(url, {"role": change["role"]}, format="json").status_code == 200
    # Their open invitations went with the role.
    assert not Invitation.objects.filter(workspace=team, accepted_at__isnull=True).exists()

    alt = UserFactory(email="teammate.alt@example.com")
    response = _client_for(alt).post("/api/v1/invitations/accept/", {"token": token}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "invalid_invitation"
    assert not Membership.objects.filter(workspace=team, user=alt).exists()


@pytest.mark.parametrize("inviter_now, role", [(None, "member"), ("viewer", "admin"), ("admin", "owner")])
def test_acceptance_asks_whether_the_inviter_may_still_give_the_role(
    api, team, teammate, django_capture_on_commit_callbacks, inviter_now, role
):
    # An invitation left open by a change made without the services (or before they withdrew
    # invitations) is refused at acceptance, with a message, and gives no seat.
    Membership.objects.filter(workspace=team, user=teammate).update(role="owner")
    with django_capture_on_commit_callbacks(execute=True):
        assert _invite(_client_for(teammate), team, "teammate.alt@example.com", role=role).status_code == 201
    token = _token_from_mail()
    if inviter_now is None:
        Membership.objects.filter(workspace=team, user=teammate).delete()
    else:
        Membership.objects.filter(workspace=team, user=teammate).update(role=inviter_now)

    alt = UserFactory(email="teammate.alt@example.com")
    response = _client_for(alt).post("/api/v1/invitations/accept/", {"token": token}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "invalid_invitation"
    assert "no longer invite" in response.json()["error"]["message"]
    assert not Membership.objects.filter(workspace=team, user=alt).exists()
    assert Invitation.objects.get(email="teammate.alt@example.com").accepted_at is None


def test_demoted_owner_keeps_the_invitations_an_admin_may_still_give(
    api, team, teammate, owner, django_capture_on_commit_callbacks
):
    Membership.objects.filter(workspace=team, user=teammate).update(role="owner")
    teammate_as_owner = _client_for(teammate)
    with django_capture_on_commit_callbacks(execute=True):
        assert _invite(teammate_as_owner, team, "co.owner@example.com", role="owner").status_code == 201
        assert _invite(teammate_as_owner, team, "helper@example.com", role="admin").status_code == 201
    helper_token = _token_from_mail()
    mine = Membership.objects.get(workspace=team, user=teammate)
    url = f"/api/v1/workspaces/{team.pk}/members/{mine.user_id}/"
    assert api.patch(url, {"role": "admin"}, format="json").status_code == 200

    assert list(Invitation.objects.filter(workspace=team).values_list("email", flat=True)) == ["helper@example.com"]
    helper = UserFactory(email="helper@example.com")
    response = _client_for(helper).post("/api/v1/invitations/accept/", {"token": helper_token}, format="json")
    assert response.status_code == 201
    assert Membership.objects.get(workspace=team, user=helper).role == "admin"
