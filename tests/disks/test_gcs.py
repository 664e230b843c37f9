"""Google Cloud Storage disks, through google-cloud-storage, against a local GCS emulator
(gcp-storage-emulator over real HTTP on 127.0.0.1): the same store, repair and drain as S3 disks."""

from __future__ import annotations

import io
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest

from disks.backends import MARKER, ObjectMissing, backend_for
from disks.health import disk_probe
from disks.models import Chunk, Disk, Placement, Replica
from disks.services import disk_attach
from tests.disks.conftest import _free_port, good_copies, make_disks, read_all, repair_until_done
from tests.disks.test_s3 import drain_all, snapshot, write


@pytest.fixture(scope="session")
def _gcs_emulator_process():
    """The emulator in its own process, in memory, once per test session (per xdist worker)."""
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gcp_storage_emulator",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--in-memory",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}/storage/v1/b?project=local", timeout=1).close()  # noqa: S310 - loopback
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("the GCS emulator did not start")
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def endpoint(_gcs_emulator_process, settings) -> str:
    settings.CLOUDSTORAGE_S3_ENDPOINT_ALLOW = [_gcs_emulator_process.removeprefix("http://")]
    return _gcs_emulator_process


def gcs_client(endpoint: str):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(
        project="local", credentials=AnonymousCredentials(), client_options={"api_endpoint": endpoint}
    )


def make_gcs_disk(endpoint: str, name: str, *, category: str = "A") -> Disk:
    bucket = f"g-{uuid.uuid4().hex[:20]}"
    gcs_client(endpoint).create_bucket(bucket)
    return disk_attach(
        disk=Disk(
            name=name,
            backend=Disk.Backend.GCS,
            s3_endpoint_url=endpoint,
            s3_bucket=bucket,
            s3_prefix="chunks",
            category=category,
            capacity_bytes=64 * 1024 * 1024,
        )
    )


def gcs_keys(disk: Disk) -> set[str]:
    """The chunk keys on a GCS disk: not the probe objects nor the disk's identity marker."""
    return {k for k in backend_for(disk).keys() if not k.startswith((".probe", MARKER))}


def test_put_get_delete_probe_and_listing(db, endpoint):
    disk = make_gcs_disk(endpoint, "gcs-1")
    assert disk.last_check_ok
    backend = backend_for(disk)
    backend.put("ws/x/ab/obj", b"hello gcs")
    assert backend.get("ws/x/ab/obj") == b"hello gcs"
    with backend.get_into("ws/x/ab/obj", bytearray()) as view:
        assert bytes(view) == b"hello gcs"
    assert [key for key, _ in backend.listing("ws/")] == ["ws/x/ab/obj"]
    assert backend.modified_at("ws/x/ab/obj") is not None
    backend.delete("ws/x/ab/obj")
    backend.delete("ws/x/ab/obj")  # deleting twice is harmless
    with pytest.raises(ObjectMissing):
        backend.get("ws/x/ab/obj")
    assert backend.modified_at("ws/x/ab/obj") is None
    assert disk_probe(disk=disk) is True


def test_a_failed_gcs_disk_is_repaired_from_the_local_copy(settings, endpoint, owner_workspace, rng):
    (local,) = make_disks(settings, 1)
    bucket = make_gcs_disk(endpoint, "gcs-1")
    files = write(owner_workspace, rng, (500, 4000, 12_000, 20_000))
    assert all(set(good_copies(c)) == {local.pk, bucket.pk} for c in Chunk.objects.all())
    assert gcs_keys(bucket) == {c.key for c in Chunk.objects.all()}
    spare = make_gcs_disk(endpoint, "gcs-spare")

    gcs_client(endpoint).bucket(bucket.s3_bucket).delete(force=True)  # the bucket is gone
    assert all(read_all(m) == data for m, data in files)  # served from the local copies
    for _ in range(settings.CLOUDSTORAGE_DISK_PROBE_FAILURES):
        assert disk_probe(disk=bucket) is False
    bucket.refresh_from_db()
    # The identity check runs first: with the bucket gone, its marker is gone too.
    assert bucket.status == Disk.Status.FAILED and bucket.last_check_error.startswith(f"no {MARKER} marker")

    repair_until_done()
    assert all(set(good_copies(c)) == {local.pk, spare.pk} for c in Chunk.objects.all())
    assert gcs_keys(spare) == {c.key for c in Chunk.objects.all()}
    assert not Replica.objects.filter(disk=bucket).exists()
    assert all(read_all(m) == data for m, data in files)


def test_online_drain_from_local_disks_to_gcs(settings, endpoint, owner_workspace, team, rng):
    settings.CLOUDSTORAGE_REPAIR_BYTES_PER_SECOND = 0
    local = make_disks(settings, 2)
    files = write(owner_workspace, rng, (0, 300, 3000, 9000)) + write(team, rng, (2000, 6000))
    before = snapshot()
    gcs = [make_gcs_disk(endpoint, "gcs-1"), make_gcs_disk(endpoint, "gcs-2")]

    assert drain_all(local, files, limit=6) > 4
    gcs_ids = {d.pk for d in gcs}
    assert all(set(good_copies(c)) == gcs_ids for c in Chunk.objects.all())
    for disk in local:
        disk.refresh_from_db()
        assert disk.used_bytes == 0
    assert set(Placement.objects.values_list("disk", flat=True)) <= gcs_ids
    assert snapshot() == before
    assert all(read_all(m) == data for m, data in files)


def _data_corruption():
    from google.resumable_media.common import DataCorruption

    return DataCorruption(None, "Checksum mismatch while downloading")


def _transport_error():
    from google.auth.exceptions import TransportError

    return TransportError("Failed to retrieve http://metadata.google.internal/ (connection reset)")


@pytest.mark.parametrize("fault", [_data_corruption, _transport_error], ids=["data-corruption", "transport-error"])
def test_a_transient_gcs_read_fault_is_the_disks_and_the_scrub_goes_on(
    settings, endpoint, owner_workspace, rng, monkeypatch, fault
):
    """A download whose checksum does not match (google-resumable-media's DataCorruption) or a
    token refresh that cannot reach Google (google.auth's TransportError) is neither a
    GoogleAPIError nor an OSError: it is now a BackendError, so the scrub counts the copy as
    unreadable for now (not bad) and verifies every other copy, and the file reads from the local
    copy (before: the exception escaped and the scrub died on that copy, run after run)."""
    from google.cloud.storage import Blob

    from disks.backends import BackendError
    from disks.scrub import replicas_scrub
    from disks.store import manifest_write

    make_disks(settings, 1)
    gcs = make_gcs_disk(endpoint, "g1")
    data = rng.randbytes(20_000)
    manifest = manifest_write(workspace=owner_workspace, stream=io.BytesIO(data))
    assert Replica.objects.filter(disk=gcs).exists()

    def failing(self, *args, **kwargs):
        raise fault()

    monkeypatch.setattr(Blob, "download_as_bytes", failing)
    chunk = Chunk.objects.filter(replicas__disk=gcs).first()
    with pytest.raises(BackendError):
        backend_for(gcs).get(chunk.key)
    result = replicas_scrub()
    assert result["checked"] == Replica.objects.count()
    assert not Replica.objects.filter(state=Replica.State.BAD).exists()
    assert read_all(manifest) == data
