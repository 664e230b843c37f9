"""Benchmark: a 2 GiB tus upload in 5 MiB PATCHes against gunicorn on the embedded default.

    .venv/bin/python bench/tus.py [--size-mib 2048] [--patch-mib 5] [--keep]

Sets up a throw-away embedded install (SQLite, two local disks, a user on a 10 GB plan) under a
temporary CLOUDSTORAGE_VAR_DIR, starts gunicorn as the Procfile does, uploads a random file with
raw tus requests, then prints:

- completion latency: how much longer the last PATCH (which completes the upload) took than the
  median PATCH; completing must need no pass over the bytes, so this stays well under a second;
- throughput of the upload beside a plain fsync'd copy of the same file on the same filesystem
  (the upload writes 2 encrypted copies, as CLOUDSTORAGE_REPLICAS=2);
- the peak RSS (VmHWM) of every gunicorn worker (target < 150 MB);
- that the stored file's SHA-256 equals the source's.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urljoin

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024
TUS = {"Tus-Resumable": "1.0.0"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def current_rss_mib(pid: int) -> str:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    anon, file = (int(fields[name].split()[0]) / 1024 for name in ("RssAnon", "RssFile"))
    return f"{anon + file:.0f} ({anon:.0f} anon)"


def make_source(path: Path, size: int) -> str:
    sha = hashlib.sha256()
    block = 8 * MIB
    with open(path, "wb") as handle:
        left = size
        while left:
            data = os.urandom(min(block, left))
            sha.update(data)
            handle.write(data)
            left -= len(data)
    return sha.hexdigest()


def plain_copy_seconds(source: Path, target: Path) -> float:
    started = time.perf_counter()
    with open(source, "rb") as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, 8 * MIB)
        dst.flush()
        os.fsync(dst.fileno())
    elapsed = time.perf_counter() - started
    target.unlink()
    return elapsed


def setup(var: Path, plan_gb: int) -> tuple[str, str]:
    """Migrate, attach two disks, create a verified user on a paid plan; (token, root folder id)."""
    import django

    django.setup()
    from allauth.account.models import EmailAddress
    from django.core.management import call_command

    from accounts.models import User, Workspace
    from accounts.services import token_create
    from disks.services import disk_create_local
    from files.models import Node

    call_command("migrate", verbosity=0)
    user = User.objects.create_user(email="bench@example.com", password="bench-password-12345")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    workspace = Workspace.objects.get(owner=user, kind=Workspace.Kind.PERSONAL)
    workspace.plan_gb = plan_gb
    workspace.save(update_fields=["plan_gb"])
    for n in (1, 2):
        disk_create_local(
            name=f"{workspace.category}{n}",
            path=var / "disks" / f"bench{n}",
            category=workspace.category,
            capacity_bytes=64 * 1024 * MIB,
        )
    root = Node.objects.get(workspace=workspace, parent__isnull=True)
    return token_create(user=user, name="bench").raw, str(root.pk)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--patch-mib", type=int, default=5)
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (Procfile: 4)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary var dir")
    args = parser.parse_args()
    var = Path(tempfile.mkdtemp(prefix="tus-bench-", dir=os.environ.get("BENCH_TMP")))
    try:
        return run(args, var)
    finally:
        if args.keep:
            print(f"kept {var}")
        else:
            shutil.rmtree(var, ignore_errors=True)


def run(args: argparse.Namespace, var: Path) -> int:
    size = args.size_mib * MIB
    patch_size = args.patch_mib * MIB
    env = dict(os.environ, CLOUDSTORAGE_VAR_DIR=str(var), DJANGO_SETTINGS_MODULE="cloudstorage.settings")
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    token, root_id = setup(var, plan_gb=max(10, args.size_mib // 1024 + 2))

    import base64

    import requests

    source = var / "source.bin"
    print(f"writing a {args.size_mib} MiB random source file …", flush=True)
    source_sha = make_source(source, size)
    copy_s = plain_copy_seconds(source, var / "disks" / "plain-copy.bin")

    port = free_port()
    gunicorn = Path(sys.executable).parent / "gunicorn"
    server = subprocess.Popen(
        [
            str(gunicorn),
            "cloudstorage.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--threads",
            str(args.threads),
            "--timeout",
            "3600",
            "--log-level",
            "warning",
        ],  # fmt: skip
        cwd=ROOT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {token}", **TUS})
    try:
        for _ in range(300):
            try:
                if session.options(f"{base}/api/v1/uploads/", timeout=10).status_code == 204:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        metadata = (
            f"filename {base64.b64encode(b'big.bin').decode()},parent {base64.b64encode(root_id.encode()).decode()}"
        )
        created = session.post(
            f"{base}/api/v1/uploads/", headers={"Upload-Length": str(size), "Upload-Metadata": metadata}
        )
        assert created.status_code == 201, created.text
        url = urljoin(base + "/", created.headers["Location"])
        before = {pid: peak_rss_mib(pid) for pid in children(server.pid)}
        print(
            "  peak RSS before the upload (after the first requests): " + ", ".join(f"{v:.0f}" for v in before.values())
        )
        durations = []
        offset = 0
        started = time.perf_counter()
        with open(source, "rb") as handle:
            while offset < size:
                block = handle.read(patch_size)
                t0 = time.perf_counter()
                response = session.patch(
                    url,
                    data=block,
                    headers={"Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"},
                )
                durations.append(time.perf_counter() - t0)
                assert response.status_code == 204, response.text
                offset = int(response.headers["Upload-Offset"])
                if len(durations) % max(1, size // patch_size // 8) == 0:
                    rss = {pid: current_rss_mib(pid) for pid in children(server.pid)}
                    print(f"  {offset / MIB:8.0f} MiB  worker RSS now: " + ", ".join(rss.values()))
        upload_s = time.perf_counter() - started
        workers = children(server.pid)
        peaks = {pid: peak_rss_mib(pid) for pid in workers}
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)

    from files.models import Node

    node = Node.objects.get(parent_id=root_id, name="big.bin")
    median = statistics.median(durations[:-1]) if len(durations) > 1 else 0.0
    print()
    print(f"upload:              {args.size_mib} MiB in {len(durations)} PATCHes of {args.patch_mib} MiB")
    print(f"upload throughput:   {size / MIB / upload_s:8.1f} MiB/s  ({upload_s:.1f} s)")
    print(f"plain copy:          {size / MIB / copy_s:8.1f} MiB/s  ({copy_s:.1f} s, one fsync'd copy)")
    print(f"median PATCH:        {median * 1000:8.1f} ms")
    print(f"last PATCH:          {durations[-1] * 1000:8.1f} ms  (stores the last bytes and completes)")
    print(f"completion latency:  {max(durations[-1] - median, 0) * 1000:8.1f} ms  (last PATCH minus median)")
    for pid, peak in peaks.items():
        print(f"web worker {pid}:   peak RSS {peak:6.1f} MiB")
    print(f"sha256 matches:      {node.sha256 == source_sha} (size {node.size})")
    return 0 if node.sha256 == source_sha and node.size == size else 1


if __name__ == "__main__":
    sys.exit(main())
