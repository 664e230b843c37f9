"""Disks that look after themselves (issue 18): the identity marker refuses an unmounted, swapped or
recreated disk at once; failed reads coalesce into one repair pass; probes have their own queue;
uploads in progress raise no false alarms; GC releases a dead writer's upload at its next run; a
dead repairer's lock dies with its lease; standby disks come in when a category fills; a failed
disk whose data is safe leaves the health check degraded, not down."""

from __future__ import annotations

import io
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from disks import backends, health
from disks.backends import INSTALLATION_MARKER, MARKER
from disks.capacity import capacity_alert
from disks.crypto import installation_id, installation_ids
from disks.gc import chunks_gc
from disks.health import disk_probe
from disks.identity import disk_identity_check
from disks.models import Chunk, Disk, Manifest, ManifestChunk, Placement, Replica
from disks.placement import workspace_place
from disks.repair import chunk_repair, replicas_repair
from disks.selectors import chunks_needing_repair, replica_health
from disks.services import disk_create_local, disk_set_status
from disks.standby import standbys_activate
from disks.store import manifest_write, manifest_writer
from tests.disks.conftest import MB, disk_destroy, good_copies, make_disks, object_delete, object_files, read_all
from tests.factories import UserFactory, personal_workspace

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def operators(settings):
    settings.OPERATOR_EMAILS = ["ops@example.com"]


def _write(workspace, rng, size=20_000):
    data = rng.randbytes(size)
    return data, manifest_write(workspace=workspace, stream=io.BytesIO(data))


def _forget_marker_checks() -> None:
    """Let writes re-read the marker now rather than after MARKER_TTL (what time does in production)."""
    time.sleep(backends.MARKER_TTL + 0.1)


# --- The identity marker --------------------------------------------------------------------------


def test_attaching_writes_the_marker_and_a_folder_of_another_disk_is_refused(settings, db):
    disk = make_disks(settings, 1)[0]
    assert (Path(disk.path) / MARKER).read_text().strip() == str(disk.pk)
    assert disk.marked_at is not None
    with pytest.raises(Exception, match="marker of disk"):
        disk_create_local(name="again", path=disk.path, category="A", capacity_bytes=MB)
    assert not Disk.objects.filter(name="again").exists()


def _place_of_a_lost_disk(settings, name: str, installation: str | None) -> tuple[Path, uuid.UUID]:
    """A folder holding the marker of a disk this database does not know (and an object of it), with
    the installation id beside it, or none as markers written before installation ids."""
    folder = settings.CLOUDSTORAGE_DISKS_DIR / name
    (folder / "ws").mkdir(parents=True)
    (folder / "ws" / "object").write_bytes(b"an object of that disk")
    lost_id = uuid.uuid4()
    (folder / MARKER).write_text(f"{lost_id}\n")
    if installation is not None:
        (folder / INSTALLATION_MARKER).write_text(f"{installation}\n")
    return folder, lost_id


def test_attaching_writes_this_installations_id_beside_the_marker(settings, db):
    disk = make_disks(settings, 1)[0]
    ours = installation_ids()[0]
    assert (Path(disk.path) / INSTALLATION_MARKER).read_text().strip() == ours
    assert (Path(disk.path) / MARKER).read_text() == f"{disk.pk}\n"  # the marker itself as before
    assert disk_identity_check(disk=disk) is None
    # Derived from the master key: another key is another installation.
    assert installation_id(os.urandom(32)) != ours


def test_a_marker_of_another_installation_is_refused_even_as_returning_and_nothing_is_touched(settings, db):
    """A disk unknown here whose installation id is not this installation's: it is another
    deployment's, and the operator's word that it is ours returning is not enough (before: adopted,
    with or without that word)."""
    other = installation_id(os.urandom(32))
    folder, foreign_id = _place_of_a_lost_disk(settings, "foreign", other)
    for returning in (False, True):
        with pytest.raises(Exception, match=f"{foreign_id}.*another installation.*{other}"):
            disk_create_local(name="foreign", path=folder, category="A", capacity_bytes=MB, returning=returning)
    assert not Disk.objects.exists() and not Replica.objects.exists()
    assert (folder / MARKER).read_text() == f"{foreign_id}\n"
    assert (folder / INSTALLATION_MARKER).read_text() == f"{other}\n"
    assert (folder / "ws" / "object").read_bytes() == b"an object of that disk"


def test_a_returning_disk_marked_under_a_previous_master_key_or_before_installation_ids_is_adopted(settings, db):
    """This installation's disk returning after a restore: marked under the master key that was
    rotated away (still in CLOUDSTORAGE_PREVIOUS_MASTER_KEYS), or before markers named their
    installation; adopted as returning, and its marker then names this installation."""
    import base64

    old_key = os.urandom(32)
    settings.CLOUDSTORAGE_PREVIOUS_MASTER_KEYS = [base64.b64encode(old_key).decode()]
    for name, installation in (("rotated", installation_id(old_key)), ("older", None)):
        folder, lost_id = _place_of_a_lost_disk(settings, name, installation)
        with pytest.raises(Exception, match=f"{lost_id}.*does not know.*--returning"):
            disk_create_local(name=name, path=folder, category="A", capacity_bytes=MB)
        disk = disk_create_local(name=name, path=folder, category="A", capacity_bytes=MB, returning=True)
        assert disk.pk == lost_id and Disk.objects.filter(pk=lost_id).exists()
        assert (folder / INSTALLATION_MARKER).read_text().strip() == installation_ids()[0]
        assert (folder / "ws" / "object").read_bytes() == b"an object of that disk"


def test_an_attach_whose_save_fails_takes_its_marker_back(settings, db):
    """A disk whose row cannot be saved (here: its name is taken) leaves no marker behind, so the
    place is not refused afterwards as a disk the database does not know."""
    from django.db import IntegrityError

    make_disks(settings, 1, prefix="taken")
    folder = settings.CLOUDSTORAGE_DISKS_DIR / "fresh"
    with pytest.raises(IntegrityError):
        disk_create_local(name="taken1", path=folder, category="A", capacity_bytes=MB)
    assert not (folder / MARKER).exists()
    disk = disk_create_local(name="fresh", path=folder, category="A", capacity_bytes=MB)
    assert (folder / MARKER).read_text().strip() == str(disk.pk)


def test_an_attach_whose_commit_fails_otherwise_keeps_its_marker(settings, db, monkeypatch):
    """Any other failure of the save (a connection lost at the commit) may come after the row was
    committed: the marker stays, or a disk that is attached would be failed for lacking it."""
    from django.db import OperationalError
    from django.db.models import Model

    folder = settings.CLOUDSTORAGE_DISKS_DIR / "lost"

    def lost(self, *args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(Model, "save", lost)
    with pytest.raises(OperationalError):
        disk_create_local(name="lost", path=folder, category="A", capacity_bytes=MB)
    assert (folder / MARKER).exists()


def _can_mount_tmpfs(path: Path) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(path)], capture_output=True)
    return done.returncode == 0


# Mounting needs root; where the suite runs as root (this machine and its CI), a mount that fails is
# a broken test environment to be reported, not a reason to skip.
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root (see the folder-swap tests below)")
def test_an_unmounted_disk_takes_no_write_and_is_failed_at_once(
    settings, owner_workspace, operators, rng, django_capture_on_commit_callbacks
):
    """A real tmpfs mounted at the disk's mount point, then unmounted under it: the empty mount point
    on the root filesystem must get nothing, and the disk is failed by the write that noticed."""
    mount_point = settings.CLOUDSTORAGE_DISKS_DIR / "mounted"
    assert _can_mount_tmpfs(mount_point), "mount -t tmpfs failed although the suite runs as root"
    try:
        mounted = disk_create_local(name="mounted", path=mount_point, category="A", capacity_bytes=64 * MB)
        make_disks(settings, 1)
        before = _write(owner_workspace, rng)
        assert Replica.objects.filter(disk=mounted).exists()
        subprocess.run(["umount", str(mount_point)], check=True)
        assert mount_point.is_dir() and not any(mount_point.iterdir())  # an empty mount point
        _forget_marker_checks()

        with django_capture_on_commit_callbacks(execute=True):
            data, manifest = _write(owner_workspace, rng)
        mounted.refresh_from_db()
        assert mounted.status == Disk.Status.FAILED
        assert "marker" in mounted.last_check_error
        assert not any(p.is_file() for p in mount_point.rglob("*")), "a write landed on the root filesystem"
        assert read_all(manifest) == data and read_all(before[1]) == before[0]
        assert [m.subject for m in mail.outbox] == ["[Cloud Storage] Disk mounted failed"]
        assert "identity marker" in mail.outbox[0].body
    finally:
        subprocess.run(["umount", str(mount_point)], capture_output=True)


def test_a_folder_recreated_by_hand_is_failed_at_the_first_probe(three_disks, operators, owner_workspace, rng):
    _write(owner_workspace, rng)
    disk = three_disks[0]
    shutil.rmtree(disk.path)
    Path(disk.path).mkdir()
    assert disk_probe(disk=disk) is False
    disk.refresh_from_db()
    assert disk.status == Disk.Status.FAILED and disk.consecutive_failures == 1
    assert len(mail.outbox) == 1 and "identity marker" in mail.outbox[0].body


def test_another_disk_mounted_in_its_place_is_failed_and_refused_by_writes(three_disks, owner_workspace, rng):
    first, second, _third = three_disks
    _write(owner_workspace, rng)
    # The two folders swapped, as two disks mounted at each other's mount points.
    swap = Path(first.path).with_name("swap")
    Path(first.path).rename(swap)
    Path(second.path).rename(first.path)
    swap.rename(second.path)
    _forget_marker_checks()
    with pytest.raises(backends.DiskIdentityError, match="names disk"):
        backends.backend_for(first).put("ws/x/00/stray", b"bytes")
    assert disk_probe(disk=first) is False
    first.refresh_from_db()
    assert first.status == Disk.Status.FAILED and str(second.pk) in first.last_check_error


def test_a_disk_from_before_markers_gets_one_only_if_its_copies_are_there(settings, owner_workspace, rng):
    kept, emptied, _third = make_disks(settings, 3)
    _write(owner_workspace, rng)
    Disk.objects.update(marked_at=None)
    for disk in (kept, emptied):
        (Path(disk.path) / MARKER).unlink()
    for path in object_files(emptied):
        path.unlink()  # an empty mount point where the old disk's data used to be
    kept.refresh_from_db()
    emptied.refresh_from_db()

    assert disk_probe(disk=kept) is True
    kept.refresh_from_db()
    assert kept.marked_at is not None and (Path(kept.path) / MARKER).read_text().strip() == str(kept.pk)

    assert disk_probe(disk=emptied) is False
    emptied.refresh_from_db()
    assert emptied.status == Disk.Status.FAILED and emptied.marked_at is None
    assert not (Path(emptied.path) / MARKER).exists()


# --- Repair requests and probes -------------------------------------------------------------------


def test_a_thousand_failed_reads_queue_one_repair_pass(
    owner_workspace, three_disks, rng, django_capture_on_commit_callbacks
):
    files = [_write(owner_workspace, rng, 30_000) for _ in range(10)]
    lost_copies = 0
    for _data, manifest in files:
        for entry in manifest.entries.select_related("chunk"):
            replica = entry.chunk.replicas.select_related("disk").order_by("pk").first()
            object_delete(replica.disk, entry.chunk.key)
            lost_copies += 1
    assert lost_copies > 50
    with django_capture_on_commit_callbacks() as queued:
        for data, manifest in files:
            assert read_all(manifest) == data
    assert len(queued) == 1  # one pass for every failed read, not a task each
    queued[0]()  # the pass, run eagerly as the worker would
    assert all(len(good_copies(c)) == 2 for c in Chunk.objects.all())


def test_probes_run_on_a_queue_of_their_own_that_a_worker_serves_alone():
    from cloudstorage.celery import app

    # The standby activation too: a filling category cannot wait behind a repair backlog.
    for task in ("disks.tasks.disk_probe_all", "disks.tasks.disk_probe", "disks.tasks.standbys_activate"):
        assert app.amqp.router.route({}, task)["queue"].name == "probes"
    assert app.amqp.router.route({}, "disks.tasks.repair_pass")["queue"].name == "celery"
    procfile = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip())
    assert "-Q probes " in procfile["probe"] + " "
    assert "probes" in procfile["worker"]  # without the probe process, probes still run


# --- Uploads in progress and dead writers ---------------------------------------------------------


def test_chunks_of_an_upload_in_progress_raise_no_lost_chunk_alarm(owner_workspace, three_disks, rng, caplog):
    writing = Manifest.objects.create(workspace=owner_workspace)
    chunk = Chunk.objects.create(workspace=owner_workspace, digest="a" * 64, size=10, stored_size=38)
    ManifestChunk.objects.create(manifest=writing, seq=0, offset=0, chunk=chunk)  # copies not written yet
    with caplog.at_level(logging.ERROR):
        assert replicas_repair() == {}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert replica_health()["chunks_without_good_copy"] == 0

    # A finished file's chunk with no copy is really lost, and still said so.
    data, manifest = _write(owner_workspace, rng, 500)
    lost = manifest.entries.get().chunk
    for replica in lost.replicas.select_related("disk"):
        object_delete(replica.disk, lost.key)
        Replica.objects.filter(pk=replica.pk).update(state=Replica.State.BAD)
    assert list(chunks_needing_repair().values_list("pk", flat=True)) == [lost.pk]
    assert replica_health()["chunks_without_good_copy"] == 1


def test_gc_releases_a_dead_writers_upload_and_its_reservations_at_its_next_run(owner_workspace, three_disks, rng):
    writer = manifest_writer(workspace=owner_workspace)
    writer.write(rng.randbytes(200_000))
    writer._flush()  # a batch recorded (copies "new", bytes reserved) and written ...
    for batch in writer._in_flight:
        for _chunk, future in batch.writes.values():
            future.result()
    # ... and the process killed before it recorded them: nothing more ever happens to its rows.
    assert Replica.objects.filter(state=Replica.State.NEW).exists()
    long_ago = timezone.now() - timedelta(minutes=11)
    Replica.objects.update(created_at=long_ago)
    Chunk.objects.update(created_at=long_ago)
    stale_tmp = Path(three_disks[0].path) / backends.TEMP_DIR / "abc.1234.tmp"
    stale_tmp.parent.mkdir(exist_ok=True)
    stale_tmp.write_bytes(b"half")
    hour_and_more = time.time() - 3700
    os.utime(stale_tmp, (hour_and_more, hour_and_more))

    result = chunks_gc()  # the default graces: one run

    assert result["abandoned_uploads"] == 1
    assert not Chunk.objects.filter(replicas__isnull=True).exists()
    assert not Replica.objects.filter(state=Replica.State.NEW).exists()
    for disk in Disk.objects.all():
        recorded = sum(r.chunk.stored_size for r in Replica.objects.filter(disk=disk).select_related("chunk"))
        assert disk.used_bytes == recorded
    assert not stale_tmp.exists()
    for disk in three_disks:  # what is left on the disks is exactly the copies recorded (ok ones)
        recorded = {r.chunk.key for r in Replica.objects.filter(disk=disk).select_related("chunk")}
        assert {str(p.relative_to(disk.path)) for p in object_files(disk)} == recorded


# --- Repair leases ---------------------------------------------------------------------------------

HOLDER = """
import sys, time
import django
django.setup()
from disks import repair
repair._chunk_repair = lambda **kwargs: time.sleep(3600)  # stuck mid-repair until killed
print("holding", flush=True)
repair.chunk_repair(chunk_id=sys.argv[1])
"""


def test_a_repair_lock_dies_with_its_killed_holder_within_one_lease(settings, tmp_path, db):
    """A real worker process holds a chunk's repair lock and is killed -9; the shared cache (the
    embedded file cache) frees the chunk after one lease, not after ten minutes."""
    settings.CLOUDSTORAGE_REPAIR_LEASE = 2
    settings.CACHES = {
        "default": {"BACKEND": "cloudstorage.sqlite_cache.SQLiteCache", "LOCATION": str(tmp_path / "cache.sqlite3")}
    }
    env = {**os.environ, "CLOUDSTORAGE_VAR_DIR": str(tmp_path), "CLOUDSTORAGE_REPAIR_LEASE": "2", "DEBUG": "1"}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    chunk_id = str(uuid.uuid4())
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, chunk_id], env=env, cwd=ROOT, stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"holding"
        time.sleep(0.3)
        assert chunk_repair(chunk_id=chunk_id) == "busy"
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        time.sleep(2.5)
        assert chunk_repair(chunk_id=chunk_id) == "ok"  # (no such chunk: nothing to do, and not busy)
    finally:
        holder.kill()
        holder.wait(10)


# --- Standby disks ---------------------------------------------------------------------------------


def test_a_full_category_activates_its_standby_which_takes_new_placements(settings, operators, owner_workspace, rng):
    active = make_disks(settings, 2, capacity=MB)
    standby = disk_create_local(
        name="spare",
        path=settings.CLOUDSTORAGE_DISKS_DIR / "spare",
        category="A",
        capacity_bytes=8 * MB,
        status=Disk.Status.STANDBY,
    )
    assert (Path(standby.path) / MARKER).exists()
    _write(owner_workspace, rng)
    assert not Replica.objects.filter(disk=standby).exists()  # a standby holds no data
    assert standbys_activate() == []  # below the threshold: it waits

    Disk.objects.filter(pk__in=[d.pk for d in active]).update(used_bytes=int(0.9 * MB))
    assert standbys_activate() == ["spare"]
    standby.refresh_from_db()
    assert standby.status == Disk.Status.ACTIVE
    newcomer = personal_workspace(UserFactory(email="new@example.com"))
    assert workspace_place(workspace=newcomer)[0] == standby
    assert Placement.objects.filter(workspace=newcomer, rank=0, disk=standby).exists()
    (message,) = mail.outbox
    assert "spare" in message.subject and "No standby disk of category A is left" in message.body
    assert standbys_activate() == []  # nothing left to activate


def test_the_capacity_alert_says_whether_standbys_are_left(settings, operators, db):
    disk = make_disks(settings, 1, capacity=MB)[0]
    Disk.objects.filter(pk=disk.pk).update(used_bytes=int(0.9 * MB))
    assert capacity_alert() == ["A"]
    assert "No standby disk of this category is left" in mail.outbox[0].body


def test_the_admin_registers_a_standby_and_shows_the_pool(settings, db):
    client = Client()
    client.force_login(UserFactory(email="root@example.com", is_staff=True, is_superuser=True))
    path = settings.CLOUDSTORAGE_DISKS_DIR / "spare"
    path.mkdir(parents=True)
    response = client.post(
        "/admin/disks/disk/add/",
        {
            "name": "spare",
            "category": "C",
            "capacity_gb": "1",
            "status": "standby",
            "backend": "local",
            "path": str(path),
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    spare = Disk.objects.get(name="spare")
    assert spare.status == Disk.Status.STANDBY and (path / MARKER).read_text().strip() == str(spare.pk)
    page = client.get("/admin/disks/disk/").content.decode()
    row = page.split('class="category-C"', 1)[1].split("</tr>", 1)[0]
    assert "spare (1.0\xa0GB)" in row


# --- Health -----------------------------------------------------------------------------------------


def test_a_failed_disk_whose_data_is_re_replicated_is_degraded_not_503(owner_workspace, three_disks, rng):
    data, manifest = _write(owner_workspace, rng)
    from disks.services import disk_set_status

    disk_set_status(disk=three_disks[0], status=Disk.Status.FAILED)
    replicas_repair()
    client = Client()
    client.force_login(UserFactory(email="operator@example.com", is_staff=True))
    response = client.get("/healthz/detail")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["disks"]["disks"][three_disks[0].name]["status"] == "failed"
    assert read_all(manifest) == data


def test_a_disk_failed_by_probes_that_timed_out_keeps_its_copies_until_they_exist_elsewhere(
    settings, owner_workspace, rng, monkeypatch, django_capture_on_commit_callbacks
):
    """Two disks, two copies. A only answers slowly: its probes time out and it is failed. The
    repair finds no disk for a new copy, and must not forget A's copies for that: B then dies, and
    when the operator brings A back (it holds the only good copy of every chunk), the file reads
    and the sweep queued on its return deletes nothing. Before, the repair dropped A's records and
    the sweep deleted every object on it."""
    a, b = make_disks(settings, 2)
    data = rng.randbytes(20_000)
    manifest = manifest_write(workspace=owner_workspace, stream=io.BytesIO(data))
    real_check = health.disk_examine
    monkeypatch.setattr(
        health, "disk_examine", lambda *, disk: ("timed out", False) if disk.pk == a.pk else real_check(disk=disk)
    )
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(settings.CLOUDSTORAGE_DISK_PROBE_FAILURES):
            health.disk_probe(disk=a)
    a.refresh_from_db()
    assert a.status == Disk.Status.FAILED
    with django_capture_on_commit_callbacks(execute=True):
        replicas_repair()  # no room anywhere for a new copy
    assert Replica.objects.filter(disk=a).count() == len(object_files(a))

    disk_destroy(b)
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(settings.CLOUDSTORAGE_DISK_PROBE_FAILURES):
            health.disk_probe(disk=b)
    monkeypatch.setattr(health, "disk_examine", real_check)
    hours_ago = time.time() - 3 * 3600  # A was away for hours: the sweep's grace does not protect it
    for path in object_files(a):
        os.utime(path, (hours_ago, hours_ago))
    a_objects = object_files(a)
    with django_capture_on_commit_callbacks(execute=True):
        disk_set_status(disk=a, status=Disk.Status.ACTIVE)  # the sweep runs on its return
    with django_capture_on_commit_callbacks(execute=True):
        replicas_repair()
    assert all(path.exists() for path in a_objects)
    assert read_all(manifest) == data
