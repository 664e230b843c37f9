"""Benchmark of the files API under gunicorn, on a throw-away instance (bench/harness.py).

    .venv/bin/python bench/api.py [--size-mb 1024] [--rss-size-mb 2048] [--listing 100000]

Prints, for the embedded default (SQLite in a temporary var dir) and, when DATABASE_URL is set, for
PostgreSQL too (a fresh database ``<name>_bench`` is created next to it and dropped after):

- upload (raw PUT and multipart) and download MB/s of a 1 GiB file through the HTTP API, beside a
  plain copy of the same bytes on the same disk in the same run;
- the web worker's peak RSS during a 2 GiB upload and during its download (target < 150 MB);
- p50/p95 of one page (100 items) of the listing of a folder of 100,000 files, by name, size and
  time, first pages and deep cursor pages (target p95 < 200 ms).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import bench_database, instance  # noqa: E402

MB = 1024 * 1024
BLOCK = MB


def make_source(path: Path, size: int) -> str:
    """A file of random bytes (incompressible, no duplicate chunks); returns its SHA-256."""
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        written = 0
        while written < size:
            block = os.urandom(min(MB, size - written))
            out.write(block)
            digest.update(block)
            written += len(block)
        # On disk before anything is timed: its writeback must not compete with the server's fsyncs.
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest()


def plain_copy(source: Path, target: Path) -> float:
    """Seconds to copy the file block by block and fsync it (what a durable store must at least do)."""
    started = time.perf_counter()
    with open(source, "rb") as src, open(target, "wb") as dst:
        while block := src.read(BLOCK):
            dst.write(block)
        dst.flush()
        os.fsync(dst.fileno())
    elapsed = time.perf_counter() - started
    target.unlink()
    return elapsed


class Client:
    def __init__(self, server):
        self.server = server
        parts = urlsplit(server.url)
        self.host, self.port = parts.hostname, parts.port
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=3600, blocksize=BLOCK)
        self.auth = {"Authorization": f"Bearer {server.token}"}

    def request(self, method: str, path: str, body=None, headers: dict | None = None, fresh: bool = False):
        if fresh:
            # A new connection: gunicorn closes idle keep-alive connections after a few seconds.
            self.conn.close()
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=3600, blocksize=BLOCK)
        self.conn.request(method, path, body=body, headers=self.auth | (headers or {}))
        return self.conn.getresponse()

    def json(self, method: str, path: str, body=None, headers: dict | None = None, fresh: bool = False):
        response = self.request(method, path, body, headers, fresh=fresh)
        data = response.read()
        if response.status >= 400:
            raise RuntimeError(f"{method} {path}: {response.status} {data[:300]!r}")
        return json.loads(data) if data else None

    def put_file(self, name: str, source: Path, parent: str | None = None) -> dict:
        size = source.stat().st_size
        with open(source, "rb") as body:
            return self.json(
                "PUT",
                f"/api/v1/nodes/{parent or self.server.root}/children/{name}",
                body,
                {"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                fresh=True,
            )

    def post_multipart(self, name: str, source: Path, parent: str | None = None) -> dict:
        boundary = "----cloudstorage-bench-3f9a"
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        size = len(head) + source.stat().st_size + len(tail)

        def body():
            yield head
            with open(source, "rb") as src:
                while block := src.read(BLOCK):
                    yield block
            yield tail

        return self.json(
            "POST",
            f"/api/v1/nodes/{parent or self.server.root}/children/",
            body(),
            {"Content-Type": f"multipart/form-data; boundary={boundary}", "Content-Length": str(size)},
            fresh=True,
        )

    def download(self, node_id: str) -> tuple[int, str]:
        response = self.request("GET", f"/api/v1/nodes/{node_id}/content", fresh=True)
        if response.status != 200:
            raise RuntimeError(f"download: {response.status} {response.read()[:300]!r}")
        from bench.transfer import read_sha256

        return read_sha256(response)


def rss_peak_reset(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM (Linux >= 4.0)


def rss_peak(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def rss_now(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


BULK = """
import sys, uuid
from django.utils import timezone
from datetime import timedelta
from accounts.models import Workspace
from files.models import Node
from files.folders import folder_create
from accounts.models import User
workspace = Workspace.objects.get(pk=sys.argv[1])
root = Node.objects.get(workspace=workspace, parent__isnull=True)
user = User.objects.get(email="bench@example.com")
folder = folder_create(user=user, parent=root, name="big folder")
count = int(sys.argv[2])
now = timezone.now()
batch = []
for n in range(count):
    name = f"file-{n:07d}-{uuid.uuid4().hex[:6]}.txt"
    batch.append(Node(workspace=workspace, parent=folder, kind="file", name=name, name_key=name.casefold(),
                      size=(n * 7919) % 1_000_003, mime_type="text/plain", version=1,
                      created_at=now, modified_at=now - timedelta(seconds=(n * 104729) % 9_999_991)))
    if len(batch) == 5000:
        Node.objects.bulk_create(batch)
        batch = []
Node.objects.bulk_create(batch)
print(folder.pk)
"""


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def bench_listing(server, count: int, pages: int) -> list[tuple[str, float, float, int]]:
    started = time.perf_counter()
    folder = server.python(BULK, server.workspace, str(count)).strip().splitlines()[-1]
    print(f"  created {count} rows with bulk_create in {time.perf_counter() - started:.1f} s")
    client = Client(server)
    results = []
    for ordering in ("name", "-name", "size", "-modified"):
        timings = []
        path = f"/api/v1/nodes/{folder}/children/?ordering={ordering}&page_size=100"
        first = True
        for _ in range(pages):
            began = time.perf_counter()
            body = client.json("GET", path)
            timings.append((time.perf_counter() - began) * 1000)
            assert len(body["results"]) == 100, len(body["results"])
            if first:
                first = False
            # Walk forward through the cursor (deeper and deeper pages), restarting at the end.
            nxt = body["next"]
            if nxt:
                parts = urlsplit(nxt)
                path = parts.path + "?" + parts.query
        results.append((ordering, percentile(timings, 50), percentile(timings, 95), len(timings)))
    return results


def run(label: str, args, database_url: str | None) -> None:
    print(f"\n=== {label} ===")
    with tempfile.TemporaryDirectory(prefix="cloudstorage-src-") as tmp:
        work = Path(tmp)
        with instance(workers=1, threads=4, database_url=database_url, plan_gb=100) as server:
            workers = server.worker_pids()
            pid = workers[0]
            client = Client(server)
            if args.size_mb:
                size = args.size_mb * MB
                source = work / "source.bin"
                sha = make_source(source, size)
                copy_s = plain_copy(source, work / "copy.bin")
                print(f"  plain copy (read + write + fsync, same disk): {size / MB / copy_s:8.1f} MB/s")
                started = time.perf_counter()
                node = client.put_file("one-gib.bin", source)
                put_s = time.perf_counter() - started
                assert node["size"] == size and node["sha256"] == sha
                print(f"  upload, raw PUT:                              {size / MB / put_s:8.1f} MB/s")
                started = time.perf_counter()
                again = client.put_file("one-gib-again.bin", source)
                again_s = time.perf_counter() - started
                assert again["sha256"] == sha
                print(f"  upload, raw PUT of the same bytes again (dedup): {size / MB / again_s:5.1f} MB/s")
                other = work / "other.bin"
                make_source(other, size)
                started = time.perf_counter()
                result = client.post_multipart("one-gib-multipart.bin", other)
                post_s = time.perf_counter() - started
                assert result["nodes"][0]["size"] == size
                other.unlink()
                print(f"  upload, multipart POST (other bytes):         {size / MB / post_s:8.1f} MB/s")
                started = time.perf_counter()
                total, digest = client.download(node["id"])
                get_s = time.perf_counter() - started
                assert total == size and digest == sha
                print(f"  download, GET content:                        {size / MB / get_s:8.1f} MB/s")
                source.unlink()
            if args.rss_size_mb:
                size = args.rss_size_mb * MB
                source = work / "rss.bin"
                sha = make_source(source, size)
                print(f"  web worker RSS before: {rss_now(pid) / MB:.1f} MB")
                rss_peak_reset(pid)
                node = client.put_file("two-gib.bin", source)
                up_peak = rss_peak(pid)
                rss_peak_reset(pid)
                total, digest = client.download(node["id"])
                down_peak = rss_peak(pid)
                assert total == size and digest == sha
                source.unlink()
                rss_peak_reset(pid)
                result = client.post_multipart("two-gib-multipart.bin", source_again(work, size))
                multi_peak = rss_peak(pid)
                assert result["nodes"][0]["size"] == size
                print(
                    f"  web worker peak RSS, {args.rss_size_mb} MiB raw PUT upload:   {up_peak / MB:7.1f} MB (target < 150)"
                )
                print(
                    f"  web worker peak RSS, {args.rss_size_mb} MiB multipart upload: {multi_peak / MB:7.1f} MB (target < 150)"
                )
                print(
                    f"  web worker peak RSS, {args.rss_size_mb} MiB download:         {down_peak / MB:7.1f} MB (target < 150)"
                )
            if args.listing:
                print(f"  listing a folder of {args.listing} files, {args.pages} pages of 100 per ordering:")
                for ordering, p50, p95, n in bench_listing(server, args.listing, args.pages):
                    print(f"    ordering={ordering:<10} p50 {p50:6.1f} ms   p95 {p95:6.1f} ms   ({n} pages)")


def source_again(work: Path, size: int) -> Path:
    path = work / "rss2.bin"
    make_source(path, size)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1024, help="throughput file size (0 to skip)")
    parser.add_argument("--rss-size-mb", type=int, default=2048, help="RSS file size (0 to skip)")
    parser.add_argument("--listing", type=int, default=100_000, help="files in the listed folder (0 to skip)")
    parser.add_argument("--pages", type=int, default=200, help="pages timed per ordering")
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    run("embedded default: SQLite", args, None)
    database_url = os.environ.get("DATABASE_URL")
    if database_url and not args.sqlite_only:
        with bench_database(database_url) as url:
            run("PostgreSQL", args, url)


if __name__ == "__main__":
    main()
