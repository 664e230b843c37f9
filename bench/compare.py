#!/usr/bin/env python
"""Our data path beside the limit and a peer, in ONE run: the figures and ratios of issue 12's bar.

    .venv/bin/python bench/compare.py [--mib 1024] [--runs 3] [--rss-mib 2048]
                                      [--database-url postgres://...] [--dir PATH]

For the embedded default (SQLite) and, when DATABASE_URL is set or --database-url is given, for
PostgreSQL (a fresh database ``<name>_compare``), both with DEBUG=0 as ``make run`` and production
serve, each run measures on the same N MiB of random bytes, on the same filesystem:

- the limit: read the source once, write two plain copies, fsync both; and for small files, 300
  new 16 KiB files each written as two copies at once, each copy fsync'd with its directory (what
  makes a new file durable; cheaper than our store's write, which also renames into place);
- a peer, ``rclone serve webdav`` over loopback (no fsync): PUT and GET of the bytes, and 300
  sequential 16 KiB PUTs (new file each, one keep-alive connection);
- ours, on a throw-away gunicorn (bench/harness.py, 2 workers x 4 threads by default): raw PUT,
  multipart POST and tus (POST + 16 MiB PATCHes) uploads of the bytes, the download, 300 sequential
  16 KiB raw PUTs (new names, one keep-alive connection), and requests/s with 16 connections (wrk)
  of a listing page of 100 children and of GET /api/v1/workspaces/;
- the web workers' peak RSS (VmHWM) during the uploads and during the download;
- the CPU time per listing request of the web workers and (on PostgreSQL) of the database's
  processes, and the requests/s the machine's cores allow at that cost.

Every upload and every measurement of ours goes to a fresh workspace, so no upload is deduplicated
against an earlier one (deduplication is scoped to the workspace). Downloads are timed while the
client discards the bytes (so hashing on the client cannot be the bottleneck), then downloaded again
and SHA-256'd; every SHA-256 the API returns and every download must equal the source's, or the
bench stops with INTEGRITY FAILURE. The figures are medians over the runs; the ratios are ratios of
those medians. MB = 10^6 bytes.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.api import Client, make_source, rss_now, rss_peak, rss_peak_reset  # noqa: E402
from bench.harness import bench_database, instance  # noqa: E402
from bench.load import cpu_by_pid, cpu_since, processes_named, requests_per_second  # noqa: E402
from bench.store import plain_copy  # noqa: E402
from bench.transfer import get_discard, get_sha256, put_file, put_many, rclone_webdav, tus_upload  # noqa: E402

MB = 10**6
MIB = 1024 * 1024
SMALL_SIZE = 16 * 1024
LISTING_CHILDREN = 100
IDLE_TRIM_WAIT = 1.5  # seconds: gunicorn.conf.py's IDLE_TRIM (1 s) and its trim thread's poll

WORKSPACES = """
import json, sys
from accounts.models import User, Workspace
from accounts.services import workspace_create_team
from files.models import Node
user = User.objects.get(email="bench@example.com")
roots = {}
for name in sys.argv[1:]:
    workspace = workspace_create_team(owner=user, name=name)
    Workspace.objects.filter(pk=workspace.pk).update(plan_gb=100)
    roots[name] = str(Node.objects.get(workspace=workspace, parent__isnull=True).pk)
print(json.dumps(roots))
"""


class IntegrityFailure(Exception):
    """Bytes stored or served differ from the source: the bench must not report a speed for them."""


def check(condition: bool, what: str) -> None:
    if not condition:
        raise IntegrityFailure(what)


def settle() -> None:
    """Write back every dirty page before the next measurement, so none pays for the previous one
    (rclone does not fsync: its gigabyte would otherwise be written back during ours)."""
    os.sync()


# --- the limit and the peer -------------------------------------------------------------------------


def two_copies(source: Path, work: Path) -> float:
    targets = [work / "copy1.bin", work / "copy2.bin"]
    started = time.perf_counter()
    plain_copy(source, targets)
    elapsed = time.perf_counter() - started
    for target in targets:
        target.unlink()
    return elapsed


def durable_new_file(folder: Path, name: str, data: bytes) -> None:
    """A new file that survives a power cut: its bytes and its name fsync'd."""
    fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def two_copies_small(blobs: list[bytes], work: Path) -> float:
    """Files/s of new small files made durable one after another, each as two copies written at
    once (as the store writes a chunk's copies): the floor of a small upload that is acknowledged
    only once two copies are durable, before any request, database commit or encryption."""
    folders = [work / "small-copy1", work / "small-copy2"]
    for folder in folders:
        folder.mkdir()
    with ThreadPoolExecutor(len(folders)) as copies:
        started = time.perf_counter()
        for n, blob in enumerate(blobs):
            list(copies.map(durable_new_file, folders, [f"f{n:04d}"] * len(folders), [blob] * len(folders)))
        elapsed = time.perf_counter() - started
    for folder in folders:
        shutil.rmtree(folder)
    return len(blobs) / elapsed


def bench_rclone(url: str, root: Path, run: int, source: Path, sha: str, blobs: list[bytes], record) -> None:
    # New names in every run: the files of the last run were removed behind rclone's back.
    size = source.stat().st_size
    big = f"/big-{run}.bin"
    settle()
    seconds, status, data = put_file(url, big, source, {})
    if status not in (201, 204):
        raise RuntimeError(f"rclone PUT: {status} {data[:200]!r}")
    record("rclone_put", size / MB / seconds)
    settle()
    seconds, total = get_discard(url, big, {})
    check(total == size, f"rclone GET returned {total} bytes, not {size}")
    record("rclone_get", size / MB / seconds)
    total, digest = get_sha256(url, big, {})
    check(total == size and digest == sha, f"rclone GET: sha256 {digest} != source {sha}")
    names = [f"small-{run}-{n:04d}.bin" for n in range(len(blobs))]
    settle()
    seconds, _ = put_many(url, ["/" + name for name in names], blobs, {})
    record("rclone_small", len(blobs) / seconds)
    for name, blob in zip(names, blobs, strict=True):
        check((root / name).read_bytes() == blob, f"rclone stored {name} wrongly")
    for entry in root.iterdir():
        entry.unlink()
    settle()


# --- ours -------------------------------------------------------------------------------------------


class RssWatch:
    """Peak RSS (VmHWM) over every gunicorn worker between reset() and peak()."""

    def __init__(self, server):
        self.server = server

    def reset(self) -> None:
        # A worker keeps a transfer's freed heap for the next one and hands it back once it has
        # been idle for a second (gunicorn.conf.py): wait for that, so each peak is its own
        # transfer's and not the previous one's leftover (the download's read the tus upload's).
        time.sleep(IDLE_TRIM_WAIT)
        pids = self.server.worker_pids()
        # Where the peak starts from: a worker that has served many requests sits higher.
        self.baseline = max((rss_now(pid) for pid in pids), default=0)
        for pid in pids:
            rss_peak_reset(pid)

    def peak(self) -> int:
        return max((rss_peak(pid) for pid in self.server.worker_pids()), default=0)


def only_child(client: Client, parent: str) -> dict:
    listing = client.json("GET", f"/api/v1/nodes/{parent}/children/", fresh=True)
    check(len(listing["results"]) == 1, f"expected one file in {parent}, found {len(listing['results'])}")
    return listing["results"][0]


def bench_ours(server, roots: dict, run: int, source: Path, sha: str, blobs: list[bytes], args, record) -> None:
    size = source.stat().st_size
    client = Client(server)
    rss = RssWatch(server)
    auth = {"Authorization": f"Bearer {server.token}"}
    upload_peaks = []

    settle()
    rss.reset()
    parent = roots[f"raw-{run}"]
    seconds, status, data = put_file(server.url, f"/api/v1/nodes/{parent}/children/big.bin", source, auth)
    upload_peaks.append(rss.peak())
    print(f"    (web workers' RSS before the uploads: {rss.baseline / MB:.0f} MB)")
    if status != 201:
        raise RuntimeError(f"raw PUT: {status} {data[:300]!r}")
    node = json.loads(data)
    check(node["size"] == size and node["sha256"] == sha, f"raw PUT: API says sha256 {node['sha256']}, source {sha}")
    record("raw_put", size / MB / seconds)

    settle()
    rss.reset()
    parent = roots[f"multipart-{run}"]
    started = time.perf_counter()
    result = client.post_multipart("big.bin", source, parent=parent)
    seconds = time.perf_counter() - started
    upload_peaks.append(rss.peak())
    stored = result["nodes"][0]
    check(stored["size"] == size and stored["sha256"] == sha, f"multipart: API says sha256 {stored['sha256']}")
    record("multipart", size / MB / seconds)

    settle()
    rss.reset()
    parent = roots[f"tus-{run}"]
    seconds = tus_upload(server, parent, "big.bin", source, args.tus_patch_mib * MIB)
    upload_peaks.append(rss.peak())
    stored = only_child(client, parent)
    check(stored["size"] == size and stored["sha256"] == sha, f"tus: API says sha256 {stored['sha256']}")
    record("tus", size / MB / seconds)
    record("rss_up", max(upload_peaks) / MB)

    settle()
    rss.reset()
    seconds, total = get_discard(server.url, f"/api/v1/nodes/{node['id']}/content", auth)
    record("rss_down", rss.peak() / MB)
    check(total == size, f"download returned {total} bytes, not {size}")
    record("download", size / MB / seconds)
    total, digest = client.download(node["id"])
    check(total == size and digest == sha, f"download: sha256 {digest} != source {sha}")

    settle()
    parent = roots[f"small-{run}"]
    paths = [f"/api/v1/nodes/{parent}/children/f{n:04d}.bin" for n in range(len(blobs))]
    seconds, bodies = put_many(server.url, paths, blobs, auth)
    record("small", len(blobs) / seconds)
    for n, (blob, body) in enumerate(zip(blobs, bodies, strict=True)):
        stored = json.loads(body)
        check(stored["sha256"] == hashlib.sha256(blob).hexdigest(), f"16 KiB upload {n}: wrong sha256")

    settle()
    listing = f"/api/v1/nodes/{server.root}/children/"
    load = {"connections": args.connections, "seconds": args.seconds}
    page = client.json("GET", listing, fresh=True)["results"]
    if len(page) != LISTING_CHILDREN:
        raise RuntimeError(f"the listed folder has {len(page)} children on its first page, not {LISTING_CHILDREN}")
    # Where a listing request's CPU goes: the web workers, and the PostgreSQL backends serving the
    # bench's database (on SQLite the database runs inside the workers). wrk's share and
    # PostgreSQL's background writers are left out, so the cap is generous.
    # A backend a web thread opens during the load is found afterwards and counts whole.
    web = server.worker_pids()
    database_url = server.env.get("DATABASE_URL")
    database_name = f" {urlsplit(database_url).path.lstrip('/')} " if database_url else ""

    def backends() -> list[int]:
        return processes_named("postgres", title_contains=database_name) if database_url else []

    before_web, before_db = cpu_by_pid(web), cpu_by_pid(backends())
    rate, requests = requests_per_second(server.url + listing, server.token, **load)
    web_ms = cpu_since(before_web, web) * 1000 / requests
    db_ms = cpu_since(before_db, backends()) * 1000 / requests
    record("listing", rate)
    record("listing_web_ms", web_ms)
    if database_url:
        record("listing_db_ms", db_ms)
    record("listing_cap", (os.cpu_count() or 1) * 1000 / (web_ms + db_ms))
    record("workspaces", requests_per_second(server.url + "/api/v1/workspaces/", server.token, **load)[0])


def warm_up(server, roots: dict, work: Path, args) -> None:
    """A few small transfers down every path first, so no measured request pays a worker's lazy
    imports and first connections (with 2 workers, each path is taken 4 times to reach both)."""
    source = work / "warm.bin"
    sha = make_source(source, 2 * MIB)
    client = Client(server)
    try:
        for n in range(4):
            node = client.put_file(f"raw-{n}.bin", source, parent=roots["warm-up"])
            client.post_multipart(f"multipart-{n}.bin", source, parent=roots["warm-up"])
            tus_upload(server, roots["warm-up"], f"tus-{n}.bin", source, args.tus_patch_mib * MIB)
            total, digest = client.download(node["id"])
            check(total == 2 * MIB and digest == sha and node["sha256"] == sha, "warm-up: wrong sha256")
    finally:
        source.unlink(missing_ok=True)


def rss_only(server, roots: dict, size_mib: int, work: Path, args) -> dict:
    """Peak RSS of every upload kind and of the download, for one big file (--rss-mib)."""
    source = work / "rss.bin"
    sha = make_source(source, size_mib * MIB)
    client = Client(server)
    rss = RssWatch(server)
    auth = {"Authorization": f"Bearer {server.token}"}
    peaks = {}
    try:
        settle()
        rss.reset()
        _, status, data = put_file(server.url, f"/api/v1/nodes/{roots['rss-raw']}/children/big.bin", source, auth)
        peaks["raw PUT"] = rss.peak() / MB
        print(f"    (web workers' RSS before: {rss.baseline / MB:.0f} MB)")
        if status != 201:
            raise RuntimeError(f"RSS raw PUT: {status} {data[:300]!r}")
        node = json.loads(data)
        check(node["sha256"] == sha, f"RSS raw PUT: API says sha256 {node['sha256']}, source {sha}")
        settle()
        rss.reset()
        result = client.post_multipart("big.bin", source, parent=roots["rss-multipart"])
        peaks["multipart"] = rss.peak() / MB
        check(result["nodes"][0]["sha256"] == sha, "RSS multipart: wrong sha256")
        settle()
        rss.reset()
        tus_upload(server, roots["rss-tus"], "big.bin", source, args.tus_patch_mib * MIB)
        peaks["tus"] = rss.peak() / MB
        check(only_child(client, roots["rss-tus"])["sha256"] == sha, "RSS tus: wrong sha256")
        settle()
        rss.reset()
        total, digest = client.download(node["id"])
        peaks["download"] = rss.peak() / MB
        check(total == size_mib * MIB and digest == sha, "RSS download: wrong sha256")
    finally:
        source.unlink(missing_ok=True)
    return peaks


# --- one database -----------------------------------------------------------------------------------


@dataclass
class Section:
    label: str
    values: dict  # figure -> list of per-run values
    rss: dict  # --rss-mib peaks, or {}

    def median(self, key: str) -> float | None:
        got = self.values.get(key)
        return statistics.median(got) if got else None


def run_section(label: str, args, database_url: str | None, work: Path, source: Path, sha: str) -> Section:
    print(f"\n=== {label} ===", flush=True)
    values: dict[str, list[float]] = {}

    def record(key: str, value: float) -> None:
        values.setdefault(key, []).append(value)
        print(f"    {key:<13} {value:10.1f} {UNITS[key]}", flush=True)

    extra_env = {}
    if database_url:
        # PostgreSQL is how production runs: with its own secret key and master key.
        extra_env = {
            "SECRET_KEY": secrets.token_urlsafe(48),
            "CLOUDSTORAGE_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        }
    with instance(
        workers=args.workers,
        threads=args.threads,
        database_url=database_url,
        plan_gb=100,
        extra_env=extra_env,
        tmp_dir=work,
    ) as server:
        names = ["warm-up"]
        names += [f"{kind}-{run}" for run in range(args.runs) for kind in ("raw", "multipart", "tus", "small")]
        if args.rss_mib:
            names += ["rss-raw", "rss-multipart", "rss-tus"]
        roots = json.loads(server.python(WORKSPACES, *names).strip().splitlines()[-1])
        # The listed folder: the personal root with 100 real files (one listing page).
        put_many(
            server.url,
            [f"/api/v1/nodes/{server.root}/children/listed-{n:03d}.txt" for n in range(LISTING_CHILDREN)],
            [os.urandom(1024) for _ in range(LISTING_CHILDREN)],
            {"Authorization": f"Bearer {server.token}"},
        )
        warm_up(server, roots, work, args)
        print(f"  gunicorn {args.workers} workers x {args.threads} threads at {server.url}; var {server.var}")
        with rclone_webdav(work / "rclone", work / "rclone.log") as rclone:
            if rclone is None:
                print("  rclone is MISSING (apt-get install rclone): the rclone columns are skipped")
            for run in range(args.runs):
                print(f"  run {run + 1}/{args.runs}", flush=True)
                blobs = [os.urandom(SMALL_SIZE) for _ in range(args.small)]
                settle()
                record("limit", source.stat().st_size / MB / two_copies(source, work))
                settle()
                record("limit_small", two_copies_small(blobs, work))
                if rclone is not None:
                    bench_rclone(rclone, work / "rclone", run, source, sha, blobs, record)
                bench_ours(server, roots, run, source, sha, blobs, args, record)
        rss = {}
        if args.rss_mib:
            print(f"  peak RSS with a {args.rss_mib} MiB file:", flush=True)
            rss = rss_only(server, roots, args.rss_mib, work, args)
            for kind, peak in rss.items():
                print(f"    {kind:<13} {peak:10.1f} MB")
    return Section(label=label, values=values, rss=rss)


# --- the table --------------------------------------------------------------------------------------

UNITS = {
    "limit": "MB/s",
    "limit_small": "files/s",
    "rclone_put": "MB/s",
    "rclone_get": "MB/s",
    "rclone_small": "files/s",
    "raw_put": "MB/s",
    "multipart": "MB/s",
    "tus": "MB/s",
    "download": "MB/s",
    "small": "files/s",
    "listing": "req/s",
    "listing_web_ms": "ms",
    "listing_db_ms": "ms",
    "listing_cap": "req/s",
    "workspaces": "req/s",
    "rss_up": "MB",
    "rss_down": "MB",
}

FIGURES = [
    ("limit", "limit: two fsync'd plain copies"),
    ("limit_small", "limit: 300 x 16 KiB, two fsync'd copies each"),
    ("rclone_put", "rclone serve webdav: PUT"),
    ("rclone_get", "rclone serve webdav: GET"),
    ("rclone_small", "rclone: 300 x 16 KiB PUTs"),
    ("raw_put", "ours: raw PUT"),
    ("multipart", "ours: multipart POST"),
    ("tus", "ours: tus (POST + PATCHes)"),
    ("download", "ours: download (GET content)"),
    ("small", "ours: 300 x 16 KiB raw PUTs"),
    ("listing", "ours: listing page of 100, 16 conns"),
    ("listing_web_ms", "listing: web workers' CPU per request"),
    ("listing_db_ms", "listing: PostgreSQL's CPU per request"),
    ("workspaces", "ours: GET /workspaces/, 16 conns"),
]

# (label, numerator, denominator or None, comparison, bar[, "info"]). An "info" row is not a bar of
# ours: it holds the limit itself to a bar, and says whether any code could reach that bar here.
RATIOS = [
    ("raw PUT / two copies", "raw_put", "limit", ">=", 0.7),
    ("raw PUT / rclone PUT", "raw_put", "rclone_put", ">=", 1.0),
    ("the limit itself / rclone PUT", "limit", "rclone_put", ">=", 1.0, "info"),
    ("multipart / raw PUT", "multipart", "raw_put", ">=", 0.8),
    ("tus / raw PUT", "tus", "raw_put", ">=", 0.8),
    ("download / rclone GET", "download", "rclone_get", ">=", 0.5),
    ("16 KiB uploads / rclone", "small", "rclone_small", ">=", 0.5),
    ("16 KiB limit itself / rclone", "limit_small", "rclone_small", ">=", 0.5, "info"),
    ("listing req/s", "listing", None, ">=", 1000),
    ("listing req/s its CPU per request allows", "listing_cap", None, ">=", 1000, "info"),
    ("peak RSS, upload (MB)", "rss_up", None, "<", 150),
    ("peak RSS, download (MB)", "rss_down", None, "<", 150),
]


def rss_value(section: Section, key: str) -> float | None:
    """The --rss-mib figure when there is one (the bar's 2 GiB), else the runs' worst."""
    if section.rss:
        if key == "rss_up":
            return max(section.rss[kind] for kind in ("raw PUT", "multipart", "tus"))
        return section.rss["download"]
    got = section.values.get(key)
    return max(got) if got else None


def table_rows(sections: list[Section], args) -> tuple[list[str], list[list[str]]]:
    header = ["figure"] + [s.label for s in sections] + ["bar"]
    rows = []
    for key, label in FIGURES:
        cells = []
        for section in sections:
            value = section.median(key)
            digits = 1 if UNITS[key] == "ms" else 0
            cells.append("n/a" if value is None else f"{value:,.{digits}f} {UNITS[key]}")
        rows.append([label.replace("300 x", f"{args.small} x")] + cells + [""])
    for label, num, den, op, bar, *info in RATIOS:
        cells = []
        for section in sections:
            if num.startswith("rss_"):
                value = rss_value(section, num)
            else:
                value = section.median(num)
                if den is not None:
                    base = section.median(den)
                    value = None if value is None or not base else value / base
            if value is None:
                cells.append("skipped")
                continue
            ok = value >= bar if op == ">=" else value < bar
            text = f"{value:,.0f}" if den is None else f"{value:.2f}x"
            verdict = "pass" if ok else "FAIL"
            if info or (num.startswith("listing") and "PostgreSQL" not in section.label):
                verdict = "info"  # not a bar of ours, or the bar is set on PostgreSQL
            cells.append(f"{text} {verdict}")
        rss_size = f" ({args.rss_mib or args.mib} MiB)" if num.startswith("rss_") else ""
        suffix = " on PostgreSQL" if num.startswith("listing") else ""
        bar_text = f"{op} {bar:,}{'x' if den else ''}{suffix}{rss_size}".replace(">=", "≥")
        rows.append([label] + cells + [bar_text])
    return header, rows


def print_tables(sections: list[Section], args) -> None:
    header, rows = table_rows(sections, args)
    widths = [max(len(row[i]) for row in [header] + rows) for i in range(len(header))]
    print(f"\n=== medians of {args.runs} run(s), {args.mib} MiB of random bytes ===")
    line = "  ".join(cell.ljust(width) for cell, width in zip(header, widths, strict=True))
    print(line)
    print("-" * len(line))
    for n, row in enumerate(rows):
        if n == len(FIGURES):
            print("-" * len(line))
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    notes = []
    if shutil.which("rclone") is None:
        notes.append("rclone was missing: its rows and the ratios that need them are skipped.")
    if shutil.which("wrk") is None:
        notes.append(f"wrk was missing: req/s come from a Python client of {args.connections} processes.")
    for note in notes:
        print("NOTE: " + note)
    print("\nMarkdown:\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    for note in notes:
        print(f"\n_{note}_")


# --- main -------------------------------------------------------------------------------------------


def _interrupt(signum, frame) -> None:  # noqa: ARG001 - a signal handler's signature
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=1024, help="size of the big file in MiB (default 1024)")
    parser.add_argument("--runs", type=int, default=3, help="runs per database; figures are medians (default 3)")
    parser.add_argument("--rss-mib", type=int, default=0, help="also measure peak RSS with a file this big (2048)")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL") or None, help="default $DATABASE_URL")
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL even when a URL is set")
    parser.add_argument("--postgres-only", action="store_true", help="skip the embedded default")
    parser.add_argument("--small", type=int, default=300, help="how many 16 KiB uploads (default 300)")
    parser.add_argument("--tus-patch-mib", type=int, default=16, help="tus PATCH size (default 16)")
    parser.add_argument("--connections", type=int, default=16, help="connections for the req/s figures")
    parser.add_argument("--seconds", type=int, default=10, help="duration of each req/s measurement")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (Procfile: 2)")
    parser.add_argument(
        "--threads", type=int, default=4, help="gunicorn threads per worker (default 4; the Procfile runs 8)"
    )
    parser.add_argument("--dir", default=None, help="where the temporary files go (default: the system's)")
    args = parser.parse_args()
    if args.postgres_only and not args.database_url:
        parser.error("--postgres-only needs --database-url or DATABASE_URL")

    # SIGTERM unwinds like Ctrl-C, so every finally (gunicorn, rclone, temp dirs, database) runs.
    signal.signal(signal.SIGTERM, _interrupt)
    # Also when started in the background, where the shell hands it SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    print("rclone:", shutil.which("rclone") or "MISSING (apt-get install rclone): its columns are skipped")
    print("wrk:   ", shutil.which("wrk") or f"MISSING (apt-get install wrk): a Python client of {args.connections} "
          "processes stands in, and on 2 cores it may be the bottleneck of the req/s figures")  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="cloudstorage-compare-", dir=args.dir))
    try:
        source = work / "source.bin"
        sha = make_source(source, args.mib * MIB)
        print(f"{args.mib} MiB of random bytes in {work}, sha256 {sha[:16]}…")
        sections = []
        if not args.postgres_only:
            sections.append(run_section("SQLite", args, None, work, source, sha))
        if args.database_url and not args.sqlite_only:
            with bench_database(args.database_url, suffix="_compare") as url:
                sections.append(run_section("PostgreSQL", args, url, work, source, sha))
        print_tables(sections, args)
        return 0
    except IntegrityFailure as failure:
        print(
            f"\n!!! INTEGRITY FAILURE: {failure}\n!!! the bench stops: no speed counts for wrong bytes", file=sys.stderr
        )
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: cleaned up", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
