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
    """The chunk objects a local disk holds (probe leftovers and temp files excluded)."""
    from pathlib import Path

    root = Path(disk.path)
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.endswith(".tmp") and ".probe" not in p.parts)
