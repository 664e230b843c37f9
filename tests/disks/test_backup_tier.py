"""The backup tier: local disks hold the replicas, a bucket on the local S3 server (moto, over real
HTTP) or the GCS emulator holds one more copy of every chunk, written by the backup run after the
upload; reads and repairs fall back to it when every local copy is missing or corrupt."""

from __future__ import annotations

import io
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client

from disks.gc import chunks_gc
from disks.health import disk_probe
from disks.models import Chunk, Disk, Placement, Replica
from disks.placement import write_candidates
from disks.repair import chunk_repair, chunks_backup, disk_drain, replicas_repair, workspace_relocate
from disks.scrub import replicas_scrub
from disks.selectors import backup_lag, capacity_by_category, replica_health
from disks.store import manifest_check, manifest_write
from tests.conftest import requires_redis
from tests.disks.conftest import (
    MB,
    disk_destroy,
    make_disks,
    make_s3_disk,
    object_delete,
    object_flip_byte,
    object_get,
    read_all,
    repair_until_done,
    stored_keys,
)
from tests.disks.test_admin import ADD, CHANGELIST, admin_client, attach_form, operator  # noqa: F401 - fixtures
from tests.disks.test_gcs import _gcs_emulator_process, gcs_client, gcs_keys  # noqa: F401 - fixture

BACKUP = Disk.Role.BACKUP


@pytest.fixture
def endpoint(s3_server) -> str:
    return s3_server


@pytest.fixture
def tier(settings, endpoint, db) -> tuple[list[Disk], Disk]:
    """Two local disks and one S3 bucket of the backup tier."""
    return make_disks(settings, 2), make_s3_disk(endpoint, "cloud", role=BACKUP, capacity=256 * MB)


def write(workspace, rng, sizes) -> list[tuple]:
    return [
        (manifest_write(workspace=workspace, stream=io.BytesIO(data)), data)
        for data in (rng.randbytes(size) for size in sizes)
    ]


def good_copies(chunk) -> list:
    """The primary disks holding a good copy of a chunk (the replicas)."""
    in_service = (Disk.Status.ACTIVE, Disk.Status.READ_ONLY)
    return list(
        Replica.objects.filter(
            chunk=chunk, state=Replica.State.OK, disk__status__in=in_service, disk__role=Disk.Role.PRIMARY
        ).values_list("disk_id", flat=True)
    )


def backup_copies(chunk) -> list:
    return list(Replica.objects.filter(chunk=chunk, disk__role=BACKUP, state=Replica.State.OK).values_list("disk_id"))


def test_the_backup_run_puts_one_copy_of_every_chunk_on_the_backup_disk_and_the_lag_goes_to_zero(
    tier, owner_workspace, rng
):
    local, cloud = tier
    files = write(owner_workspace, rng, (700, 9000, 30_000))
    chunks = list(Chunk.objects.all())
    # The upload wrote its local copies only: the backup copies come later, from a worker.
    assert stored_keys(cloud) == []
    assert all(set(good_copies(c)) == {d.pk for d in local} for c in chunks)
    lag = backup_lag()
    assert lag["chunks"] == len(chunks) and lag["bytes"] == sum(c.stored_size for c in chunks)
    assert lag["oldest_at"] == min(c.created_at for c in chunks)

    assert chunks_backup() == {"repaired": len(chunks)}
    assert all(backup_copies(c) == [(cloud.pk,)] for c in chunks)
    assert set(stored_keys(cloud)) == {c.key for c in chunks}
    # The same stored object as the local copies (the same ciphertext under the same key).
    assert all(object_get(cloud, c.key) == object_get(local[0], c.key) for c in chunks)
    cloud.refresh_from_db()
    assert cloud.used_bytes == sum(c.stored_size for c in chunks)
    lag = backup_lag()
    assert (lag["chunks"], lag["bytes"], lag["oldest_at"], lag["age_seconds"]) == (0, 0, None, 0.0)
    assert chunks_backup() == {}  # nothing left to do
    # A backup copy is one more copy, not a replica: files are exactly "ok", nothing needs repair.
    assert all(manifest_check(manifest=m) == "ok" for m, _ in files)
    assert replica_health()["chunks_needing_repair"] == 0

    # New chunks lag until the next run; old ones stay backed up.
    more = write(owner_workspace, rng, (5000,))
    assert backup_lag()["chunks"] == Chunk.objects.count() - len(chunks) > 0
    chunks_backup()
    assert backup_lag()["chunks"] == 0
    assert all(read_all(m) == data for m, data in files + more)


def test_placement_and_the_replica_count_never_use_the_backup_disk(settings, endpoint, owner_workspace, rng):
    (local,) = make_disks(settings, 1, capacity=8 * MB)
    # The emptiest, biggest disk there is: placement would choose it first if it could.
    cloud = make_s3_disk(endpoint, "cloud", role=BACKUP, capacity=1024 * MB)
    files = write(owner_workspace, rng, (3000, 12_000))
    assert list(Placement.objects.filter(workspace=owner_workspace).values_list("disk_id", flat=True)) == [local.pk]
    assert [d.pk for d in write_candidates(workspace=owner_workspace, size=0, exclude=set())] == [local.pk]
    assert not Replica.objects.filter(disk=cloud).exists()
    assert capacity_by_category()[0]["capacity_bytes"] == 8 * MB  # the backup disk is no category's room

    # Two copies are wanted, one local disk exists: repair and the backup run never make the
    # backup copy count as the second one, nor put a second copy on the backup tier.
    chunks_backup()
    for _ in range(2):
        replicas_repair()
    for chunk in Chunk.objects.all():
        assert good_copies(chunk) == [local.pk]
        assert backup_copies(chunk) == [(cloud.pk,)]
    assert all(manifest_check(manifest=m) == "degraded" for m, _ in files)
    assert replica_health()["chunks_under_replicated"] == Chunk.objects.count()


def test_readers_try_the_local_copies_before_the_backup_copy(tier, owner_workspace, rng):
    from disks.chunks import readable_replicas

    local, cloud = tier
    write(owner_workspace, rng, (9000,))
    chunks_backup()
    for chunk in Chunk.objects.all():
        assert [r.disk.role for r in readable_replicas(chunk=chunk)] == ["primary", "primary", "backup"]
    # With the bucket gone, reads never notice: the local copies serve.
    disk_destroy(cloud)
    files = write(owner_workspace, rng, (4000,))
    assert read_all(files[0][0]) == files[0][1]
    assert not Replica.objects.filter(state=Replica.State.BAD).exists()


@pytest.mark.parametrize("damage", ["deleted", "corrupt"])
def test_a_chunk_without_a_good_local_copy_is_served_and_repaired_from_the_backup(tier, owner_workspace, rng, damage):
    local, cloud = tier
    files = write(owner_workspace, rng, (2000, 20_000))
    chunks_backup()
    manifest, data = files[1]
    damaged = [e.chunk for e in manifest.entries.order_by("seq")][::2]
    for chunk in damaged:
        for disk in local:
            if damage == "deleted":
                object_delete(disk, chunk.key)
            else:
                object_flip_byte(disk, chunk.key, rng)

    assert read_all(manifest) == data  # served from the backup copy
    assert read_all(manifest, start=1000, end=15_000) == data[1000:15_000]
    for chunk in damaged:
        assert good_copies(chunk) == [] and backup_copies(chunk) == [(cloud.pk,)]
    health = replica_health()
    assert health["chunks_only_on_backup"] == len(damaged) and health["chunks_without_good_copy"] == 0
    assert manifest_check(manifest=manifest) == "degraded"

    repair_until_done()
    for chunk in damaged:
        assert set(good_copies(chunk)) == {d.pk for d in local}
        assert all(object_get(d, chunk.key) == object_get(cloud, chunk.key) for d in local)
    assert manifest_check(manifest=manifest) == "ok"
    assert not Replica.objects.filter(state=Replica.State.BAD).exists()
    for disk in (*local, cloud):
        disk.refresh_from_db()
        assert disk.used_bytes == sum(c.stored_size for c in Chunk.objects.all())
    assert all(read_all(m) == d for m, d in files)


def test_repair_restores_every_local_copy_from_the_backup_after_both_local_disks_are_wiped(tier, owner_workspace, rng):
    local, cloud = tier
    files = write(owner_workspace, rng, (500, 6000, 25_000))
    chunks_backup()
    for disk in local:
        for path in Path(disk.path).joinpath("ws").rglob("*"):
            if path.is_file():
                path.unlink()
    # Nothing was read yet, so nothing is marked: repair learns of it from the reads of a scrub.
    assert replicas_scrub()["bad"] == 2 * Chunk.objects.count()
    repair_until_done()
    assert all(set(good_copies(c)) == {d.pk for d in local} for c in Chunk.objects.all())
    assert all(read_all(m) == data for m, data in files)


def test_an_upload_of_a_chunk_left_only_on_the_backup_writes_fresh_local_copies(tier, owner_workspace, rng):
    local, cloud = tier
    data = rng.randbytes(3000)
    write_once = manifest_write(workspace=owner_workspace, stream=io.BytesIO(data))
    chunks_backup()
    for chunk in Chunk.objects.all():
        for disk in local:
            object_delete(disk, chunk.key)
    assert read_all(write_once) == data  # marks the local copies bad; the backup copy serves
    again = manifest_write(workspace=owner_workspace, stream=io.BytesIO(data))  # deduplicated
    assert Chunk.objects.count() == write_once.entries.count()
    assert all(set(good_copies(c)) == {d.pk for d in local} for c in Chunk.objects.all())
    assert read_all(again) == data


def test_scrub_verifies_the_backup_copies_and_a_bad_one_is_written_again(tier, owner_workspace, rng):
    local, cloud = tier
    files = write(owner_workspace, rng, (8000,))
    chunks_backup()
    chunk = Chunk.objects.first()
    object_flip_byte(cloud, chunk.key, rng)
    result = replicas_scrub(disk=cloud)
    assert result == {"checked": Chunk.objects.count(), "bad": 1, "repaired": 1}
    assert backup_copies(chunk) == [(cloud.pk,)]
    assert object_get(cloud, chunk.key) == object_get(local[0], chunk.key)
    assert Replica.objects.filter(disk=cloud, verified_at__isnull=False).count() == Chunk.objects.count()
    assert read_all(files[0][0]) == files[0][1]


def test_purging_a_file_deletes_its_backup_copies(api, tier, owner_workspace, rng):
    from files.models import Node

    local, cloud = tier
    root = Node.objects.get(workspace=owner_workspace, parent__isnull=True)
    data = rng.randbytes(40_000)
    created = api.put(f"/api/v1/nodes/{root.pk}/children/photo.raw", data, content_type="application/octet-stream")
    assert created.status_code == 201
    node_id = created.json()["id"]
    chunks_backup()
    assert set(stored_keys(cloud)) == {c.key for c in Chunk.objects.all()} != set()
    # A download, byte-identical, with every local copy gone.
    for chunk in Chunk.objects.all():
        for disk in local:
            object_delete(disk, chunk.key)
    assert b"".join(api.get(f"/api/v1/nodes/{node_id}/content").streaming_content) == data

    assert api.delete(f"/api/v1/nodes/{node_id}/").status_code == 204
    assert api.delete(f"/api/v1/trash/{node_id}/").status_code == 204
    chunks_gc(grace=timedelta(0))
    assert not Chunk.objects.exists()
    assert stored_keys(cloud) == []
    cloud.refresh_from_db()
    assert cloud.used_bytes == 0 and backup_lag()["chunks"] == 0


def test_a_failed_backup_disk_breaks_no_upload_and_its_copies_move_to_another_backup_disk(
    settings, tier, endpoint, owner_workspace, rng
):
    local, cloud = tier
    files = write(owner_workspace, rng, (3000, 9000))
    chunks_backup()
    disk_destroy(cloud)  # the bucket is gone

    files += write(owner_workspace, rng, (4000, 16_000))  # uploads don't notice
    assert all(read_all(m) == data for m, data in files)
    before = backup_lag()["chunks"]
    assert before > 0
    chunks_backup()  # the bucket refuses the new copies: nothing is recorded, nothing breaks
    assert backup_lag()["chunks"] == before
    for _ in range(settings.CLOUDSTORAGE_DISK_PROBE_FAILURES):
        assert disk_probe(disk=cloud) is False
    cloud.refresh_from_db()
    assert cloud.status == Disk.Status.FAILED
    assert backup_lag()["chunks"] == Chunk.objects.count()  # the lag shows what the tier lost
    files += write(owner_workspace, rng, (2500,))

    spare = make_s3_disk(endpoint, "cloud-spare", role=BACKUP)
    repair_until_done()  # drops the failed disk's copies and writes them to the spare
    chunks_backup()
    assert not Replica.objects.filter(disk=cloud).exists()
    assert all(backup_copies(c) == [(spare.pk,)] for c in Chunk.objects.all())
    assert set(stored_keys(spare)) == {c.key for c in Chunk.objects.all()}
    assert backup_lag()["chunks"] == 0
    assert all(read_all(m) == data for m, data in files)


def test_draining_the_only_backup_disk_retires_the_tier(tier, owner_workspace, rng):
    local, cloud = tier
    files = write(owner_workspace, rng, (3000, 9000))
    chunks_backup()
    assert disk_drain(disk=cloud)["left"] == 0
    assert stored_keys(cloud) == []
    assert backup_lag() is None and chunks_backup() == {}
    assert all(set(good_copies(c)) == {d.pk for d in local} for c in Chunk.objects.all())
    assert all(read_all(m) == data for m, data in files)


def test_a_gcs_bucket_works_as_the_backup_disk(settings, _gcs_emulator_process, owner_workspace, rng):  # noqa: F811
    import uuid

    from disks.services import disk_attach

    settings.CLOUDSTORAGE_S3_ENDPOINT_ALLOW = [_gcs_emulator_process.removeprefix("http://")]
    local = make_disks(settings, 2)
    bucket = f"g-{uuid.uuid4().hex[:20]}"
    gcs_client(_gcs_emulator_process).create_bucket(bucket)
    cloud = disk_attach(
        disk=Disk(
            name="gcs-backup",
            backend=Disk.Backend.GCS,
            role=BACKUP,
            s3_endpoint_url=_gcs_emulator_process,
            s3_bucket=bucket,
            s3_prefix="chunks",
            category="A",
            capacity_bytes=64 * MB,
        )
    )
    files = write(owner_workspace, rng, (5000, 20_000))
    chunks_backup()
    assert gcs_keys(cloud) == {c.key for c in Chunk.objects.all()}
    for chunk in Chunk.objects.all():
        for disk in local:
            object_delete(disk, chunk.key)
    assert all(read_all(m) == data for m, data in files)
    repair_until_done()
    assert all(set(good_copies(c)) == {d.pk for d in local} for c in Chunk.objects.all())


def test_chunk_repair_of_a_healthy_chunk_adds_the_missing_backup_copy(tier, owner_workspace, rng):
    local, cloud = tier
    write(owner_workspace, rng, (2000,))
    chunk = Chunk.objects.first()
    assert chunk_repair(chunk_id=chunk.pk) == "repaired"
    assert backup_copies(chunk) == [(cloud.pk,)]
    assert chunk_repair(chunk_id=chunk.pk) == "ok"


# --- Operators ----------------------------------------------------------------------------------


def test_the_disk_list_shows_how_far_the_backup_lags(admin_client, tier, owner_workspace, rng):  # noqa: F811
    write(owner_workspace, rng, (9000, 30_000))
    page = admin_client.get(CHANGELIST)
    html = page.content.decode()
    assert page.context["backup"]["chunks"] == Chunk.objects.count() > 0
    assert "Backup tier" in html and f'<td id="backup-lag-chunks">{Chunk.objects.count()}</td>' in html
    assert 'id="backup-lag-age"' in html and "none: up to date" not in html
    chunks_backup()
    html = admin_client.get(CHANGELIST).content.decode()
    assert '<td id="backup-lag-chunks">0</td>' in html and "none: up to date" in html
    assert "cloud (active," in html


def test_the_disk_list_says_when_there_is_no_backup_tier(admin_client, three_disks):  # noqa: F811
    page = admin_client.get(CHANGELIST)
    assert page.context["backup"] is None and "No disk is a backup target" in page.content.decode()


def test_an_operator_attaches_a_bucket_as_a_backup_disk(admin_client, endpoint):  # noqa: F811
    from tests.disks.conftest import S3_REGION, s3_client

    s3_client(endpoint).create_bucket(Bucket="backup-bucket")
    s3 = {
        "backend": "s3",
        "s3_endpoint_url": endpoint,
        "s3_region": S3_REGION,
        "s3_access_key": "k",
        "s3_secret_key": "s",
        "s3_bucket": "backup-bucket",
        "s3_prefix": "cs",
    }
    refused = admin_client.post(ADD, attach_form(name="b", role="backup", status="standby", **s3))
    assert refused.status_code == 200 and "cannot be a standby" in refused.content.decode()
    assert not Disk.objects.exists()
    accepted = admin_client.post(ADD, attach_form(name="b", role="backup", **s3))
    assert accepted.status_code == 302
    disk = Disk.objects.get()
    assert disk.role == BACKUP and disk.status == Disk.Status.ACTIVE
    # The role is fixed once saved.
    admin_client.post(f"/admin/disks/disk/{disk.pk}/change/", {"name": "b", "capacity_gb": "1", "role": "primary"})
    disk.refresh_from_db()
    assert disk.role == BACKUP


def test_metrics_export_the_backup_lag(settings, tier, owner_workspace, rng):
    from prometheus_client.parser import text_string_to_metric_families

    settings.METRICS_TOKEN = "t" * 40

    def scrape() -> dict:
        response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {'t' * 40}")
        assert response.status_code == 200
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.content.decode())
            for s in family.samples
        }

    write(owner_workspace, rng, (9000,))
    samples = scrape()
    assert samples[("cloudstorage_backup_lag_chunks", ())] == Chunk.objects.count()
    assert samples[("cloudstorage_backup_lag_bytes", ())] == sum(c.stored_size for c in Chunk.objects.all())
    assert samples[("cloudstorage_backup_lag_seconds", ())] >= 0
    assert ("cloudstorage_disk_used_bytes", (("category", "backup"), ("disk", "cloud"))) in samples
    chunks_backup()
    samples = scrape()
    assert samples[("cloudstorage_backup_lag_chunks", ())] == 0
    assert samples[("cloudstorage_backup_lag_seconds", ())] == 0


def test_a_backup_disk_failing_its_probe_leaves_the_service_degraded_not_down(tier, owner_workspace, rng):
    from tests.factories import UserFactory

    local, cloud = tier
    write(owner_workspace, rng, (3000,))
    chunks_backup()
    disk_destroy(cloud)
    client = Client()
    client.force_login(UserFactory(email="operator@example.com", is_staff=True))
    response = client.get("/healthz/detail")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["disks"]["disks"]["cloud"]["ok"] is False
    assert body["checks"]["disks"]["disks"]["cloud"]["role"] == "backup"


def test_a_plan_change_moves_the_local_copies_and_leaves_the_backup_copy(settings, tier, owner_workspace, rng):
    local, cloud = tier
    files = write(owner_workspace, rng, (3000, 12_000))
    chunks_backup()
    in_b = make_disks(settings, 2, category="B", prefix="b")
    owner_workspace.plan_gb = 10
    owner_workspace.save(update_fields=["plan_gb"])
    workspace_relocate(workspace=owner_workspace)
    for chunk in Chunk.objects.all():
        assert set(good_copies(chunk)) == {d.pk for d in in_b}
        assert backup_copies(chunk) == [(cloud.pk,)]
    assert backup_lag()["chunks"] == 0
    assert all(read_all(m) == data for m, data in files)


@pytest.mark.live_worker
@requires_redis
def test_the_backup_task_runs_on_a_live_worker(celery_worker_live, settings, endpoint, owner_workspace, rng):
    from disks.tasks import chunks_backup as chunks_backup_task

    settings.CLOUDSTORAGE_REPAIR_BATCH = 3  # a full batch queues the next pass at once, on the worker too
    local = make_disks(settings, 2)
    cloud = make_s3_disk(endpoint, "cloud", role=BACKUP)
    files = write(owner_workspace, rng, (4000, 20_000))
    total = Chunk.objects.count()
    assert total > 3
    assert chunks_backup_task.delay().get(timeout=60) == {"repaired": 3}
    deadline = time.monotonic() + 60
    while backup_lag()["chunks"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert backup_lag()["chunks"] == 0
    assert set(stored_keys(cloud)) == {c.key for c in Chunk.objects.all()}
    for chunk in Chunk.objects.all():
        for disk in local:
            object_delete(disk, chunk.key)
    assert all(read_all(m) == data for m, data in files)
