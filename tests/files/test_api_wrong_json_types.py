"""A JSON value of the wrong type is refused with 400 in the one error shape, and changes nothing:
DRF converted it (a file renamed to "123", tags [1, 2] kept as "1" and "2", a plan of "10" GB).
Form and multipart bodies, which carry only text, are converted as before (cloudstorage.api_fields)."""

from __future__ import annotations

import pytest

from accounts.models import Workspace
from files.models import Node, PublicLink
from tests.files.api_helpers import make_file, url


@pytest.fixture
def report(owner, root) -> Node:
    return make_file(owner, root, "report.txt")


def _refused(response, field: str) -> dict:
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid" and field in error["details"]["fields"], error
    return error


@pytest.mark.parametrize(
    "body",
    [{"name": 123}, {"name": True}, {"tags": [1, 2]}, {"tags": ["ok", 3.5]}, {"description": 7}, {"parent": 5}],
)
def test_patching_a_node_with_a_wrong_type_is_refused(api, report, body):
    _refused(api.patch(url(report), body, format="json"), next(iter(body)))

    report.refresh_from_db()
    assert report.name == "report.txt" and report.description == "" and not report.tags.exists()


def test_a_workspace_name_must_be_a_string(api, owner):
    before = Workspace.objects.count()

    _refused(api.post("/api/v1/workspaces/", {"name": 5}, format="json"), "name")

    assert Workspace.objects.count() == before


@pytest.mark.parametrize("body", [{"password": 1234}, {"max_downloads": "3"}, {"max_downloads": 2.0}])
def test_a_link_with_a_wrong_type_is_refused(api, report, body):
    _refused(api.post(url(report, "links/"), body, format="json"), next(iter(body)))

    assert not PublicLink.objects.exists()


@pytest.mark.parametrize("gb", ["10", 10.0, True])
def test_a_plan_size_must_be_a_json_integer(api, owner_workspace, gb):
    _refused(api.put(f"/api/v1/workspaces/{owner_workspace.pk}/plan/", {"gb": gb}, format="json"), "gb")

    owner_workspace.refresh_from_db()
    assert owner_workspace.plan_gb == 1


def test_a_folder_name_and_a_copy_name_must_be_strings(api, root, report):
    _refused(api.post(url(root, "children/"), {"type": "folder", "name": 42}, format="json"), "name")
    _refused(api.post(url(report, "copy/"), {"parent": str(root.pk), "name": 42}, format="json"), "name")

    assert not Node.objects.filter(name="42").exists()


def test_version_pin_and_policy_take_only_their_json_types(api, report, owner_workspace):
    _refused(api.patch(url(report, "versions/1/"), {"pinned": "yes"}, format="json"), "pinned")
    policy = f"/api/v1/workspaces/{owner_workspace.pk}/version-policy/"
    _refused(api.put(policy, {"keep_versions": "5"}, format="json"), "keep_versions")


def test_the_right_types_still_work_and_form_bodies_are_still_text(api, report, owner_workspace):
    assert api.patch(url(report), {"name": "2024.txt", "tags": ["a", "b"]}, format="json").status_code == 200
    assert api.post(url(report, "links/"), {"password": "1234", "max_downloads": 3}, format="json").status_code == 201
    # A form carries numbers as text: converted as before.
    assert api.patch(url(report), {"name": "123"}).status_code == 200
    assert api.post(url(report, "links/"), {"max_downloads": "2"}).status_code == 201
    report.refresh_from_db()
    assert report.name == "123"
