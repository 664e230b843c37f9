"""Writers of one workspace racing on PostgreSQL's row locks (real threads): a folder's delete and a
move between two of its subfolders, an upload into it, a restore. Each request answers as if it had
run alone, before or after the other (a 2xx, or a 4xx that says why), never a 500 from a deadlock
PostgreSQL broke by aborting one of them.

The deadlock needs one interleaving: the delete has locked the folder's first level and waits for
a subfolder the move is about to lock, while the move holds the moving folder (the lower id) and
waits for that subfolder too. A third transaction holding the subfolder's row lets each request get
exactly there before it lets go, so the test does not depend on the scheduler's luck.
"""

from __future__ import annotations

import threading
import time

from django.db import connection, connections, transaction
from rest_framework.test import APIClient

from files.models import FileVersion, Node
from files.trash import node_purge
from files.versions import version_delete
from tests.factories import UserFactory, personal_workspace
from tests.files.races import postgres_only
from tests.files.sharing_helpers import folder, root_of, upload

pytestmark = postgres_only


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _lock_waiters() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def _wait_for_lock_waiters(count: int) -> None:
    deadline = time.monotonic() + 10
    while _lock_waiters() < count:
        assert time.monotonic() < deadline, f"expected {count} requests waiting on a row lock"
        time.sleep(0.01)


class _Thread(threading.Thread):
    """A request in a thread of its own: its response, or the exception it raised (a 500)."""

    def __init__(self, job):
        super().__init__()
        self.job, self.result = job, None

    def run(self):
        try:
            self.result = self.job()
        except BaseException as exc:  # noqa: BLE001 - inspected by the test
            self.result = exc
        finally:
            connections.close_all()


def _in_order_while_held(held, *jobs) -> list:
    """Start ``jobs`` one by one, each only once the previous one waits on a row lock, while another
    transaction holds ``held``'s row (a node, a workspace); then let it go and return what each job
    answered."""
    release, locked = threading.Event(), threading.Event()

    def hold():
        with transaction.atomic():
            type(held).objects.select_for_update().filter(pk=held.pk).values_list("pk", flat=True).first()
            locked.set()
            release.wait(10)

    holder = _Thread(hold)
    holder.start()
    assert locked.wait(10)
    threads = []
    try:
        for number, job in enumerate(jobs, start=1):
            threads.append(_Thread(job))
            threads[-1].start()
            _wait_for_lock_waiters(number)
    finally:
        release.set()
        holder.join()
        for thread in threads:
            thread.join(30)
    return [thread.result for thread in threads]


def _status(result):
    return getattr(result, "status_code", result)


def _two_subfolders_and_a_lower_id(owner, root, round_: int):
    """``docs`` with subfolders ``a`` and ``b``, and a folder ``moving`` in one of them whose id is
    lower than the other's (the move locks the lower id first): (docs, moving, target)."""
    while True:
        docs = folder(owner, root, f"docs-{round_}")
        a, b = folder(owner, docs, "a"), folder(owner, docs, "b")
        x, y = folder(owner, a, "x"), folder(owner, b, "y")
        if x.pk < b.pk:
            return docs, x, b
        if y.pk < a.pk:
            return docs, y, a
        Node.objects.filter(pk=docs.pk).delete()  # a new draw of ids


def test_delete_of_a_folder_racing_a_move_between_its_subfolders_never_deadlocks(transactional_db, disks):
    owner = UserFactory()
    root = root_of(personal_workspace(owner))
    for round_ in range(3):
        docs, moving, target = _two_subfolders_and_a_lower_id(owner, root, round_)

        deleted, moved = _in_order_while_held(
            target,
            lambda docs=docs: _client(owner).delete(f"/api/v1/nodes/{docs.pk}/"),
            lambda m=moving, t=target: _client(owner).patch(
                f"/api/v1/nodes/{m.pk}/", {"parent": str(t.pk)}, format="json"
            ),
        )

        assert _status(deleted) == 204, deleted
        # The move waited for the delete and found its target folder in the trash.
        assert _status(moved) == 409, moved
        assert moved.json()["error"]["code"] == "in_trash"
        moving.refresh_from_db()
        assert moving.parent_id != target.pk
        assert moving.trashed_in_id == docs.pk


def test_move_racing_a_delete_of_the_folder_it_leaves_never_deadlocks(transactional_db, disks):
    """The other order: the move gets there first and commits, and the delete takes the moved
    folder along (it is still inside the deleted folder)."""
    owner = UserFactory()
    root = root_of(personal_workspace(owner))
    docs, moving, target = _two_subfolders_and_a_lower_id(owner, root, 0)

    moved, deleted = _in_order_while_held(
        target,
        lambda: _client(owner).patch(f"/api/v1/nodes/{moving.pk}/", {"parent": str(target.pk)}, format="json"),
        lambda: _client(owner).delete(f"/api/v1/nodes/{docs.pk}/"),
    )

    assert (_status(moved), _status(deleted)) == (200, 204), (moved, deleted)
    moving.refresh_from_db()
    assert (moving.parent_id, moving.trashed_in_id) == (target.pk, docs.pk)


def test_upload_into_a_subfolder_racing_its_delete_never_deadlocks(transactional_db, disks):
    """An upload locks its folder and then the workspace (its change feed entry): with the delete
    taking the workspace first, the two must still not wait for each other in a circle."""
    owner = UserFactory()
    root = root_of(personal_workspace(owner))
    docs = folder(owner, root, "docs")
    a = folder(owner, docs, "a")
    folder(owner, docs, "b")

    deleted, uploaded = _in_order_while_held(
        a,
        lambda: _client(owner).delete(f"/api/v1/nodes/{docs.pk}/"),
        lambda: _client(owner).put(
            f"/api/v1/nodes/{a.pk}/children/late.txt", b"late", content_type="application/octet-stream"
        ),
    )

    assert _status(deleted) == 204, deleted
    assert _status(uploaded) == 409, uploaded
    assert not Node.objects.filter(name="late.txt").exists()


def test_restore_racing_a_delete_of_its_original_folder_never_deadlocks(transactional_db, disks):
    owner = UserFactory()
    root = root_of(personal_workspace(owner))
    docs = folder(owner, root, "docs")
    a = folder(owner, docs, "a")
    report = upload(owner, a, "report.txt", b"r")
    assert _client(owner).delete(f"/api/v1/nodes/{report.pk}/").status_code == 204

    deleted, restored = _in_order_while_held(
        a,
        lambda: _client(owner).delete(f"/api/v1/nodes/{docs.pk}/"),
        lambda: _client(owner).post(f"/api/v1/trash/{report.pk}/restore/"),
    )

    assert _status(deleted) == 204, deleted
    # Its folder went to the trash first: the restore re-creates the path.
    assert _status(restored) == 200, restored
    report.refresh_from_db()
    assert report.trashed_in_id is None and report.parent.trashed_in_id is None


def test_purge_racing_the_version_policy_on_its_file_never_deadlocks(transactional_db, disks):
    """The version policy deletes an old version of a file in the trash (version_delete: the
    version's row, then the workspace's used bytes) while the trash entry is purged (which deletes
    that version too): both queue on the workspace's lock, so the purge goes first here and the
    policy finds the version gone."""
    owner = UserFactory()
    workspace = personal_workspace(owner)
    root = root_of(workspace)
    upload(owner, root, "a.txt", b"one")
    node = upload(owner, root, "a.txt", b"two")
    old = FileVersion.objects.get(node=node, number=1)
    assert _client(owner).delete(f"/api/v1/nodes/{node.pk}/").status_code == 204

    purged, deleted = _in_order_while_held(
        workspace,
        lambda: node_purge(node=Node(pk=node.pk, workspace_id=workspace.pk)),
        lambda: version_delete(version=FileVersion.objects.get(pk=old.pk), unless_pinned=True),
    )

    assert (purged, deleted) == (True, False), (purged, deleted)
    workspace.refresh_from_db(fields=["used_bytes"])
    assert workspace.used_bytes == 0


def test_reclaiming_stale_holds_skips_a_hold_an_upload_is_giving_back(transactional_db):
    # An upload cancelling or trimming its hold locks the hold, then the workspace; the reclaim
    # locks the workspace, then the hold. Waiting for the hold there deadlocked with the upload.
    from datetime import timedelta

    from django.utils import timezone

    from files.models import QuotaHold
    from files.quota import quota_holds_reclaim

    workspace = personal_workspace(UserFactory())
    hold = QuotaHold.objects.create(workspace=workspace, bytes=10)
    type(workspace).objects.filter(pk=workspace.pk).update(used_bytes=10)  # as reserving counted it
    QuotaHold.objects.filter(pk=hold.pk).update(touched_at=timezone.now() - timedelta(days=1))
    release, locked = threading.Event(), threading.Event()

    def upload_giving_it_back():
        with transaction.atomic():
            QuotaHold.objects.select_for_update().filter(pk=hold.pk).values_list("pk", flat=True).first()
            locked.set()
            release.wait(10)

    upload = _Thread(upload_giving_it_back)
    upload.start()
    try:
        assert locked.wait(10)
        reclaim = _Thread(quota_holds_reclaim)
        reclaim.start()
        reclaim.join(5)
        # Not waiting on the upload's lock while holding the workspace's: skipped for a later run.
        assert not reclaim.is_alive(), "the reclaim waited for a hold in use"
        assert reclaim.result == 0
    finally:
        release.set()
        upload.join()
    assert quota_holds_reclaim() == 1
