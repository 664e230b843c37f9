"""History through the API: list, rollback, pin/unpin, delete an old version, the version policy."""

from __future__ import annotations

from files import versions as versions_module
from files.models import FilesPolicy, FileVersion
from files.versions import versions_thin
from tests.files.api_helpers import body_of, make_file, url, workspace_root


def put(api, node, data: bytes):
    response = api.put(url(node, "content"), data, content_type="application/octet-stream")
    assert response.status_code == 200, response.content
    return response


def test_versions_list_newest_first_with_current_flag(api, owner, root):
    node = make_file(owner, root, "a.txt", b"v1")
    put(api, node, b"v2!")
    response = api.get(url(node, "versions/"))
    assert response.status_code == 200
    rows = response.json()
    assert [(r["number"], r["size"], r["current"]) for r in rows] == [(2, 3, True), (1, 2, False)]
    assert rows[0]["created_by"] == "owner@example.com" and rows[0]["pinned"] is False


def test_restore_makes_a_new_version_equal_to_the_old_one(api, owner, root, owner_workspace):
    node = make_file(owner, root, "a.txt", b"first")
    put(api, node, b"second")
    response = api.post(url(node, "versions/1/restore/"))
    assert response.status_code == 201 and response.json()["version"] == 3
    assert body_of(api.get(url(node, "content"))) == b"first"
    assert [v["restored_from"] for v in api.get(url(node, "versions/")).json()] == [1, None, None]
    owner_workspace.refresh_from_db()
    assert owner_workspace.used_bytes == 5 + 6 + 5
    assert api.post(url(node, "versions/7/restore/")).status_code == 404


def test_pinned_version_survives_the_policy(api, owner, root, django_capture_on_commit_callbacks):
    node = make_file(owner, root, "a.txt", b"1")
    assert api.patch(url(node, "versions/1/"), {"pinned": True}, format="json").json()["pinned"] is True
    workspace = node.workspace
    FilesPolicy.objects.create(workspace=workspace, keep_versions=2)
    for data in (b"22", b"333", b"4444"):
        with django_capture_on_commit_callbacks(execute=True):
            put(api, node, data)
    numbers = sorted(FileVersion.objects.filter(node=node).values_list("number", flat=True))
    assert numbers == [1, 3, 4]  # 1 is pinned; the last 2 are kept; 2 was thinned
    workspace.refresh_from_db()
    assert workspace.used_bytes == 1 + 3 + 4
    with django_capture_on_commit_callbacks(execute=True):
        api.patch(url(node, "versions/1/"), {"pinned": False}, format="json")
    assert sorted(FileVersion.objects.filter(node=node).values_list("number", flat=True)) == [3, 4]


def test_a_version_pinned_while_the_policy_thins_the_file_is_kept(api, owner, root, monkeypatch):
    """The thinning reads the versions' pinned flags once; the owner pins v1 (200) right after that
    read, before the thinning deletes it: v1 stays, its bytes counted."""
    FilesPolicy.objects.create(workspace=root.workspace, keep_versions=1)
    node = make_file(owner, root, "plan.txt", b"v1 " * 500)
    put(api, node, b"v2 " * 500)  # its thinning runs on commit, which this test never reaches
    real_delete = versions_module.version_delete
    answers = []

    def owner_pins_first(**kwargs):
        if not answers:
            answers.append(api.patch(url(node, "versions/1/"), {"pinned": True}, format="json"))
        return real_delete(**kwargs)

    monkeypatch.setattr(versions_module, "version_delete", owner_pins_first)
    versions_thin(node_id=node.pk)

    assert answers[0].status_code == 200 and answers[0].json()["pinned"] is True
    assert FileVersion.objects.filter(node=node, number=1, pinned=True).exists(), "the pinned version was deleted"
    root.workspace.refresh_from_db()
    assert root.workspace.used_bytes == 2 * 1500


def test_delete_an_old_version_frees_its_bytes_but_not_the_current(api, owner, root, owner_workspace):
    node = make_file(owner, root, "a.txt", b"old")
    put(api, node, b"newer")
    assert api.delete(url(node, "versions/2/")).status_code == 409
    assert api.delete(url(node, "versions/1/")).status_code == 204
    owner_workspace.refresh_from_db()
    assert owner_workspace.used_bytes == 5
    assert api.delete(url(node, "versions/1/")).status_code == 404


def test_version_policy_is_set_by_owners_and_applied(
    api, owner, root, owner_workspace, django_capture_on_commit_callbacks
):
    node = make_file(owner, root, "a.txt", b"1")
    for data in (b"22", b"333", b"4444"):
        put(api, node, data)
    policy_url = f"/api/v1/workspaces/{owner_workspace.pk}/version-policy/"
    assert api.get(policy_url).json() == {"keep_versions": 50, "keep_days": None}
    with django_capture_on_commit_callbacks(execute=True):
        response = api.put(policy_url, {"keep_versions": 2, "keep_days": 30}, format="json")
    assert response.status_code == 200 and response.json() == {"keep_versions": 2, "keep_days": 30}
    assert sorted(FileVersion.objects.filter(node=node).values_list("number", flat=True)) == [3, 4]
    assert api.put(policy_url, {"keep_versions": 0}, format="json").status_code == 400


def test_version_policy_is_for_owners_and_admins_only(teammate_api, outsider_api, team):
    policy_url = f"/api/v1/workspaces/{team.pk}/version-policy/"
    assert teammate_api.get(policy_url).status_code == 200
    assert teammate_api.put(policy_url, {"keep_versions": 3}, format="json").status_code == 403
    assert outsider_api.get(policy_url).status_code == 404
    assert outsider_api.put(policy_url, {"keep_versions": 3}, format="json").status_code == 404


def test_history_survives_delete_and_restore(api, owner, team):
    root = workspace_root(team)
    node = make_file(owner, root, "a.txt", b"1")
    put(api, node, b"22")
    assert api.delete(url(node)).status_code == 204
    assert api.post(f"/api/v1/trash/{node.pk}/restore/").status_code in (200, 201)
    assert [v["number"] for v in api.get(url(node, "versions/")).json()] == [2, 1]


def test_folder_has_no_versions(api, root):
    assert api.get(url(root, "versions/")).status_code == 400


def test_age_limit_drops_old_versions_but_keeps_pinned_and_current(
    api, owner, root, owner_workspace, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    node = make_file(owner, root, "a.txt", b"1")
    put(api, node, b"22")
    put(api, node, b"333")
    FileVersion.objects.filter(node=node).update(created_at=timezone.now() - timedelta(days=40))
    FileVersion.objects.filter(node=node, number=2).update(pinned=True)
    policy_url = f"/api/v1/workspaces/{owner_workspace.pk}/version-policy/"
    with django_capture_on_commit_callbacks(execute=True):
        assert api.put(policy_url, {"keep_versions": 50, "keep_days": 30}, format="json").status_code == 200
    assert sorted(FileVersion.objects.filter(node=node).values_list("number", flat=True)) == [2, 3]
    owner_workspace.refresh_from_db()
    assert owner_workspace.used_bytes == 2 + 3


def test_versions_past_the_age_limit_go_at_night_without_a_new_upload(api, owner, root, owner_workspace):
    """keep_days applies with time alone: the nightly job drops v1 of a file nobody writes again
    (pinned and current versions stay)."""
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from files.tasks import versions_thin_due

    node = make_file(owner, root, "log.txt", b"a" * 3000)
    put(api, node, b"z" * 3000)
    put(api, node, b"b" * 3000)
    put(api, node, b"c" * 3000)
    other = make_file(owner, root, "pinned.txt", b"p" * 100)
    put(api, other, b"q" * 100)
    FilesPolicy.objects.create(workspace=owner_workspace, keep_versions=50, keep_days=7)
    FileVersion.objects.filter(workspace=owner_workspace).update(created_at=timezone.now() - timedelta(days=30))
    FileVersion.objects.filter(node=node, number=3).update(pinned=True)
    assert settings.CELERY_BEAT_SCHEDULE["versions-thin"]["task"] == "files.tasks.versions_thin_due"

    assert versions_thin_due.delay().get() == {"files": 2, "removed": 3, "failed": 0}

    assert sorted(FileVersion.objects.filter(node=node).values_list("number", flat=True)) == [3, 4]
    assert list(FileVersion.objects.filter(node=other).values_list("number", flat=True)) == [2]
    owner_workspace.refresh_from_db()
    assert owner_workspace.used_bytes == 3000 + 3000 + 100
    assert versions_thin_due.delay().get() == {"files": 0, "removed": 0, "failed": 0}  # nothing left to do


def test_a_thinning_that_failed_after_an_upload_is_retried_at_night(
    api, owner, root, owner_workspace, monkeypatch, django_capture_on_commit_callbacks
):
    from files.tasks import versions_thin_due

    FilesPolicy.objects.create(workspace=owner_workspace, keep_versions=2)
    node = make_file(owner, root, "a.txt", b"1")
    put(api, node, b"22")

    def broken(**kwargs):
        raise OSError("the database went away")

    monkeypatch.setattr(versions_module, "versions_thin", broken)
    with django_capture_on_commit_callbacks(execute=True):
        put(api, node, b"333")  # its thinning fails (logged)
    monkeypatch.undo()
    assert FileVersion.objects.filter(node=node).count() == 3

    assert versions_thin_due.delay().get() == {"files": 1, "removed": 1, "failed": 0}
    assert sorted(FileVersion.objects.filter(node=node).values_list("number", flat=True)) == [2, 3]


def test_the_nightly_thinning_takes_a_bounded_batch(api, owner, root, owner_workspace):
    from files.versions import versions_thin_due

    FilesPolicy.objects.create(workspace=owner_workspace, keep_versions=1)
    nodes = [make_file(owner, root, f"f{i}.txt", b"1") for i in range(3)]
    for node in nodes:  # no thinning on commit here: each keeps both versions
        put(api, node, b"22")

    assert versions_thin_due(limit=2) == {"files": 2, "removed": 2, "failed": 0}
    assert versions_thin_due(limit=2) == {"files": 1, "removed": 1, "failed": 0}
    assert FileVersion.objects.filter(node__in=nodes).count() == 3
