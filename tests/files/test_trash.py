"""The trash: delete keeps the original path, restore puts things back (re-creating folders, renaming
on conflict), purge frees quota and chunks, the nightly job honours the retention."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from cloudstorage.errors import ServiceError
from disks.gc import chunks_gc
from disks.models import Chunk
from files import tasks
from files.activity import node_path
from files.models import Activity, FileVersion, Node
from files.trash import node_purge, node_trash, trash_empty, trash_purge_expired, trash_restore
from files.uploads import file_upload_version
from tests.files.sharing_helpers import content, folder, root_of, upload

DAY = timedelta(days=1)


def used(workspace) -> int:
    workspace.refresh_from_db(fields=["used_bytes"])
    return workspace.used_bytes


def test_delete_hides_the_subtree_and_restore_puts_it_back_where_it_was(owner, root, api):
    docs = folder(owner, root, "docs/2026")
    report = upload(owner, docs, "report.pdf", b"%PDF report")
    node_trash(user=owner, node=docs.parent)
    report.refresh_from_db()
    assert report.trashed_in_id == docs.parent_id

    response = api.post(f"/api/v1/trash/{docs.parent_id}/restore/")

    assert response.status_code == 200, response.content
    assert response.json()["path"] == "/docs"
    report.refresh_from_db()
    assert report.trashed_in_id is None and node_path(node=report) == "/docs/2026/report.pdf"
    assert content(report) == b"%PDF report"


def test_restore_after_the_parent_folder_was_deleted_and_purged_recreates_the_path(owner, root, api):
    docs = folder(owner, root, "work/docs")
    report = upload(owner, docs, "report.pdf", b"report")
    node_trash(user=owner, node=report)
    node_trash(user=owner, node=docs.parent)  # /work, with /work/docs inside
    assert api.delete(f"/api/v1/trash/{docs.parent_id}/").status_code == 204
    assert not Node.objects.filter(pk__in=[docs.pk, docs.parent_id]).exists()

    response = api.post(f"/api/v1/trash/{report.pk}/restore/")

    assert response.status_code == 200, response.content
    assert response.json()["path"] == "/work/docs/report.pdf"
    report.refresh_from_db()
    assert report.parent.name == "docs" and report.parent.parent.name == "work"
    assert content(report) == b"report"


def test_restore_while_the_parent_is_still_in_the_trash_recreates_the_path(owner, root):
    docs = folder(owner, root, "docs")
    report = upload(owner, docs, "report.pdf", b"r")
    node_trash(user=owner, node=report)
    node_trash(user=owner, node=docs)

    restored = trash_restore(user=owner, node=report)

    assert node_path(node=restored) == "/docs/report.pdf"
    assert restored.parent_id != docs.pk  # a new, live /docs
    again = trash_restore(user=owner, node=docs)
    assert again.name == "docs (restored)"


def test_restore_renames_on_a_name_conflict(owner, root):
    first = upload(owner, root, "report.pdf", b"old")
    node_trash(user=owner, node=first)
    upload(owner, root, "report.pdf", b"new")

    restored = trash_restore(user=owner, node=first)

    assert restored.name == "report (restored).pdf"
    second = upload(owner, root, "notes.txt", b"1")
    node_trash(user=owner, node=second)
    upload(owner, root, "notes.txt", b"2")
    upload(owner, root, "notes (restored).txt", b"3")
    assert trash_restore(user=owner, node=second).name == "notes (restored 2).txt"


def test_restore_when_a_file_took_the_folder_name_recreates_the_folder_renamed(owner, root):
    note = upload(owner, folder(owner, root, "work"), "note.txt", b"n")
    node_trash(user=owner, node=note)
    node_trash(user=owner, node=note.parent)
    node_purge(node=note.parent)
    upload(owner, root, "work", b"a file now")

    restored = trash_restore(user=owner, node=note)

    assert node_path(node=restored) == "/work (restored)/note.txt"


def test_restore_of_something_not_in_the_trash_is_a_404(owner, root, api):
    live = upload(owner, root, "a.txt", b"a")
    assert api.post(f"/api/v1/trash/{live.pk}/restore/").status_code == 404
    with pytest.raises(ServiceError) as caught:
        trash_restore(user=owner, node=live)
    assert caught.value.status_code == 404


def test_trashed_items_count_in_the_quota_until_purged(owner, root, owner_workspace):
    node = upload(owner, root, "big.bin", b"x" * 5000)
    file_upload_version(user=owner, node=node, stream=[b"y" * 3000])
    before = used(owner_workspace)
    assert before == 8000

    node_trash(user=owner, node=node)
    assert used(owner_workspace) == 8000

    assert node_purge(user=owner, node=node) is True
    assert used(owner_workspace) == 0
    assert not FileVersion.objects.filter(node_id=node.pk).exists()
    assert node_purge(user=owner, node=node) is False  # idempotent


def test_purge_at_retention_plus_one_second_removes_and_minus_one_second_keeps(owner, root):
    assert settings.CLOUDSTORAGE_TRASH_DAYS == 30
    old = upload(owner, root, "old.txt", b"o")
    node_trash(user=owner, node=old)
    old.refresh_from_db()
    deleted_at = old.deleted_at
    retention = timedelta(days=30)

    assert trash_purge_expired(now=deleted_at + retention - timedelta(seconds=1)) == 0
    assert Node.objects.filter(pk=old.pk).exists()

    assert trash_purge_expired(now=deleted_at + retention + timedelta(seconds=1)) == 1
    assert not Node.objects.filter(pk=old.pk).exists()
    assert trash_purge_expired(now=deleted_at + retention + timedelta(seconds=1)) == 0


def test_retention_follows_the_setting(owner, root, settings):
    settings.CLOUDSTORAGE_TRASH_DAYS = 7
    node = upload(owner, root, "a.txt", b"a")
    node_trash(user=owner, node=node)
    node.refresh_from_db()
    assert trash_purge_expired(now=node.deleted_at + 7 * DAY + timedelta(seconds=1)) == 1


def test_nightly_task_is_scheduled_and_purges_expired_entries(owner, root, owner_workspace):
    assert settings.CELERY_BEAT_SCHEDULE["trash-purge-expired"]["task"] == "files.tasks.trash_purge_expired"
    expired = upload(owner, root, "expired.txt", b"12345")
    recent = upload(owner, root, "recent.txt", b"678")
    node_trash(user=owner, node=expired)
    node_trash(user=owner, node=recent)
    Node.objects.filter(pk=expired.pk).update(deleted_at=timezone.now() - 31 * DAY)

    assert tasks.trash_purge_expired.delay().get() == 1

    assert not Node.objects.filter(pk=expired.pk).exists()
    assert Node.objects.filter(pk=recent.pk, deleted_at__isnull=False).exists()
    assert used(owner_workspace) == 3


def test_purge_of_an_entry_restored_meanwhile_does_nothing(owner, root):
    node = upload(owner, root, "a.txt", b"a")
    node_trash(user=owner, node=node)
    stale = Node.objects.get(pk=node.pk)  # what a purge run loaded before the restore committed
    trash_restore(user=owner, node=node)

    assert node_purge(node=stale, older_than=timezone.now()) is False
    node.refresh_from_db()
    assert node.trashed_in_id is None and content(node) == b"a"


def test_restore_of_an_entry_purged_meanwhile_is_a_clean_404(owner, root):
    node = upload(owner, root, "a.txt", b"a")
    node_trash(user=owner, node=node)
    stale = Node.objects.get(pk=node.pk)
    node_purge(node=node)
    with pytest.raises(ServiceError) as caught:
        trash_restore(user=owner, node=stale)
    assert caught.value.status_code == 404
    assert not Node.objects.filter(name="a.txt").exists()


def test_a_chunk_shared_by_a_purged_file_and_a_live_file_survives_the_purge(owner, root):
    data = bytes(range(256)) * 1024  # 256 KiB: several chunks
    doomed = upload(owner, root, "copy-1.bin", data)
    survivor = upload(owner, root, "copy-2.bin", data)
    unique = upload(owner, root, "unique.bin", b"only here" * 5000)
    shared_chunks = set(
        Chunk.objects.filter(references__manifest=survivor.current_version.manifest).values_list("pk", flat=True)
    )
    assert shared_chunks == set(
        Chunk.objects.filter(references__manifest=doomed.current_version.manifest).values_list("pk", flat=True)
    )
    unique_chunks = set(
        Chunk.objects.filter(references__manifest=unique.current_version.manifest).values_list("pk", flat=True)
    )
    node_trash(user=owner, node=doomed)
    node_trash(user=owner, node=unique)
    node_purge(node=doomed)
    node_purge(node=unique)

    chunks_gc(grace=timedelta(0))

    assert set(Chunk.objects.filter(pk__in=shared_chunks).values_list("pk", flat=True)) == shared_chunks
    assert not Chunk.objects.filter(pk__in=unique_chunks).exists()  # the GC did run
    assert content(survivor) == data


def test_purging_a_folder_keeps_entries_deleted_earlier_from_inside_it(owner, root):
    docs = folder(owner, root, "docs")
    early = upload(owner, docs, "early.txt", b"e")
    upload(owner, docs, "late.txt", b"l")
    node_trash(user=owner, node=early)
    node_trash(user=owner, node=docs)

    node_purge(node=docs)

    early.refresh_from_db()
    assert early.deleted_at is not None and content(early) == b"e"
    assert not Node.objects.filter(name="late.txt").exists()


def test_empty_trash_purges_everything_and_only_managers_may(owner, teammate, team, api, teammate_api):
    team_root = root_of(team)
    a = upload(owner, team_root, "a.txt", b"aaa")
    b = folder(owner, team_root, "b")
    upload(owner, b, "c.txt", b"cc")
    node_trash(user=owner, node=a)
    node_trash(user=owner, node=b)

    assert teammate_api.delete(f"/api/v1/workspaces/{team.pk}/trash/").status_code == 403
    response = api.delete(f"/api/v1/workspaces/{team.pk}/trash/")

    assert response.status_code == 200 and response.json() == {"purged": 2}
    assert used(team) == 0
    assert trash_empty(user=owner, workspace=team) == 0


def test_trash_list_shows_original_path_size_and_purge_date(owner, root, api, owner_workspace):
    docs = folder(owner, root, "docs")
    upload(owner, docs, "a.txt", b"12345")
    node_trash(user=owner, node=docs)

    response = api.get(f"/api/v1/workspaces/{owner_workspace.pk}/trash/")

    assert response.status_code == 200
    (item,) = response.json()["results"]
    assert item["original_path"] == "/" and item["path"] == "/docs" and item["type"] == "folder"
    assert item["size"] == 5 and item["deleted_by"] == owner.email
    assert item["purge_at"] is not None


def test_member_can_restore_and_delete_forever_in_a_team(owner, teammate, team, teammate_api):
    team_root = root_of(team)
    a = upload(owner, team_root, "a.txt", b"a")
    b = upload(owner, team_root, "b.txt", b"b")
    node_trash(user=owner, node=a)
    node_trash(user=owner, node=b)
    assert teammate_api.post(f"/api/v1/trash/{a.pk}/restore/").status_code == 200
    assert teammate_api.delete(f"/api/v1/trash/{b.pk}/").status_code == 204


def test_delete_restore_and_purge_are_in_the_activity_log(owner, root, api, owner_workspace):
    node = upload(owner, root, "a.txt", b"a")
    node_trash(user=owner, node=node)
    trash_restore(user=owner, node=node)
    node_trash(user=owner, node=node)
    node_purge(user=owner, node=node)

    verbs = list(Activity.objects.filter(workspace=owner_workspace).order_by("id").values_list("verb", "path"))
    assert verbs == [("delete", "/a.txt"), ("restore", "/a.txt"), ("delete", "/a.txt"), ("purge", "/a.txt")]
    response = api.get(f"/api/v1/workspaces/{owner_workspace.pk}/activity/?verb=purge")
    assert response.status_code == 200
    assert [entry["verb"] for entry in response.json()["results"]] == ["purge"]


def test_activity_is_for_owners_and_admins_only(team, teammate_api):
    assert teammate_api.get(f"/api/v1/workspaces/{team.pk}/activity/").status_code == 403


def test_outsider_gets_404_on_every_trash_and_activity_route(owner, root, owner_workspace, outsider_api):
    node = upload(owner, root, "a.txt", b"a")
    node_trash(user=owner, node=node)
    routes = [
        ("get", f"/api/v1/workspaces/{owner_workspace.pk}/trash/"),
        ("delete", f"/api/v1/workspaces/{owner_workspace.pk}/trash/"),
        ("post", f"/api/v1/trash/{node.pk}/restore/"),
        ("delete", f"/api/v1/trash/{node.pk}/"),
        ("get", f"/api/v1/workspaces/{owner_workspace.pk}/activity/"),
    ]
    for method, url in routes:
        response = getattr(outsider_api, method)(url)
        assert response.status_code == 404, (method, url, response.status_code)
        assert response.json()["error"]["code"] == "not_found"
    node.refresh_from_db()
    assert node.deleted_at is not None


def test_purging_a_folder_whose_name_was_re_created_by_a_restore_works(owner, root):
    docs = folder(owner, root, "docs")
    keep = upload(owner, docs, "keep.txt", b"keep")
    upload(owner, docs, "other.txt", b"other")
    node_trash(user=owner, node=keep)
    node_trash(user=owner, node=docs)
    restored = trash_restore(user=owner, node=keep)  # re-creates a live "docs"

    assert node_purge(user=owner, node=docs)

    assert node_path(node=restored) == "/docs/keep.txt"
    assert content(restored) == b"keep"
    assert not Node.objects.filter(name="other.txt").exists()
