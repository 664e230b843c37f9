"""A public link lends its creator's access to anyone with the token, so it works only while the
creator may still edit its item: revoking their share, removing or demoting them switches it off at
once, and the workspace's managers still see and can revoke it (audit 2)."""

from __future__ import annotations

from django.test import Client
from django.urls import reverse

from accounts.models import Membership
from files.models import Node
from tests.factories import UserFactory, personal_workspace, team_workspace
from tests.files.sharing_helpers import body, client_for, folder, root_of, upload


def _link(api, node: Node, **fields) -> dict:
    response = api.post(f"/api/v1/nodes/{node.pk}/links/", fields, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def _share(api, node: Node, user, permission: str = "edit") -> str:
    response = api.post(
        f"/api/v1/nodes/{node.pk}/shares/", {"email": user.email, "permission": permission}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def _membership(team, user) -> Membership:
    return Membership.objects.get(workspace=team, user=user)


def test_link_made_by_a_grantee_stops_when_their_share_is_revoked(owner, api):
    project = folder(owner, root_of(personal_workspace(owner)), "project")
    upload(owner, project, "secret.txt", b"owner's secret")
    grantee = UserFactory(email="grantee@example.com")
    share_id = _share(api, project, grantee)
    link = _link(client_for(grantee), project)
    anonymous = Client()
    assert anonymous.get(f"/s/{link['token']}/download").status_code == 200

    assert api.delete(f"/api/v1/shares/{share_id}/").status_code == 204

    response = anonymous.get(f"/s/{link['token']}/download")
    assert response.status_code == 410, (response.status_code, body(response)[:60])
    assert b"no longer has access" in response.content
    assert anonymous.get(f"/s/{link['token']}").status_code == 410
    # The owner still sees the link, told why it is off, and can revoke it for good.
    inventory = api.get(f"/api/v1/workspaces/{project.workspace_id}/links/").json()["results"]
    assert [(row["id"], row["state"]) for row in inventory] == [(link["id"], "creator_lost_access")]
    assert api.get(f"/api/v1/nodes/{project.pk}/links/").json()[0]["state"] == "creator_lost_access"
    browser = Client()
    browser.force_login(owner)
    page = browser.get(reverse("files_links", args=[project.workspace_id]))
    assert page.status_code == 200 and b">creator_lost_access<" in page.content
    assert api.delete(f"/api/v1/links/{link['id']}/").status_code == 204


def test_link_made_by_a_grantee_works_while_the_share_above_it_lasts(owner, api):
    project = folder(owner, root_of(personal_workspace(owner)), "project/inner")
    upload(owner, project, "a.txt", b"aaa")
    grantee = UserFactory(email="grantee@example.com")
    _share(api, project.parent, grantee)
    link = _link(client_for(grantee), project)

    assert body(Client().get(f"/s/{link['token']}/download"))[:2] == b"PK"
    assert api.get(f"/api/v1/nodes/{project.pk}/links/").json()[0]["state"] == "active"


def test_link_of_a_grantee_demoted_to_view_stops(owner, api):
    project = folder(owner, root_of(personal_workspace(owner)), "project")
    grantee = UserFactory(email="grantee@example.com")
    share_id = _share(api, project, grantee)
    link = _link(client_for(grantee), project)

    assert api.patch(f"/api/v1/shares/{share_id}/", {"permission": "view"}, format="json").status_code == 200
    assert Client().get(f"/s/{link['token']}").status_code == 410


def test_upload_link_made_by_a_removed_member_stops_taking_files(owner, teammate, teammate_api):
    team = team_workspace(owner, "Acme2", members={teammate: "member"})
    inbox = folder(owner, root_of(team), "inbox")
    link = _link(teammate_api, inbox, permission="upload")

    removed = client_for(owner).delete(f"/api/v1/workspaces/{team.pk}/members/{_membership(team, teammate).user_id}/")
    assert removed.status_code == 204

    anonymous = Client()
    assert anonymous.get(f"/s/{link['token']}").status_code == 410
    sent = anonymous.post(f"/s/{link['token']}/upload", {"file": [_file("late.txt")]})
    assert sent.status_code == 410
    assert not Node.objects.filter(parent=inbox, name="late.txt").exists()
    # Its managers still list and revoke it.
    owner_api = client_for(owner)
    assert owner_api.get(f"/api/v1/links/{link['id']}/").json()["state"] == "creator_lost_access"
    assert owner_api.delete(f"/api/v1/links/{link['id']}/").status_code == 204


def test_link_of_a_member_demoted_to_viewer_stops_and_comes_back_with_the_role(owner, teammate, teammate_api):
    team = team_workspace(owner, "Acme2", members={teammate: "member"})
    docs = folder(owner, root_of(team), "docs")
    link = _link(teammate_api, docs)
    owner_api = client_for(owner)
    member_url = f"/api/v1/workspaces/{team.pk}/members/{_membership(team, teammate).user_id}/"

    assert owner_api.patch(member_url, {"role": "viewer"}, format="json").status_code == 200
    assert Client().get(f"/s/{link['token']}").status_code == 410

    assert owner_api.patch(member_url, {"role": "member"}, format="json").status_code == 200
    assert Client().get(f"/s/{link['token']}").status_code == 200


def test_link_of_a_deactivated_creator_stops(owner, teammate, teammate_api):
    team = team_workspace(owner, "Acme2", members={teammate: "member"})
    link = _link(teammate_api, folder(owner, root_of(team), "docs"))

    teammate.is_active = False
    teammate.save(update_fields=["is_active"])
    assert Client().get(f"/s/{link['token']}").status_code == 410


def _file(name: str):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, b"hello", content_type="text/plain")
