#!/usr/bin/env python
"""Throughput of the chunk store beside a plain copy of the same bytes, in the same run.

    .venv/bin/python bench/store.py [--mib 1024] [--dir PATH] [--replicas 2]

Everything lives in a fresh temporary folder (SQLite database, master key, two local disks), so the
numbers are the embedded default's: FastCDC chunking, AES-256-GCM, HMAC addressing, every copy
fsync'd. Prints MB/s (10^6 bytes per second) for:

- plain copy: read the source, write it to two files, fsync both (what two replicas cost at least);
- plain read: read one copy back and SHA-256 it;
- store write: ``manifest_write`` of the source (2 replicas, encryption on, acknowledged once durable);
- store read: ``manifest_open`` streamed and SHA-256'd (every chunk authenticated);

and the process's peak RSS, which shows that memory stays bounded whatever the file size.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

BLOCK = 1024 * 1024
ROOT = Path(__file__).resolve().parent.parent


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def timed(label: str, nbytes: int, fn):
    started = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - started
    print(f"{label:<13} {nbytes / seconds / 1e6:8.1f} MB/s  ({seconds:6.2f} s)", flush=True)
    return result


def make_source(path: Path, size: int) -> str:
    sha = hashlib.sha256()
    with open(path, "wb") as out:
        left = size
        while left:
            block = os.urandom(min(BLOCK * 8, left))
            sha.update(block)
            out.write(block)
            left -= len(block)
    return sha.hexdigest()


def plain_copy(source: Path, targets: list[Path]) -> None:
    outs = [open(t, "wb") for t in targets]
    try:
        with open(source, "rb") as src:
            while block := src.read(BLOCK):
                for out in outs:
                    out.write(block)
        for out in outs:
            out.flush()
            os.fsync(out.fileno())
    finally:
        for out in outs:
            out.close()


def plain_read(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as src:
        while block := src.read(BLOCK):
            sha.update(block)
    return sha.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=1024, help="size of the file in MiB (default 1024)")
    parser.add_argument("--dir", default=None, help="where to put the temporary files (default: the system's)")
    parser.add_argument("--replicas", type=int, default=2)
    args = parser.parse_args()
    size = args.mib * 1024 * 1024

    work = Path(tempfile.mkdtemp(prefix="cs-bench-", dir=args.dir))
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "cloudstorage.settings",
            "CLOUDSTORAGE_VAR_DIR": str(work / "var"),
            "CLOUDSTORAGE_REPLICAS": str(args.replicas),
            "DEBUG": "1",
        }
    )
    for name in ("DATABASE_URL", "REDIS_URL", "CLOUDSTORAGE_MASTER_KEY"):
        os.environ.pop(name, None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from accounts.models import User, Workspace
    from disks.services import disk_create_local
    from disks.store import manifest_open, manifest_write

    for n in range(1, args.replicas + 1):
        disk_create_local(name=f"bench-{n}", path=work / "disks" / f"d{n}", category="A", capacity_bytes=4 * size)
    user = User.objects.create_user(email="bench@example.com", password=None)
    workspace = Workspace.objects.get(owner=user, kind=Workspace.Kind.PERSONAL)

    source = work / "source.bin"
    print(f"{args.mib} MiB of random bytes in {work}, {args.replicas} replicas, AES-256-GCM, fsync on every copy")
    digest = make_source(source, size)
    print(f"peak RSS after setup: {rss_mib():.0f} MiB", flush=True)

    timed("plain copy", size, lambda: plain_copy(source, [work / "copy1.bin", work / "copy2.bin"]))
    assert timed("plain read", size, lambda: plain_read(work / "copy1.bin")) == digest
    (work / "copy1.bin").unlink()
    (work / "copy2.bin").unlink()

    def store_write():
        with open(source, "rb") as stream:
            return manifest_write(workspace=workspace, stream=stream)

    manifest = timed("store write", size, store_write)
    assert manifest.sha256 == digest

    def store_read() -> str:
        sha = hashlib.sha256()
        for block in manifest_open(manifest=manifest):
            sha.update(block)
        return sha.hexdigest()

    assert timed("store read", size, store_read) == digest
    print(f"chunks: {manifest.entries.count()}, average {size / max(1, manifest.entries.count()) / 1e6:.2f} MB")
    print(f"peak RSS: {rss_mib():.0f} MiB")
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
