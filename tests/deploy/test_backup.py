"""`manage.py backup` / `manage.py restore` round-trip the database: files uploaded, the database
backed up onto a disk, destroyed, restored, and every file reads back byte-identical. A real
gunicorn on SQLite (and on PostgreSQL when DATABASE_URL names one), as the harness runs it."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import urllib.request
from contextlib import nullcontext
from pathlib import Path

import pytest

from bench.harness import ROOT, bench_database, instance

SHAS = """
import hashlib, json
from disks.store import manifest_open
from files.models import Node
shas = {}
for node in Node.objects.filter(kind="file").select_related("current_version__manifest"):
    sha = hashlib.sha256()
    for block in manifest_open(manifest=node.current_version.manifest):
        sha.update(block)
    shas[node.name] = sha.hexdigest()
print(json.dumps(shas))
"""

POSTGRES = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))


def manage(server, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], env=env or server.env, cwd=ROOT, capture_output=True, text=True
    )


def put(server, name: str, data: bytes) -> None:
    request = urllib.request.Request(
        f"{server.url}/api/v1/nodes/{server.root}/children/{name}",
        data=data,
        method="PUT",
        headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/octet-stream"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - loopback
        assert response.status == 201


def destroy_database(server, database) -> None:
    if database is None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{server.var}/db.sqlite3{suffix}").unlink(missing_ok=True)
    else:
        database.__exit__(None, None, None)  # DROP DATABASE … WITH (FORCE)
        database.__enter__()  # an empty one of the same name


@pytest.mark.parametrize(
    "vendor",
    [
        "sqlite",
        pytest.param(
            "postgresql",
            marks=pytest.mark.skipif(not POSTGRES, reason="needs DATABASE_URL on PostgreSQL (.ci/run's second pass)"),
        ),
    ],
)
def test_backup_destroy_restore_gives_back_every_file_and_refuses_another_master_key(vendor, tmp_path):
    database = bench_database(os.environ["DATABASE_URL"], suffix="_backup") if vendor == "postgresql" else None
    with database or nullcontext() as url, instance(database_url=url) as server:
        files = {"big.bin": os.urandom(3 * 1024 * 1024 + 17), "small.txt": b"hello", "mid.bin": os.urandom(200_000)}
        for name, data in files.items():
            put(server, name, data)
        expected = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
        assert json.loads(server.python(SHAS)) == expected

        made = manage(server, "backup", "--disk", "A1", "--keep", "2")
        assert made.returncode == 0, made.stderr
        sealed = next((server.var / "disks" / "A1" / "backups").iterdir()).read_bytes()
        assert b"small.txt" not in sealed and b"SQLite format" not in sealed  # sealed, not a plain dump

        destroy_database(server, database)
        disk = str(server.var / "disks" / "A1")

        other_key = base64.b64encode(os.urandom(32)).decode()
        refused = manage(
            server, "restore", "--disk-path", disk, "--yes", env={**server.env, "CLOUDSTORAGE_MASTER_KEY": other_key}
        )
        assert refused.returncode != 0
        assert "sealed under master key" in refused.stderr and "restore with the master key" in refused.stderr

        restored = manage(server, "restore", "--disk-path", disk, "--yes")
        assert restored.returncode == 0, restored.stderr
        assert json.loads(server.python(SHAS)) == expected

        # Retention: only the --keep newest stay.
        for _ in range(3):
            assert manage(server, "backup", "--disk", "A1", "--keep", "2").returncode == 0
        assert len(list((server.var / "disks" / "A1" / "backups").iterdir())) == 2
