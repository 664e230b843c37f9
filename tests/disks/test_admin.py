"""The operators' disk admin, driven through the Django test client as a staff user."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.auth.models import Permission
from django.test import Client

from disks.backends import INSTALLATION_MARKER, MARKER
from disks.models import Disk, Placement, Replica
from disks.store import manifest_write
from tests.disks.conftest import MB, S3_REGION, read_all, s3_client
from tests.factories import UserFactory

CHANGELIST = "/admin/disks/disk/"
ADD = "/admin/disks/disk/add/"


@pytest.fixture
def operator(db):
    return UserFactory(email="operator@example.com", is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client(operator) -> Client:
    client = Client()
    client.force_login(operator)
    return client


def attach_form(**overrides) -> dict:
    form = {
        "name": "new-disk",
        "category": "B",
        "capacity_gb": "0.01",
        "backend": "local",
        "path": "",
        "s3_endpoint_url": "",
        "s3_bucket": "",
        "s3_prefix": "",
        "s3_region": "",
        "s3_access_key": "",
        "s3_secret_key": "",
    }
    return {**form, **overrides}


def run_action(client: Client, action: str, disks: list[Disk]):
    data = {"action": action, "_selected_action": [str(d.pk) for d in disks]}
    return client.post(CHANGELIST, data, follow=True)


def test_changelist_shows_capacity_per_category_and_disk_and_replica_health(
    admin_client, owner_workspace, three_disks, rng
):
    manifest = manifest_write(workspace=owner_workspace, stream=io.BytesIO(rng.randbytes(20_000)))
    bad = Replica.objects.first()
    Replica.objects.filter(pk=bad.pk).update(state=Replica.State.BAD)
    response = admin_client.get(CHANGELIST)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Capacity per category" in html and "Replica health" in html
    categories = {row["category"]: row for row in response.context["categories"]}
    assert categories["A"]["disks"] == 3 and categories["A"]["used_bytes"] > 0
    assert categories["E"]["disks"] == 0 and "no disk" in html
    assert response.context["health"]["replicas_bad"] == 1
    assert response.context["health"]["chunks_under_replicated"] == 1
    assert '<td id="under-replicated">1</td>' in html
    for disk in three_disks:
        assert disk.name in html
    assert manifest.size == 20_000


def test_attaching_a_reachable_writable_folder_saves_it_and_logs_it(admin_client, settings, operator):
    folder = settings.CLOUDSTORAGE_DISKS_DIR / "mounted"
    folder.mkdir(parents=True)
    response = admin_client.post(ADD, attach_form(path=str(folder)))
    assert response.status_code == 302, response.content.decode()[:2000]
    disk = Disk.objects.get(name="new-disk")
    assert disk.status == Disk.Status.ACTIVE and disk.last_check_ok and disk.category == "B"
    # The probe cleaned up after itself; what stays is the disk's identity marker and installation.
    assert sorted(p.name for p in folder.rglob("*") if p.is_file()) == [MARKER, INSTALLATION_MARKER]
    assert (folder / MARKER).read_text().strip() == str(disk.pk)
    entry = LogEntry.objects.get(object_id=str(disk.pk))
    assert entry.action_flag == ADDITION and entry.user == operator


@pytest.mark.parametrize("problem", ["missing", "a file", "no path"])
def test_attaching_an_unusable_folder_is_refused_with_a_form_error(admin_client, settings, problem):
    target = settings.CLOUDSTORAGE_DISKS_DIR / "nope"
    if problem == "a file":
        target.parent.mkdir(parents=True)
        target.write_bytes(b"not a folder")
    response = admin_client.post(ADD, attach_form(path="" if problem == "no path" else str(target)))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert not Disk.objects.exists()
    if problem != "no path":
        assert "not reachable or not writable" in response.content.decode()
        assert not target.is_dir()  # a missing mount point is never created


def test_attaching_an_s3_bucket_is_probed_over_http(admin_client, s3_server):
    s3_client(s3_server).create_bucket(Bucket="operators-bucket")
    s3 = {
        "backend": "s3",
        "s3_endpoint_url": s3_server,
        "s3_region": S3_REGION,
        "s3_access_key": "operators-access-key",
        "s3_secret_key": "operators-secret-key-42",
        "s3_prefix": "cs",
    }
    refused = admin_client.post(ADD, attach_form(name="s3-missing", s3_bucket="no-such-bucket", **s3))
    assert refused.status_code == 200 and "not reachable or not writable" in refused.content.decode()
    accepted = admin_client.post(ADD, attach_form(name="s3-ok", s3_bucket="operators-bucket", **s3))
    assert accepted.status_code == 302
    disk = Disk.objects.get()
    assert disk.name == "s3-ok" and disk.backend == Disk.Backend.S3
    # The secret is not shown again once saved.
    page = admin_client.get(f"/admin/disks/disk/{disk.pk}/change/").content.decode()
    assert "operators-access-key" in page and "operators-secret-key-42" not in page


def test_location_of_a_saved_disk_cannot_be_edited(admin_client, three_disks):
    disk = three_disks[0]
    response = admin_client.post(
        f"/admin/disks/disk/{disk.pk}/change/",
        {"name": "renamed", "capacity_gb": "0.125", "path": "/elsewhere", "category": "E"},
    )
    assert response.status_code == 302
    disk.refresh_from_db()
    assert (disk.name, disk.capacity_bytes) == ("renamed", 128 * MB)
    assert disk.path != "/elsewhere" and disk.category == "A"
    assert LogEntry.objects.filter(object_id=str(disk.pk), action_flag=CHANGE).exists()


def test_mark_draining_and_failed_remap_workspaces_and_are_logged(admin_client, owner_workspace, three_disks, rng):
    data = rng.randbytes(8000)
    manifest = manifest_write(workspace=owner_workspace, stream=io.BytesIO(data))
    primary = Placement.objects.get(workspace=owner_workspace, rank=0).disk
    response = run_action(admin_client, "mark_draining", [primary])
    assert response.status_code == 200 and "1 disk(s) marked draining" in response.content.decode()
    primary.refresh_from_db()
    assert primary.status == Disk.Status.DRAINING
    assert primary.pk not in Placement.objects.filter(workspace=owner_workspace).values_list("disk", flat=True)
    assert read_all(manifest) == data

    run_action(admin_client, "mark_failed", [primary])
    primary.refresh_from_db()
    assert primary.status == Disk.Status.FAILED
    messages = list(LogEntry.objects.filter(object_id=str(primary.pk)).values_list("change_message", flat=True))
    assert "Status changed from active to draining." in messages
    assert "Status changed from draining to failed." in messages
    assert read_all(manifest) == data


def test_mark_active_needs_a_successful_probe(admin_client, three_disks):
    disk = three_disks[0]
    Disk.objects.filter(pk=disk.pk).update(status=Disk.Status.FAILED)
    from pathlib import Path

    Path(disk.path).rename(disk.path + ".gone")
    response = run_action(admin_client, "mark_active", [disk])
    assert "probe failed" in response.content.decode()
    disk.refresh_from_db()
    assert disk.status == Disk.Status.FAILED
    Path(disk.path + ".gone").rename(disk.path)
    run_action(admin_client, "mark_active", [disk])
    disk.refresh_from_db()
    assert disk.status == Disk.Status.ACTIVE
    assert LogEntry.objects.filter(object_id=str(disk.pk), change_message__contains="failed to active").exists()


def test_scrub_action_verifies_the_disk_and_repairs_what_is_bad(
    admin_client, owner_workspace, three_disks, rng, django_capture_on_commit_callbacks
):
    from tests.disks.conftest import good_copies, object_flip_byte, stored_keys

    data = rng.randbytes(10_000)
    manifest = manifest_write(workspace=owner_workspace, stream=io.BytesIO(data))
    disk = Placement.objects.get(workspace=owner_workspace, rank=0).disk
    key = stored_keys(disk)[0]
    object_flip_byte(disk, key, rng)
    with django_capture_on_commit_callbacks(execute=True):
        response = run_action(admin_client, "scrub", [disk])
    assert "Scrub queued" in response.content.decode()
    assert not Replica.objects.filter(state=Replica.State.BAD).exists()
    assert all(len(good_copies(e.chunk)) == 2 for e in manifest.entries.select_related("chunk"))
    assert LogEntry.objects.filter(object_id=str(disk.pk), change_message="Scrub queued.").exists()
    assert read_all(manifest) == data


def test_drain_action_moves_every_copy_off_the_disk(
    admin_client, owner_workspace, three_disks, rng, django_capture_on_commit_callbacks
):
    data = rng.randbytes(10_000)
    manifest = manifest_write(workspace=owner_workspace, stream=io.BytesIO(data))
    disk = Placement.objects.get(workspace=owner_workspace, rank=0).disk
    with django_capture_on_commit_callbacks(execute=True):
        run_action(admin_client, "drain", [disk])
    disk.refresh_from_db()
    assert disk.status == Disk.Status.DRAINING and not Replica.objects.filter(disk=disk).exists()
    assert LogEntry.objects.filter(object_id=str(disk.pk), change_message__contains="drain queued").exists()
    assert read_all(manifest) == data


def test_a_drain_task_run_after_mark_active_leaves_the_disk_active_and_its_copies_in_place(
    admin_client, owner_workspace, three_disks, rng, monkeypatch, django_capture_on_commit_callbacks
):
    """The "Drain now" action queues disk_drain; the operator then marks the disk active again. The queued
    message runs late, or again (acks_late: redelivered up to an hour later after a worker restart):
    it must not mark the disk draining again nor move its copies away."""
    from disks import tasks

    disk = three_disks[0]
    manifest_write(workspace=owner_workspace, stream=io.BytesIO(rng.randbytes(20_000)))
    assert Replica.objects.filter(disk=disk).exists()
    queued: list[dict] = []
    monkeypatch.setattr(tasks.disk_drain, "delay", lambda **kwargs: queued.append(kwargs))  # held in the broker
    with django_capture_on_commit_callbacks(execute=True):
        run_action(admin_client, "drain", [disk])
    assert Disk.objects.get(pk=disk.pk).status == Disk.Status.DRAINING and queued
    with django_capture_on_commit_callbacks(execute=True):
        run_action(admin_client, "mark_active", [disk])
    assert Disk.objects.get(pk=disk.pk).status == Disk.Status.ACTIVE

    tasks.disk_drain.apply(kwargs=queued[0])  # the worker takes the held message now

    assert Disk.objects.get(pk=disk.pk).status == Disk.Status.ACTIVE
    assert Replica.objects.filter(disk=disk).exists()


def test_staff_without_disk_permissions_is_refused(db, three_disks):
    clerk = UserFactory(email="clerk@example.com", is_staff=True)
    client = Client()
    client.force_login(clerk)
    assert client.get(CHANGELIST).status_code == 403
    clerk.user_permissions.add(Permission.objects.get(codename="view_disk"))
    assert client.get(CHANGELIST).status_code == 200
    response = client.post(CHANGELIST, {"action": "mark_failed", "_selected_action": [str(three_disks[0].pk)]})
    assert response.status_code in (200, 302)  # the action is not offered to a viewer
    three_disks[0].refresh_from_db()
    assert three_disks[0].status == Disk.Status.ACTIVE


def test_customers_are_sent_to_the_admin_login(db, owner):
    client = Client()
    client.force_login(owner)
    response = client.get(CHANGELIST)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_disk_form_takes_capacity_in_gb_and_shows_s3_fields_only_for_s3(admin_client, three_disks):
    page = admin_client.get("/admin/disks/disk/add/").content.decode()
    assert 'name="capacity_gb"' in page and 'name="capacity_bytes"' not in page
    assert "js/admin_disk_form.js" in page  # hides the S3 rows for a local disk
    disk = three_disks[0]
    change = admin_client.get(f"/admin/disks/disk/{disk.pk}/change/")
    assert abs(change.context["adminform"].form.initial["capacity_gb"] - Decimal("0.0625")) < Decimal("0.001")
    refused = admin_client.post(
        f"/admin/disks/disk/{disk.pk}/change/", {"name": disk.name, "capacity_gb": "0", "category": "A"}
    )
    assert refused.status_code == 200 and "capacity_gb" in refused.context["adminform"].form.errors
    disk.refresh_from_db()
    assert disk.capacity_bytes == 64 * MB


def test_a_folder_with_the_marker_of_a_disk_unknown_here_is_refused_unless_returning(admin_client, settings):
    """A place whose marker names a disk this database does not know may be another installation's
    disk: the add form refuses it by default, naming the disk id and the way on, and attaches,
    records and touches nothing (before: attached silently as that disk)."""
    import uuid

    folder = settings.CLOUDSTORAGE_DISKS_DIR / "foreign"
    folder.mkdir(parents=True)
    foreign_id = uuid.uuid4()
    (folder / MARKER).write_text(f"{foreign_id}\n")
    (folder / "ab").mkdir()
    (folder / "ab" / "ab12").write_bytes(b"another installation's object")
    response = admin_client.post(ADD, attach_form(path=str(folder)))
    assert response.status_code == 200
    errors = " ".join(response.context["adminform"].form.non_field_errors())
    assert str(foreign_id) in errors and "does not know" in errors and "returning" in errors
    assert not Disk.objects.exists() and not Replica.objects.exists()
    assert (folder / MARKER).read_text() == f"{foreign_id}\n"
    assert (folder / "ab" / "ab12").read_bytes() == b"another installation's object"


def test_a_folder_with_the_marker_of_a_disk_unknown_here_is_attached_as_that_disk_when_returning(
    admin_client, settings
):
    """After a database restore, a disk attached after the backup carries a marker the database
    does not know: with "returning after a database restore" ticked the admin attaches it under
    that id and says so."""
    import uuid

    folder = settings.CLOUDSTORAGE_DISKS_DIR / "returning"
    folder.mkdir(parents=True)
    lost_id = uuid.uuid4()
    (folder / MARKER).write_text(f"{lost_id}\n")
    response = admin_client.post(ADD, attach_form(path=str(folder), returning="on"), follow=True)
    assert response.status_code == 200 and not response.context.get("errors")
    disk = Disk.objects.get(name="new-disk")
    assert disk.pk == lost_id and disk.marked_at is not None
    assert "does not know" in response.content.decode()


def test_the_returning_box_is_offered_only_when_adding_and_changes_nothing_for_an_empty_place(admin_client, settings):
    assert 'name="returning"' in admin_client.get(ADD).content.decode()
    folder = settings.CLOUDSTORAGE_DISKS_DIR / "fresh"
    folder.mkdir(parents=True)
    response = admin_client.post(ADD, attach_form(path=str(folder), returning="on"), follow=True)
    assert response.status_code == 200 and not response.context.get("errors")
    disk = Disk.objects.get(name="new-disk")
    assert (folder / MARKER).read_text().strip() == str(disk.pk)
    assert 'name="returning"' not in admin_client.get(f"/admin/disks/disk/{disk.pk}/change/").content.decode()
