from accounts.models import Workspace
from tests.factories import personal_workspace


def test_new_user_has_personal_workspace_with_free_plan(api, owner):
    response = api.get("/api/v1/workspaces/")
    assert response.status_code == 200
    [workspace] = response.json()
    assert workspace["kind"] == "personal"
    assert workspace["role"] == "owner"
    assert workspace["plan_gb"] == 1
    assert workspace["quota_bytes"] == 1024**3
    assert workspace["used_bytes"] == 0
    assert workspace["category"] == "A"
    assert workspace["root"] == str(personal_workspace(owner).nodes.get(parent=None).pk)


def test_outsider_gets_404_for_another_workspace(outsider_api, team):
    response = outsider_api.get(f"/api/v1/workspaces/{team.pk}/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert outsider_api.get(f"/api/v1/workspaces/{team.pk}/members/").status_code == 404


def test_create_team_workspace(api, owner):
    response = api.post("/api/v1/workspaces/", {"name": "Design"}, format="json")
    assert response.status_code == 201
    assert response.json()["kind"] == "team"
    assert Workspace.objects.filter(owner=owner, kind="team", name="Design").exists()


def test_create_team_workspace_without_name_is_refused(api, owner):
    response = api.post("/api/v1/workspaces/", {"name": "  "}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["message"]
    assert not Workspace.objects.filter(owner=owner, kind="team").exists()
