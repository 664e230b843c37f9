#!/usr/bin/env python
"""WebDAV beside our raw PUT (issue 15's bar: a 1 GiB ``rclone copy`` through /dav/ at >= 0.8x the raw PUT).

    .venv/bin/python bench/webdav.py [--mib 1024] [--runs 3] [--database-url postgres://...]

On a throw-away gunicorn (bench/harness.py, 2 workers x 8 threads as `make run`), each run uploads the
same N MiB of random bytes to a fresh workspace (so nothing deduplicates against an earlier run):
once with our raw ``PUT /api/v1/nodes/{id}/children/{name}``, once with ``rclone copy`` to /dav/
(one file, so rclone streams it in one PUT), then downloads it with ``rclone copy`` and checks the
SHA-256 of both uploads and of the download. Prints the medians and the ratio. MB = 10^6 bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.api import make_source  # noqa: E402
from bench.harness import bench_database, instance  # noqa: E402
from bench.transfer import put_file, read_sha256  # noqa: E402

MB = 10**6
MIB = 1024 * 1024

WORKSPACE = """
import json, sys
from accounts.models import User, Workspace
from accounts.services import workspace_create_team
from files.models import Node
user = User.objects.get(email="bench@example.com")
team = workspace_create_team(owner=user, name=sys.argv[1])
Workspace.objects.filter(pk=team.pk).update(plan_gb=100)
print(json.dumps({"root": str(Node.objects.get(workspace=team, parent__isnull=True).pk)}))
"""


def rclone(server, *args: str) -> float:
    obscured = subprocess.run(["rclone", "obscure", server.token], capture_output=True, text=True, check=True)
    env = {
        **os.environ,
        "RCLONE_CONFIG_DAV_TYPE": "webdav",
        "RCLONE_CONFIG_DAV_URL": server.url + "/dav",
        "RCLONE_CONFIG_DAV_VENDOR": "other",
        "RCLONE_CONFIG_DAV_USER": "bench@example.com",
        "RCLONE_CONFIG_DAV_PASS": obscured.stdout.strip(),
    }
    started = time.perf_counter()
    subprocess.run(["rclone", *args, "--config", "/dev/null", "-q"], env=env, check=True)
    return time.perf_counter() - started


def one_run(server, run: int, source: Path, sha: str, work: Path) -> tuple[float, float, float]:
    size = source.stat().st_size
    raw_root = json.loads(server.python(WORKSPACE, f"raw {run}").strip().splitlines()[-1])["root"]
    seconds, status, body = put_file(
        server.url, f"/api/v1/nodes/{raw_root}/children/data.bin", source, {"Authorization": f"Bearer {server.token}"}
    )
    if status != 201 or json.loads(body)["sha256"] != sha:
        sys.exit(f"INTEGRITY FAILURE: raw PUT answered {status} {body[:300]!r}")
    raw = size / seconds / MB
    name = f"dav {run}"
    server.python(WORKSPACE, name)
    dav = size / rclone(server, "copy", str(source), f"dav:{name}/") / MB
    back = work / f"back{run}"
    down = size / rclone(server, "copy", f"dav:{name}/{source.name}", str(back)) / MB
    with open(back / source.name, "rb") as copy:
        same = read_sha256(copy)[1] == sha
    if not same:
        sys.exit("INTEGRITY FAILURE: the WebDAV download differs from the source")
    (back / source.name).unlink()
    return raw, dav, down


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--dir", default=None, help="where the source and the server's disks live")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        work = Path(tmp)
        source = work / "data.bin"
        sha = make_source(source, args.mib * MIB)
        database = bench_database(args.database_url, "_webdav") if args.database_url else None
        url = database.__enter__() if database else None
        try:
            with instance(workers=2, threads=8, database_url=url, tmp_dir=work, plan_gb=100) as server:
                results = [one_run(server, run, source, sha, work) for run in range(args.runs)]
        finally:
            if database:
                database.__exit__(None, None, None)
    raw, dav, down = (statistics.median(column) for column in zip(*results, strict=True))
    print(f"{args.mib} MiB, median of {args.runs} ({'PostgreSQL' if args.database_url else 'SQLite'}):")
    print(f"  raw PUT            {raw:8.1f} MB/s")
    print(f"  rclone copy → /dav {dav:8.1f} MB/s   ({dav / raw:.2f}x raw PUT)")
    print(f"  rclone copy ← /dav {down:8.1f} MB/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
