"""An upload's reserved quota survives nothing it should not: a process killed mid-upload leaks no
quota (the hold is reclaimed once stale), a live upload keeps its hold, and a finished one leaves
no hold behind."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from files.content import ContentSink
from files.models import Node, QuotaHold
from files.nodes import node_copy
from files.quota import Reservation, quota_holds_reclaim
from files.uploads import file_upload
from files.versions import content_commit

MB = 1024 * 1024


def used(workspace) -> int:
    workspace.refresh_from_db(fields=["used_bytes"])
    return workspace.used_bytes


def stale() -> timezone.datetime:
    return timezone.now() + timedelta(seconds=settings.CLOUDSTORAGE_QUOTA_HOLD_STALE + 1)


def test_an_upload_killed_midway_leaks_no_quota_once_its_hold_is_stale(owner_workspace):
    before = used(owner_workspace)
    sink = ContentSink(workspace=owner_workspace)
    sink.write(b"x" * MB)
    # The process dies here: neither finish nor abort ever runs.
    assert used(owner_workspace) > before
    assert QuotaHold.objects.filter(workspace=owner_workspace).count() == 1

    assert quota_holds_reclaim(now=timezone.now()) == 0  # still fresh: kept
    assert quota_holds_reclaim(now=stale()) == 1
    assert used(owner_workspace) == before
    assert not QuotaHold.objects.exists()
    assert quota_holds_reclaim(now=stale()) == 0  # idempotent


def test_a_finished_upload_leaves_no_hold_and_counts_exactly_its_size(owner, root, owner_workspace):
    before = used(owner_workspace)
    file_upload(user=owner, parent=root, name="a.bin", stream=io.BytesIO(b"a" * 1000))
    file_upload(user=owner, parent=root, name="b.bin", stream=io.BytesIO(b"b" * 500), size=500)
    assert not QuotaHold.objects.exists()
    assert used(owner_workspace) == before + 1500


def test_an_upload_whose_hold_was_reclaimed_while_idle_still_commits_when_it_fits(owner, root, owner_workspace):
    before = used(owner_workspace)
    sink = ContentSink(workspace=owner_workspace)
    sink.write(b"y" * 2000)
    quota_holds_reclaim(now=stale())  # the client stalled for longer than the stale period
    assert used(owner_workspace) == before

    version = content_commit(user=owner, parent=root, name="late.bin", content=sink.finish())

    assert version.size == 2000
    assert used(owner_workspace) == before + 2000
    assert not QuotaHold.objects.exists()


def test_a_growing_upload_whose_hold_was_reclaimed_is_refused_clearly(owner_workspace, settings):
    sink = ContentSink(workspace=owner_workspace)
    sink.write(b"z" * 10)
    quota_holds_reclaim(now=stale())
    from cloudstorage.errors import ServiceError

    with pytest.raises(ServiceError) as caught:
        sink.write(b"z" * (65 * MB))  # needs a further step of quota
    assert caught.value.code == "upload_expired" and caught.value.status_code == 409
    assert not QuotaHold.objects.exists()


def test_a_cancelled_reservation_gives_everything_back_once(owner_workspace):
    before = used(owner_workspace)
    reservation = Reservation(workspace=owner_workspace, expected=5000)
    assert used(owner_workspace) == before + 5000
    reservation.cancel()
    reservation.cancel()
    assert used(owner_workspace) == before
    assert not QuotaHold.objects.exists()


def test_copy_settles_its_hold(owner, root, owner_workspace):
    original = file_upload(user=owner, parent=root, name="c.bin", stream=io.BytesIO(b"c" * 700)).node
    before = used(owner_workspace)
    copy = node_copy(user=owner, node=Node.objects.get(pk=original.pk), parent=root, name="c copy.bin")
    assert copy.size == 700
    assert used(owner_workspace) == before + 700
    assert not QuotaHold.objects.exists()


def test_the_reclaim_job_is_scheduled():
    entry = settings.CELERY_BEAT_SCHEDULE["quota-holds-reclaim"]
    assert entry["task"] == "files.tasks.quota_holds_reclaim"
    from files.tasks import quota_holds_reclaim as task

    assert task.delay().get() == 0
