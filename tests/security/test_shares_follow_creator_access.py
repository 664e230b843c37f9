"""A share lends its creator's access, so, as a public link, it works only while the creator may
still edit the shared item: revoking, lowering or removing the creator's own access ends the
reshares they made (and the reshares made from those), at once, and they work again if the creator
regains edit. Sharing onwards needs edit, as in Dropbox and Google Drive (audit 1)."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import Membership
from files.models import Node, Share
from tests.factories import UserFactory, personal_workspace, team_workspace
from tests.files.sharing_helpers import client_for, folder, root_of, upload


def _share(client, node: Node, user, permission: str = "edit"):
    return client.post(
        f"/api/v1/nodes/{node.pk}/shares/", {"email": user.email, "permission": permission}, format="json"
    )


def _sees(user, node: Node) -> int:
    return client_for(user).get(f"/api/v1/nodes/{node.pk}/").status_code


@pytest.fixture
def secret(owner):
    """The owner's /Secret/inner with a file in it."""
    inner = folder(owner, root_of(personal_workspace(owner)), "Secret/inner")
    upload(owner, inner, "plan.txt", b"the plan")
    return inner.parent


@pytest.fixture
def people(db):
    return {name: UserFactory(email=f"{name}@example.com") for name in ("middle", "third", "fourth")}


def test_revoking_a_share_also_ends_the_reshares_it_made(api, secret, people):
    middle, third = people["middle"], people["third"]
    share = _share(api, secret, middle).json()
    assert _share(client_for(middle), secret, third, "view").status_code == 201
    assert _sees(third, secret) == 200

    assert api.delete(f"/api/v1/shares/{share['id']}/").status_code == 204

    assert _sees(middle, secret) == 404
    assert _sees(third, secret) == 404
    assert _sees(third, secret.children.get()) == 404
    assert client_for(third).get("/api/v1/shared-with-me/").json() == []
    # The owner still sees the reshare, marked as not in effect, and may revoke it; it works again if
    # middle is shared again.
    listed = api.get(f"/api/v1/nodes/{secret.pk}/shares/").json()
    assert [(row["email"], row["active"]) for row in listed] == [(third.email, False)]
    assert _share(api, secret, middle).status_code == 201
    assert _sees(third, secret) == 200
    listed = api.get(f"/api/v1/nodes/{secret.children.get().pk}/shares/").json()
    assert [(row["email"], row["active"]) for row in listed] == [(third.email, True), (middle.email, True)]
    assert len(client_for(third).get("/api/v1/shared-with-me/").json()) == 1


def test_a_chain_of_reshares_ends_with_its_first_link(api, secret, people):
    middle, third, fourth = people["middle"], people["third"], people["fourth"]
    share = _share(api, secret, middle).json()
    assert _share(client_for(middle), secret, third).status_code == 201
    inner = secret.children.get()
    assert _share(client_for(third), inner, fourth, "view").status_code == 201
    assert _sees(fourth, inner) == 200

    assert api.patch(f"/api/v1/shares/{share['id']}/", {"permission": "view"}, format="json").status_code == 200

    # middle may still see, but no longer edit, so what they lent (and what was lent from it) ends.
    assert _sees(middle, secret) == 200
    assert _sees(third, secret) == 404
    assert _sees(fourth, inner) == 404


def test_reshares_that_grant_each_other_give_nothing(api, secret, people):
    middle, third = people["middle"], people["third"]
    share = _share(api, secret, middle).json()
    inner = secret.children.get()
    assert _share(client_for(middle), secret, third).status_code == 201
    assert _share(client_for(third), inner, middle).status_code == 201

    assert api.delete(f"/api/v1/shares/{share['id']}/").status_code == 204

    assert _sees(middle, inner) == 404
    assert _sees(third, inner) == 404


def test_a_removed_or_demoted_members_shares_stop_and_come_back(owner, teammate, people):
    team = team_workspace(owner, "Acme", members={teammate: "member"})
    docs = folder(owner, root_of(team), "docs")
    third = people["third"]
    assert _share(client_for(teammate), docs, third, "view").status_code == 201
    assert _sees(third, docs) == 200

    Membership.objects.filter(workspace=team, user=teammate).update(role="viewer")
    assert _sees(third, docs) == 404
    Membership.objects.filter(workspace=team, user=teammate).update(role="member")
    assert _sees(third, docs) == 200
    Membership.objects.filter(workspace=team, user=teammate).delete()
    assert _sees(third, docs) == 404


def test_a_deactivated_creators_shares_stop(api, secret, people):
    middle, third = people["middle"], people["third"]
    _share(api, secret, middle)
    _share(client_for(middle), secret, third, "view")

    middle.is_active = False
    middle.save(update_fields=["is_active"])

    assert _sees(third, secret) == 404


def test_a_link_made_through_a_dead_reshare_stops(api, secret, people):
    middle, third = people["middle"], people["third"]
    share = _share(api, secret, middle).json()
    _share(client_for(middle), secret, third)
    link = client_for(third).post(f"/api/v1/nodes/{secret.pk}/links/", {}, format="json").json()
    assert Client().get(f"/s/{link['token']}").status_code == 200

    api.delete(f"/api/v1/shares/{share['id']}/")

    assert Client().get(f"/s/{link['token']}").status_code == 410
    assert api.get(f"/api/v1/nodes/{secret.pk}/links/").json()[0]["state"] == "creator_lost_access"


def test_a_team_viewer_may_not_share_team_files(owner, people):
    viewer = UserFactory(email="viewer@example.com")
    team = team_workspace(owner, "Acme", members={viewer: "viewer"})
    docs = folder(owner, root_of(team), "docs")

    response = _share(client_for(viewer), docs, people["third"], "view")

    assert response.status_code == 403, response.content
    assert response.json()["error"]["code"] == "permission_denied"
    assert not Share.objects.exists()


def test_a_view_only_grantee_may_not_reshare(api, secret, people):
    middle, third = people["middle"], people["third"]
    _share(api, secret, middle, "view")

    response = _share(client_for(middle), secret.children.get(), third, "view")

    assert response.status_code == 403, response.content
    assert Share.objects.filter(user=third).count() == 0
    assert _sees(third, secret) == 404
