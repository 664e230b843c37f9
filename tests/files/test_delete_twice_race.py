"""Two DELETEs of the same link or share at once: one revokes it (204), the other finds it gone (404),
as a DELETE after it would; never two 204s and never two activity entries."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from files.models import Activity, PublicLink, Share
from tests.factories import UserFactory
from tests.files.races import postgres_only, race
from tests.files.sharing_helpers import folder, root_of

pytestmark = [postgres_only, pytest.mark.django_db(transaction=True)]


def _owner_client(owner) -> APIClient:
    client = APIClient()
    client.force_authenticate(owner)
    return client


@pytest.mark.parametrize("kind", ["link", "share"])
def test_two_deletes_at_once_are_one_204_and_one_404(owner, owner_workspace, kind):
    node = folder(owner, root_of(owner_workspace), "shared")
    api = _owner_client(owner)
    if kind == "link":
        made = api.post(f"/api/v1/nodes/{node.pk}/links/", {}, format="json").json()
        url, verb = f"/api/v1/links/{made['id']}/", "link_revoke"
    else:
        grantee = UserFactory()
        made = api.post(
            f"/api/v1/nodes/{node.pk}/shares/", {"email": grantee.email, "permission": "view"}, format="json"
        ).json()
        url, verb = f"/api/v1/shares/{made['id']}/", "unshare"

    for _ in range(5):  # the race is a matter of timing: a few rounds make an interleaving likely
        statuses = race(*(lambda: _owner_client(owner).delete(url).status_code for _ in range(2)))
        assert sorted(statuses) == [204, 404], statuses
        assert Activity.objects.filter(workspace=owner_workspace, verb=verb).count() == 1
        if kind == "link":
            PublicLink.objects.filter(pk=made["id"]).update(revoked_at=None)
        else:
            Share.objects.create(
                pk=made["id"], workspace=owner_workspace, node=node, user=grantee, permission="view", created_by=owner
            )
        Activity.objects.filter(workspace=owner_workspace, verb=verb).delete()
