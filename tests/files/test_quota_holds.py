"""An upload's reserved quota survives nothing it should not: a process killed mid-upload leaks no
quota (the hold is reclaimed once stale), a live upload keeps its hold, and a finished one leaves
no hold behind."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from accounts.models import Workspace
from cloudstorage.errors import ServiceError
from disks.models import Chunk, Manifest
from files.content import ContentSink, content_store
from files.folders import folder_create
from files.models import FileVersion, Node, QuotaHold
from files.nodes import node_copy
from files.quota import TAKE_AT_COMMIT, Reservation, quota_holds_reclaim
from files.resumable import upload_create
from files.trash import node_purge, node_trash
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

    with pytest.raises(ServiceError) as caught:
        sink.write(b"z" * (65 * MB))  # needs a further step of quota
    assert caught.value.code == "upload_expired" and caught.value.status_code == 409
    assert not QuotaHold.objects.exists()


def test_a_cancelled_reservation_gives_everything_back_once(owner_workspace):
    before = used(owner_workspace)
    size = TAKE_AT_COMMIT + 5000  # held while it is stored (a smaller one is taken at its commit)
    reservation = Reservation(workspace=owner_workspace, expected=size)
    assert used(owner_workspace) == before + size
    assert QuotaHold.objects.count() == 1
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


def stored(workspace) -> int:
    return FileVersion.objects.filter(workspace=workspace).aggregate(total=Sum("size"))["total"] or 0


def test_a_copy_racing_a_new_version_is_charged_for_the_version_it_copies(owner, root, owner_workspace):
    """The copy view reads the file; another client saves a bigger version before node_copy runs.
    The copy and its charge come from one read under the row lock, so used_bytes stays the bytes of
    the versions it counts (and drops to zero when everything is purged)."""
    node = file_upload(user=owner, parent=root, name="report.pdf", stream=io.BytesIO(b"x" * 2_000)).node
    target = folder_create(user=owner, parent=root, name="copies")
    seen = Node.objects.get(pk=node.pk)  # the copy view's read
    file_upload(user=owner, parent=root, name="report.pdf", stream=io.BytesIO(b"y" * 900_000))  # another client

    copy = node_copy(user=owner, node=seen, parent=target)

    assert used(owner_workspace) == stored(owner_workspace)
    assert copy.size == 900_000  # the version current when the copy ran
    for item in (copy, node):
        node_trash(user=owner, node=item)
        node_purge(node=item)
    assert used(owner_workspace) == stored(owner_workspace) == 0


def test_the_nightly_recount_corrects_drift_and_keeps_what_uploads_in_flight_hold(owner, root, owner_workspace):
    file_upload(user=owner, parent=root, name="kept.bin", stream=io.BytesIO(b"k" * 5000))
    sink = ContentSink(workspace=owner_workspace)
    sink.write(b"h" * (2 * MB))  # a streaming upload in flight: a QuotaHold
    upload_create(user=owner, filename="big.iso", parent_id=root.pk, length=3 * MB)  # a resumable one
    right = used(owner_workspace)
    assert right == 5000 + QuotaHold.objects.get().bytes + 3 * MB
    Workspace.objects.filter(pk=owner_workspace.pk).update(used_bytes=right + 123_456)  # a bug's leftover

    from files.tasks import usage_recount

    assert usage_recount.delay().get() == 1
    assert used(owner_workspace) == right
    assert usage_recount.delay().get() == 0  # nothing left to correct
    assert settings.CELERY_BEAT_SCHEDULE["quota-recount"]["task"] == "files.tasks.usage_recount"
    sink.abort()


def test_the_reclaim_job_is_scheduled():
    entry = settings.CELERY_BEAT_SCHEDULE["quota-holds-reclaim"]
    assert entry["task"] == "files.tasks.quota_holds_reclaim"
    from files.tasks import quota_holds_reclaim as task

    assert task.delay().get() == 0


def test_a_small_declared_upload_holds_nothing_while_stored_and_takes_its_quota_at_commit(owner, root, owner_workspace):
    before = used(owner_workspace)
    content = content_store(workspace=owner_workspace, stream=io.BytesIO(b"s" * 3000), size=3000)
    # Stored and durable, but no hold row and no usage yet: a crash here leaks no quota.
    assert not QuotaHold.objects.exists()
    assert used(owner_workspace) == before

    content_commit(user=owner, parent=root, name="small.bin", content=content)

    assert used(owner_workspace) == before + 3000
    assert not QuotaHold.objects.exists()


def test_a_small_upload_that_no_longer_fits_at_its_commit_is_refused_and_leaves_nothing(owner, root, owner_workspace):
    content = content_store(workspace=owner_workspace, stream=io.BytesIO(b"t" * 3000), size=3000)
    # Meanwhile another upload filled the workspace up to 1,000 bytes below its quota.
    owner_workspace.refresh_from_db()
    owner_workspace.used_bytes = owner_workspace.quota_bytes - 1000
    owner_workspace.save(update_fields=["used_bytes"])

    with pytest.raises(ServiceError) as caught:
        content_commit(user=owner, parent=root, name="late.bin", content=content)

    assert caught.value.code == "quota_exceeded" and caught.value.status_code == 413
    assert used(owner_workspace) == owner_workspace.quota_bytes - 1000
    assert not Node.objects.filter(name="late.bin").exists()
    assert not Manifest.objects.filter(pk=content.manifest.pk).exists()  # released for GC


def test_a_small_declared_upload_that_cannot_fit_is_refused_before_a_chunk_is_stored(owner, root, owner_workspace):
    owner_workspace.used_bytes = owner_workspace.quota_bytes - 10
    owner_workspace.save(update_fields=["used_bytes"])
    chunks = Chunk.objects.count()
    with pytest.raises(ServiceError) as caught:
        file_upload(user=owner, parent=root, name="x.bin", stream=io.BytesIO(b"x" * 11), size=11)
    assert caught.value.code == "quota_exceeded"
    assert Chunk.objects.count() == chunks and not Manifest.objects.filter(state="pending").exists()


def test_a_body_that_brings_more_than_its_bound_said_is_held_from_then_on(owner_workspace):
    # The bound comes from a header (the rest of the request body); more bytes than it said fall
    # back to a hold of their own, as an upload of unknown size.
    before = used(owner_workspace)
    reservation = Reservation(workspace=owner_workspace, bound=1000)
    reservation.grow(800)
    assert not QuotaHold.objects.exists() and used(owner_workspace) == before
    reservation.grow(5000)
    assert QuotaHold.objects.get().bytes >= 5000
    assert used(owner_workspace) >= before + 5000
    reservation.cancel()
    assert used(owner_workspace) == before and not QuotaHold.objects.exists()


def test_a_batch_of_small_files_holds_their_quota_before_the_first_commits(api, root, owner_workspace):
    # Each file commits in a transaction of its own: if the second did not fit at its commit, the
    # first would already be visible. So the batch is held whole first, and refused whole.
    from django.core.files.uploadedfile import SimpleUploadedFile

    owner_workspace.used_bytes = owner_workspace.quota_bytes - 1500
    owner_workspace.save(update_fields=["used_bytes"])
    files = [SimpleUploadedFile("a.bin", b"a" * 1000), SimpleUploadedFile("b.bin", b"b" * 1000)]
    response = api.post(f"/api/v1/nodes/{root.pk}/children/", {"file": files}, format="multipart")
    assert response.status_code == 413, response.content
    assert used(owner_workspace) == owner_workspace.quota_bytes - 1500
    assert not Node.objects.filter(parent=root).exists() and not QuotaHold.objects.exists()
