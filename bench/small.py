"""Small requests under gunicorn (issue 12): requests/s of GET /api/v1/workspaces/ and of a listing
page of 100 with wrk, and 300 sequential 16 KiB raw PUTs over one keep-alive connection.

    .venv/bin/python bench/small.py [--port 8201] [--connections 8] [--seconds 10]

Runs on the embedded default (SQLite, file or SQLite cache) unless DATABASE_URL / REDIS_URL are set.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import instance  # noqa: E402
from bench.load import cpu_seconds  # noqa: E402


def wrk(url: str, token: str, *, connections: int, seconds: int) -> tuple[float, float]:
    """(requests/s, requests) of a wrk run."""
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-H", f"Authorization: Bearer {token}", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise RuntimeError(f"{non2xx.group(1)} failed requests:\n{out}")
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), requests


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8201)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing (apt-get install wrk)")
    database_url = os.environ.get("DATABASE_URL")
    extra = {"REDIS_URL": os.environ["REDIS_URL"]} if os.environ.get("REDIS_URL") else {}
    with instance(
        workers=args.workers, threads=args.threads, database_url=database_url, port=args.port, extra_env=extra
    ) as server:
        auth = {"Authorization": f"Bearer {server.token}"}
        host = server.url.removeprefix("http://")
        conn = http.client.HTTPConnection(host)

        def call(method: str, path: str, body=None, headers=None) -> dict:
            nonlocal conn
            try:
                conn.request(method, path, body=body, headers={**auth, **(headers or {})})
            except OSError:  # gunicorn closes a keep-alive connection idle for a few seconds
                conn.close()
                conn = http.client.HTTPConnection(host)
                conn.request(method, path, body=body, headers={**auth, **(headers or {})})
            response = conn.getresponse()
            data = response.read()
            if response.status >= 400:
                raise RuntimeError(f"{method} {path}: {response.status} {data[:300]!r}")
            return json.loads(data) if data else {}

        folder = call(
            "POST",
            f"/api/v1/nodes/{server.root}/children/",
            json.dumps({"type": "folder", "name": "listing"}),
            {"Content-Type": "application/json"},
        )
        for n in range(100):
            call(
                "POST",
                f"/api/v1/nodes/{folder['id']}/children/",
                json.dumps({"type": "folder", "name": f"child {n:03}"}),
                {"Content-Type": "application/json"},
            )
        wrk(f"{server.url}/api/v1/workspaces/", server.token, connections=args.connections, seconds=2)  # warm
        workers = server.worker_pids()

        def measured(path: str) -> tuple[float, float]:
            """req/s, and the web workers' CPU ms per request (steadier than req/s on a busy machine)."""
            before = cpu_seconds(workers)
            rate, requests = wrk(server.url + path, server.token, connections=args.connections, seconds=args.seconds)
            return rate, (cpu_seconds(workers) - before) / requests * 1000

        workspaces = measured("/api/v1/workspaces/")
        listing = measured(f"/api/v1/nodes/{folder['id']}/children/")
        uploads = call(
            "POST",
            f"/api/v1/nodes/{server.root}/children/",
            json.dumps({"type": "folder", "name": "small"}),
            {"Content-Type": "application/json"},
        )
        started, before = time.perf_counter(), cpu_seconds(workers)
        for n in range(300):
            call(
                "PUT",
                f"/api/v1/nodes/{uploads['id']}/children/f{n:03}.bin",
                os.urandom(16 * 1024),
                {"Content-Type": "application/octet-stream"},
            )
        elapsed = time.perf_counter() - started
        upload_cpu = (cpu_seconds(workers) - before) / 300 * 1000
        conn.close()
    engine = "PostgreSQL" if database_url else "SQLite"
    print(f"engine {engine}, gunicorn {args.workers} workers x {args.threads} threads, wrk {args.connections} conns")
    print(f"GET /api/v1/workspaces/      {workspaces[0]:8.0f} req/s   {workspaces[1]:6.2f} ms worker CPU/request")
    print(f"GET children (page of 100)   {listing[0]:8.0f} req/s   {listing[1]:6.2f} ms worker CPU/request")
    print(
        f"300 x 16 KiB raw PUT         {300 / elapsed:8.1f} files/s {upload_cpu:6.2f} ms worker CPU/request "
        f"({elapsed / 300 * 1000:.1f} ms each)"
    )


if __name__ == "__main__":
    main()
