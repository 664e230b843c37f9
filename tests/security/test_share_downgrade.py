"""Finding A: someone with view on a folder could rewrite another person's share of it.

Re-sharing with a person who already has a share went through ``share_create``, which changed
the existing share's permission without asking whether the caller may change that share.
"""

from __future__ import annotations

import pytest

from files.models import Node, Share
from files.sharing import share_create
from tests.factories import UserFactory, team_workspace
from tests.files.sharing_helpers import client_for, folder, root_of


@pytest.fixture
def people(db):
    alice = UserFactory(email="alice@example.com")
    return {
        "alice": alice,
        "bob": UserFactory(email="bob@example.com"),
        "dave": UserFactory(email="dave@example.com"),
        "vera": UserFactory(email="vera@example.com"),
    }


@pytest.fixture
def sub(people):
    """Alice's team folder /sub, shared with bob (edit) and dave (view); vera is a team viewer."""
    team = team_workspace(people["alice"], "Alice's team", members={people["vera"]: "viewer"})
    sub = folder(people["alice"], root_of(team), "sub")
    alice = _as(people["alice"], sub)
    share_create(actor=people["alice"], node=alice, email="bob@example.com", permission="edit")
    share_create(actor=people["alice"], node=alice, email="dave@example.com", permission="view")
    return sub


def _as(user, node: Node) -> Node:
    from files.access import node_get_for_user

    return node_get_for_user(user=user, node_id=node.pk)


def _bob_upload(people, sub):
    return client_for(people["bob"]).put(
        f"/api/v1/nodes/{sub.pk}/children/bob.txt", data=b"bob's work", content_type="application/octet-stream"
    )


@pytest.mark.parametrize("attacker", ["dave", "vera"])
def test_a_viewer_cannot_downgrade_someone_elses_share(people, sub, attacker):
    response = client_for(people[attacker]).post(
        f"/api/v1/nodes/{sub.pk}/shares/", {"email": "bob@example.com", "permission": "view"}, format="json"
    )

    assert response.status_code == 403, response.content
    assert response.json()["error"]["code"] == "permission_denied"
    assert Share.objects.get(node=sub, user=people["bob"]).permission == "edit"
    assert _bob_upload(people, sub).status_code == 201


def test_the_creator_of_a_share_may_still_change_it_by_sharing_again(people, sub):
    response = client_for(people["alice"]).post(
        f"/api/v1/nodes/{sub.pk}/shares/", {"email": "bob@example.com", "permission": "view"}, format="json"
    )

    assert response.status_code == 200, response.content
    assert Share.objects.get(node=sub, user=people["bob"]).permission == "view"
    assert _bob_upload(people, sub).status_code == 403


def test_a_viewer_resharing_what_a_person_already_has_changes_nothing(people, sub):
    response = client_for(people["dave"]).post(
        f"/api/v1/nodes/{sub.pk}/shares/", {"email": "bob@example.com", "permission": "edit"}, format="json"
    )

    # Asking for more than dave has is refused before the existing share is even looked at.
    assert response.status_code == 403
    assert Share.objects.get(node=sub, user=people["bob"]).permission == "edit"
