"""Disks as folders under the test's tmp_path, and tiny chunks so little data makes many of them."""

from __future__ import annotations

import random

import pytest

from disks.models import Disk
from disks.services import disk_create_local

MB = 1024 * 1024


@pytest.fixture(autouse=True)
def _small_chunks(settings):
    settings.CLOUDSTORAGE_CHUNK_AVG = 1024  # chunks of 256 B .. 4 KiB
    settings.CLOUDSTORAGE_REPLICAS = 2
    settings.CLOUDSTORAGE_REPAIR_BYTES_PER_SECOND = 0
    settings.CLOUDSTORAGE_DISK_PROBE_FAILURES = 3
    # The fixtures' users need no slow password hashing here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def make_disks(settings, count: int, *, category: str = "A", capacity: int = 64 * MB, prefix: str = "d") -> list[Disk]:
    return [
        disk_create_local(
            name=f"{prefix}{n}",
            path=settings.CLOUDSTORAGE_DISKS_DIR / f"{prefix}{n}",
            category=category,
            capacity_bytes=capacity,
        )
        for n in range(1, count + 1)
    ]


@pytest.fixture
def three_disks(settings, db) -> list[Disk]:
    return make_disks(settings, 3)


@pytest.fixture
def rng() -> random.Random:
    return random.Random(1234)


def random_bytes(rng: random.Random, size: int) -> bytes:
    return rng.randbytes(size)


def read_all(manifest, **kwargs) -> bytes:
    from disks.store import manifest_open

    return b"".join(manifest_open(manifest=manifest, **kwargs))


def object_files(disk: Disk) -> list:
    """The chunk objects a local disk holds (probe leftovers, temp files and the identity markers excluded)."""
    from pathlib import Path

    from disks.backends import MARKER

    root = Path(disk.path)
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and not p.name.endswith(".tmp") and ".probe" not in p.parts and not p.name.startswith(MARKER)
    )


# --- A local S3-compatible server (moto's standalone server over real HTTP) ------------------------

S3_ACCESS_KEY = "testing"
S3_SECRET_KEY = "testing"
S3_REGION = "us-east-1"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def s3_server(_s3_server_process, settings) -> str:
    """The local S3 server's endpoint URL, explicitly allowed for the test: it is on loopback over
    plain http, which the disk form refuses unless CLOUDSTORAGE_S3_ENDPOINT_ALLOW names it."""
    from urllib.parse import urlsplit

    settings.CLOUDSTORAGE_S3_ENDPOINT_ALLOW = [urlsplit(_s3_server_process).netloc]
    return _s3_server_process


@pytest.fixture(scope="session")
def _s3_server_process():
    """moto's standalone S3 server in its own process on 127.0.0.1, once per test session (per xdist
    worker); its endpoint URL. Each test uses its own buckets."""
    import subprocess
    import sys
    import time
    import urllib.request

    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("moto's S3 server did not start")
            time.sleep(0.1)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def s3_client(endpoint: str):
    """A plain boto3 client, for tests to look at and damage buckets behind the store's back."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=S3_REGION,
        aws_access_key_id=S3_ACCESS_KEY,
        aws_secret_access_key=S3_SECRET_KEY,
    )


def make_s3_disk(
    endpoint: str,
    name: str,
    *,
    category: str = "A",
    capacity: int = 64 * MB,
    prefix: str = "chunks",
    role: str = Disk.Role.PRIMARY,
):
    """A new bucket on the server, attached as a disk through the same validation operators use."""
    import uuid

    from disks.services import disk_attach

    bucket = f"t-{uuid.uuid4().hex[:20]}"
    s3_client(endpoint).create_bucket(Bucket=bucket)
    return disk_attach(
        disk=Disk(
            name=name,
            backend=Disk.Backend.S3,
            s3_endpoint_url=endpoint,
            s3_bucket=bucket,
            s3_prefix=prefix,
            s3_region=S3_REGION,
            s3_access_key=S3_ACCESS_KEY,
            s3_secret_key=S3_SECRET_KEY,
            category=category,
            capacity_bytes=capacity,
            role=role,
        )
    )


# --- Looking at and damaging stored objects, whatever the disk's backend -------------------------


def stored_keys(disk: Disk) -> list[str]:
    """Chunk object keys on a disk (probe objects and temp files excluded)."""
    if disk.backend == Disk.Backend.LOCAL:
        from pathlib import Path

        return [str(p.relative_to(disk.path)) for p in object_files(disk) if Path(p).is_file()]
    client = s3_client(disk.s3_endpoint_url)
    keys = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=disk.s3_bucket, Prefix=f"{disk.s3_prefix}/"):
        keys += [o["Key"][len(disk.s3_prefix) + 1 :] for o in page.get("Contents", [])]
    return sorted(k for k in keys if not k.startswith((".probe", ".cloudstorage-disk")))


def object_get(disk: Disk, key: str) -> bytes:
    from pathlib import Path

    if disk.backend == Disk.Backend.LOCAL:
        return (Path(disk.path) / key).read_bytes()
    body = s3_client(disk.s3_endpoint_url).get_object(Bucket=disk.s3_bucket, Key=f"{disk.s3_prefix}/{key}")["Body"]
    return body.read()


def object_put(disk: Disk, key: str, data: bytes) -> None:
    from pathlib import Path

    if disk.backend == Disk.Backend.LOCAL:
        (Path(disk.path) / key).write_bytes(data)
    else:
        s3_client(disk.s3_endpoint_url).put_object(Bucket=disk.s3_bucket, Key=f"{disk.s3_prefix}/{key}", Body=data)


def object_delete(disk: Disk, key: str) -> None:
    from pathlib import Path

    if disk.backend == Disk.Backend.LOCAL:
        (Path(disk.path) / key).unlink()
    else:
        s3_client(disk.s3_endpoint_url).delete_object(Bucket=disk.s3_bucket, Key=f"{disk.s3_prefix}/{key}")


def object_flip_byte(disk: Disk, key: str, rng: random.Random) -> None:
    data = bytearray(object_get(disk, key))
    data[rng.randrange(len(data))] ^= 0xFF
    object_put(disk, key, bytes(data))


def disk_destroy(disk: Disk) -> None:
    """The disk is gone: a local folder removed entirely, or a bucket emptied and deleted."""
    import shutil

    if disk.backend == Disk.Backend.LOCAL:
        shutil.rmtree(disk.path)
        return
    client = s3_client(disk.s3_endpoint_url)
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=disk.s3_bucket):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=disk.s3_bucket, Key=obj["Key"])
    client.delete_bucket(Bucket=disk.s3_bucket)


def good_copies(chunk) -> list:
    """The disks holding a good copy of a chunk on an in-service disk."""
    from disks.models import Replica

    return list(
        Replica.objects.filter(
            chunk=chunk, state=Replica.State.OK, disk__status__in=(Disk.Status.ACTIVE, Disk.Status.READ_ONLY)
        ).values_list("disk_id", flat=True)
    )


def repair_until_done(max_runs: int = 20) -> None:
    from disks.repair import replicas_repair
    from disks.selectors import chunks_needing_repair

    for _ in range(max_runs):
        if not chunks_needing_repair().exists():
            return
        replicas_repair()
    raise AssertionError(f"{chunks_needing_repair().count()} chunk(s) still need repair")
