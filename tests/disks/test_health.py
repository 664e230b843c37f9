"""Health probes (with flapping damped), failed-disk remapping and alerts, capacity alerts, and the
beat schedule that runs every maintenance job."""

from __future__ import annotations

import io
import os
import random
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.utils import timezone

from disks import tasks
from disks.capacity import capacity_alert
from disks.health import damped_failures, disk_probe
from disks.models import CapacityAlert, Chunk, Disk, Placement, Replica
from disks.services import disk_create_local
from disks.store import manifest_write
from tests.disks.conftest import MB, make_disks, object_flip_byte, read_all
from tests.factories import UserFactory


class Outage:
    """Takes a local disk's folder away and brings it back, as an unmounted disk would."""

    def __init__(self, disk: Disk):
        self.path = Path(disk.path)
        self.away = self.path.with_name(self.path.name + ".away")

    def __enter__(self):
        self.path.rename(self.away)

    def __exit__(self, *exc):
        self.away.rename(self.path)


def probe(disk: Disk, *results: bool) -> Disk:
    """Probe ``disk`` once per result: a failing probe while its folder is away, a good one otherwise."""
    for ok in results:
        if ok:
            disk_probe(disk=disk)
        else:
            with Outage(disk):
                disk_probe(disk=disk)
    disk.refresh_from_db()
    return disk


def test_damped_failures_count_back_to_a_steady_run_of_good_probes():
    assert damped_failures("", recovery=3) == 0
    assert damped_failures("000", recovery=3) == 3
    assert damped_failures("0101", recovery=3) == 2
    assert damped_failures("00111", recovery=3) == 0
    assert damped_failures("0011100", recovery=3) == 2
    assert damped_failures("0110110", recovery=3) == 3


def test_disk_failing_n_probes_in_a_row_is_marked_failed(settings, three_disks):
    disk = three_disks[0]
    assert probe(disk, False, False).status == Disk.Status.ACTIVE
    assert disk.consecutive_failures == 2 and disk.last_check_ok is False and disk.last_check_error
    assert probe(disk, False).status == Disk.Status.FAILED


def test_a_flapping_disk_is_failed_too(three_disks):
    # Never three failures strictly in a row, but never healthy for long either.
    disk = probe(three_disks[0], False, True, False, True)
    assert disk.status == Disk.Status.ACTIVE
    assert probe(disk, False).status == Disk.Status.FAILED


def test_enough_good_probes_in_a_row_clear_earlier_failures(three_disks):
    disk = probe(three_disks[0], False, False, True, True, True, False, False)
    assert disk.status == Disk.Status.ACTIVE and disk.consecutive_failures == 2
    assert disk.probe_history.endswith("0011100")


def test_failed_disk_gets_its_workspaces_remapped_and_operators_mailed(settings, owner_workspace, three_disks, rng):
    UserFactory(email="ops@example.com", is_staff=True)
    settings.OPERATOR_EMAILS = ["pager@example.com"]
    data = rng.randbytes(5000)
    manifest = manifest_write(workspace=owner_workspace, stream=io.BytesIO(data))
    primary = Placement.objects.get(workspace=owner_workspace, rank=0).disk
    probe(primary, False, False, False)
    assert primary.status == Disk.Status.FAILED
    placed = list(Placement.objects.filter(workspace=owner_workspace).order_by("rank").values_list("disk", flat=True))
    assert primary.pk not in placed and len(placed) == 2
    assert len(mail.outbox) == 1
    assert set(mail.outbox[0].to) == {"ops@example.com", "pager@example.com"}
    assert primary.name in mail.outbox[0].subject
    assert read_all(manifest) == data  # a failed disk is never read; the other copy serves


@pytest.fixture
def small_mount(settings):
    """A 2 MiB tmpfs at a disk's mount point (mounting needs root: where the suite runs as root, a
    mount that fails is a broken environment, not a reason to skip)."""
    mount_point = settings.CLOUDSTORAGE_DISKS_DIR / "small"
    mount_point.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)], check=True)
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def filesystem_fill(folder: Path) -> None:
    """What the store does not count fills the filesystem (here: a database backup's worth)."""
    filler = folder / "backups" / "db-20261207T020000000000Z.csbk"
    filler.parent.mkdir(exist_ok=True)
    with open(filler, "wb", buffering=0) as out:
        try:
            while True:
                out.write(os.urandom(64 * 1024))
        except OSError:
            pass


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_a_full_disk_is_made_read_only_not_failed_and_its_copies_stay_readable(
    settings, owner_workspace, small_mount, rng
):
    """A disk whose filesystem filled up (its recorded use far below its capacity) fails every
    probe's write with ENOSPC: it is made read-only and operators are told, and its intact copies
    are still read when another copy rots (before: failed like a dead disk, the file unreadable)."""
    settings.OPERATOR_EMAILS = ["ops@example.com"]
    (d1,) = make_disks(settings, 1)
    full = disk_create_local(name="d2", path=small_mount, category="A", capacity_bytes=64 * MB)
    data = rng.randbytes(30_000)
    manifest = manifest_write(workspace=owner_workspace, stream=io.BytesIO(data))
    assert Replica.objects.filter(disk=full, state=Replica.State.OK).exists()
    filesystem_fill(small_mount)

    for _ in range(settings.CLOUDSTORAGE_DISK_PROBE_FAILURES + 1):
        assert disk_probe(disk=Disk.objects.get(pk=full.pk)) is False
    full.refresh_from_db()
    assert full.status == Disk.Status.READ_ONLY and full.consecutive_failures == 0
    assert full.last_check_error.startswith("full:")
    assert [m.subject for m in mail.outbox] == ["[Cloud Storage] Disk d2 is full"]

    chunk = Chunk.objects.filter(references__manifest=manifest).order_by("pk").first()
    object_flip_byte(d1, chunk.key, random.Random(7))
    assert read_all(manifest) == data
    # The rotten copy is bad now; the full disk's copy is still good, and counts.
    assert Replica.objects.get(chunk=chunk, disk=full).state == Replica.State.OK


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_a_write_that_finds_a_disk_full_has_it_made_read_only(
    settings, owner_workspace, small_mount, rng, django_capture_on_commit_callbacks
):
    """An upload's copy refused with ENOSPC goes to another disk, and the disk is probed at once and
    made read-only (before: it stayed active, taking writes it refused, until its probes failed it)."""
    make_disks(settings, 2)
    # Named to sort first: placement puts the workspace on it.
    full = disk_create_local(name="a-small", path=small_mount, category="A", capacity_bytes=64 * MB)
    filesystem_fill(small_mount)
    data = rng.randbytes(20_000)
    with django_capture_on_commit_callbacks(execute=True):
        manifest = manifest_write(workspace=owner_workspace, stream=io.BytesIO(data))
    assert read_all(manifest) == data
    full.refresh_from_db()
    assert full.status == Disk.Status.READ_ONLY and full.last_check_error.startswith("full:")
    assert not Replica.objects.filter(disk=full).exists()


def test_probe_task_leaves_failed_disks_to_the_operators(three_disks):
    Disk.objects.filter(pk=three_disks[0].pk).update(status=Disk.Status.FAILED)
    assert set(tasks.disk_probe_all.delay().get()) == {three_disks[1].name, three_disks[2].name}


def fill(disk: Disk, percent: float) -> None:
    Disk.objects.filter(pk=disk.pk).update(used_bytes=int(disk.capacity_bytes * percent / 100))


def test_capacity_alert_mails_staff_once_not_on_every_run(settings, three_disks):
    UserFactory(email="ops@example.com", is_staff=True)
    UserFactory(email="customer@example.com")
    for disk in three_disks:
        fill(disk, 90)
    assert capacity_alert() == ["A"]
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["ops@example.com"]
    assert "category A" in mail.outbox[0].subject and "90%" in mail.outbox[0].subject
    assert tasks.capacity_alert.delay().get() == []  # the next run (beat: every 15 minutes)
    assert len(mail.outbox) == 1
    # Still above the threshold a day later: one reminder.
    CapacityAlert.objects.update(
        sent_at=timezone.now() - timedelta(seconds=settings.CLOUDSTORAGE_CAPACITY_ALERT_REPEAT)
    )
    assert capacity_alert() == ["A"] and len(mail.outbox) == 2


def test_capacity_alert_is_rearmed_once_the_category_is_below_the_threshold(settings, three_disks):
    UserFactory(email="ops@example.com", is_staff=True)
    settings.CLOUDSTORAGE_CAPACITY_ALERT_PERCENT = 50
    for disk in three_disks:
        fill(disk, 60)
    assert capacity_alert() == ["A"]
    for disk in three_disks:
        fill(disk, 40)  # an operator attached room, or GC freed some
    assert capacity_alert() == []
    for disk in three_disks:
        fill(disk, 55)
    assert capacity_alert() == ["A"] and len(mail.outbox) == 2


def test_capacity_below_the_default_threshold_sends_nothing(three_disks):
    UserFactory(email="ops@example.com", is_staff=True)
    for disk in three_disks:
        fill(disk, 84)
    assert capacity_alert() == [] and not mail.outbox


@pytest.mark.parametrize(
    "task",
    [
        "disks.tasks.disk_probe_all",
        "disks.tasks.workspaces_remap",
        "disks.tasks.replicas_repair",
        "disks.tasks.disks_drain",
        "disks.tasks.replicas_scrub",
        "disks.tasks.chunks_gc",
        "disks.tasks.capacity_alert",
        "disks.tasks.standbys_activate",
        "disks.tasks.chunks_backup",
    ],
)
def test_every_maintenance_job_is_scheduled_in_beat(task):
    from cloudstorage.celery import app

    scheduled = {entry["task"] for entry in django_settings.CELERY_BEAT_SCHEDULE.values()}
    assert task in scheduled
    assert task in app.tasks
