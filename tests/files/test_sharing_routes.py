"""Shares through the node routes of the API: a grantee uses what their permission allows, and a
revoke is refused on the very next request for content, listing and zip."""

from __future__ import annotations

import io
import zipfile

import pytest

from files.models import Node
from tests.files.sharing_helpers import body, folder, upload

# Someone outside the workspace to share with, present in every test of this module.
pytestmark = pytest.mark.usefixtures("friend")


@pytest.fixture
def project(owner, root):
    project = folder(owner, root, "project")
    return {"folder": project, "file": upload(owner, project, "plan.txt", b"the plan")}


def share(api, node, permission="view"):
    response = api.post(
        f"/api/v1/nodes/{node.pk}/shares/", {"email": "friend@example.com", "permission": permission}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def routes(project):
    return {
        "node": f"/api/v1/nodes/{project['file'].pk}/",
        "content": f"/api/v1/nodes/{project['file'].pk}/content",
        "listing": f"/api/v1/nodes/{project['folder'].pk}/children/",
        "zip": f"/api/v1/nodes/{project['folder'].pk}/zip",
    }


def test_grantee_reads_content_listing_and_zip_and_revoke_stops_all_on_the_next_request(api, friend_api, project):
    share_id = share(api, project["folder"])
    urls = routes(project)
    assert friend_api.get(urls["node"]).json()["permission"] == "view"
    assert body(friend_api.get(urls["content"])) == b"the plan"
    assert [item["name"] for item in friend_api.get(urls["listing"]).json()["results"]] == ["plan.txt"]
    archive = zipfile.ZipFile(io.BytesIO(body(friend_api.get(urls["zip"]))))
    assert any(name.endswith("plan.txt") for name in archive.namelist())

    assert api.delete(f"/api/v1/shares/{share_id}/").status_code == 204

    for what, url in urls.items():
        assert friend_api.get(url).status_code == 404, what


def test_downgrade_to_view_refuses_writes_on_the_next_request(api, friend_api, project):
    share_id = share(api, project["folder"], "edit")
    url = f"/api/v1/nodes/{project['folder'].pk}/children/"
    assert friend_api.post(url, {"type": "folder", "name": "mine"}, format="json").status_code == 201

    api.patch(f"/api/v1/shares/{share_id}/", {"permission": "view"}, format="json")

    assert friend_api.post(url, {"type": "folder", "name": "mine too"}, format="json").status_code == 403
    assert not Node.objects.filter(name="mine too").exists()


def test_delete_through_the_api_moves_to_the_trash_and_shares_come_back_on_restore(
    api, friend_api, project, owner_workspace
):
    share(api, project["folder"])
    url = routes(project)["content"]
    assert api.delete(f"/api/v1/nodes/{project['folder'].pk}/").status_code == 204
    assert friend_api.get(url).status_code == 404
    assert friend_api.get("/api/v1/shared-with-me/").json() == []
    (entry,) = api.get(f"/api/v1/workspaces/{owner_workspace.pk}/trash/").json()["results"]
    assert entry["id"] == str(project["folder"].pk)

    assert api.post(f"/api/v1/trash/{entry['id']}/restore/").status_code == 200

    assert body(friend_api.get(url)) == b"the plan"


def test_outsider_gets_404_on_shared_content(api, outsider_api, project):
    share(api, project["folder"])
    for what, url in routes(project).items():
        assert outsider_api.get(url).status_code == 404, what
