"""The fault run of issue 18 against a real gunicorn, Celery worker, probe worker and beat (embedded
default: SQLite, filesystem broker, file cache), each scenario measured and printed as JSON:

1. ``rm -rf`` of a disk while 16 clients download: seconds until the disk is failed (the bar:
   CLOUDSTORAGE_DISK_PROBE_FAILURES x the 60 s probe interval + one interval) and until every chunk
   has 2 good copies again (the bar: one more minute); every byte served is checked.
2. kill -9 of the web workers mid-upload, then one GC run: chunks without a copy, disks whose
   ``used_bytes`` differ from their recorded copies, ``.tmp`` files left, ERROR lines about lost chunks.
   CLOUDSTORAGE_WRITE_GRACE is 20 s here (600 s by default) so the run does not wait ten minutes.
3. a category past CLOUDSTORAGE_CAPACITY_ALERT_PERCENT with a standby registered: seconds until the
   standby is active and first in a new workspace's placement, and the mail in var/mail/.

    .venv/bin/python -m bench.faults [--port 9500] [--files 24] [--size-mb 4]
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

from bench.harness import BIN, ROOT, instance

MB = 1024 * 1024

STATE = """
import json
from django.db.models import Count, Q, Sum
from disks.models import Chunk, Disk, Replica
ok = Q(replicas__state="ok", replicas__disk__status__in=("active", "read_only"))
chunks = Chunk.objects.annotate(good=Count("replicas", filter=ok))
print(json.dumps({
    "disks": {d.name: d.status for d in Disk.objects.all()},
    "chunks": chunks.count(),
    "short": chunks.filter(good__lt=2).count(),
    "copyless": Chunk.objects.filter(~Q(replicas__state="ok")).distinct().count(),
    "used_mismatch": [
        d.name for d in Disk.objects.exclude(status="failed")
        if d.used_bytes != (Replica.objects.filter(disk=d).aggregate(s=Sum("chunk__stored_size"))["s"] or 0)
    ],
}))
"""


def _state(server) -> dict:
    return json.loads(server.python(STATE))


def _upload(server, name: str, data: bytes) -> str:
    request = urllib.request.Request(
        f"{server.url}/api/v1/nodes/{server.root}/children/{name}",
        data=data,
        method="PUT",
        headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/octet-stream"},
    )
    with urllib.request.urlopen(request, timeout=300) as response:  # noqa: S310 - local
        return json.loads(response.read())["id"]


def _downloader(server, files: dict, stop: threading.Event, counts: dict, lock: threading.Lock) -> None:
    rng = random.Random()
    host = server.url.removeprefix("http://")
    while not stop.is_set():
        node, digest = rng.choice(list(files.items()))
        connection = http.client.HTTPConnection(host, timeout=120)
        try:
            connection.request(
                "GET", f"/api/v1/nodes/{node}/content", headers={"Authorization": f"Bearer {server.token}"}
            )
            response = connection.getresponse()
            body = response.read()
            key = "ok" if response.status == 200 and hashlib.sha256(body).hexdigest() == digest else "wrong"
            if response.status >= 500:
                key = f"status_{response.status}"
        except OSError:
            key = "connection_error"
        finally:
            connection.close()
        with lock:
            counts[key] = counts.get(key, 0) + 1


def _celery(server, *args: str, log: str) -> subprocess.Popen:
    out = open(server.var / log, "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [str(BIN / "celery"), "-A", "cloudstorage", *args],
        env=server.env,
        cwd=ROOT,
        stdout=out,
        stderr=subprocess.STDOUT,
    )


def _wait(predicate, *, timeout: float, every: float = 2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    return None


def disk_loss(server, args) -> dict:
    server.python(
        "from django.conf import settings\nfrom disks.services import disk_create_local\n"
        "disk_create_local(name='B3', path=settings.CLOUDSTORAGE_DISKS_DIR / 'B3', category='B', capacity_bytes=64 << 30)"
    )
    rng = random.Random(18)
    files = {}
    for n in range(args.files):
        data = rng.randbytes(args.size_mb * MB)
        files[_upload(server, f"f{n}.bin", data)] = hashlib.sha256(data).hexdigest()
    stop, lock, counts = threading.Event(), threading.Lock(), {}
    clients = [
        threading.Thread(target=_downloader, args=(server, files, stop, counts, lock), daemon=True) for _ in range(16)
    ]
    for client in clients:
        client.start()
    time.sleep(5)
    victim = "B1"
    shutil.rmtree(server.var / "disks" / victim)
    removed = time.monotonic()
    failed = _wait(lambda: _state(server)["disks"][victim] == "failed", timeout=600)
    failed_after = time.monotonic() - removed if failed else None
    whole = _wait(lambda: _state(server)["short"] == 0, timeout=600, every=1.0)
    whole_after = time.monotonic() - removed if whole else None
    stop.set()
    for client in clients:
        client.join(180)
    return {
        "disk_removed": victim,
        "seconds_to_failed": round(failed_after, 1) if failed_after else "not within 600 s",
        "seconds_to_two_copies_again": round(whole_after, 1) if whole_after else "not within 600 s",
        "seconds_two_copies_after_failed": round(whole_after - failed_after, 1) if whole and failed else None,
        "downloads": counts,
        "state": _state(server),
    }


def _stream(server, name: str, sent: list) -> None:
    connection = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=120)
    size = 512 * MB
    connection.putrequest("PUT", f"/api/v1/nodes/{server.root}/children/{name}")
    connection.putheader("Authorization", f"Bearer {server.token}")
    connection.putheader("Content-Type", "application/octet-stream")
    connection.putheader("Content-Length", str(size))
    connection.endheaders()
    try:
        while True:
            connection.send(os.urandom(MB))
            sent.append(MB)
            time.sleep(0.05)
    except OSError:
        pass
    finally:
        connection.close()


def writer_kill(server, worker_log: Path) -> dict:
    sent: list = []
    baseline = _state(server)["chunks"]
    streams = [threading.Thread(target=_stream, args=(server, f"big{n}.bin", sent), daemon=True) for n in range(4)]
    for stream in streams:
        stream.start()
    # Killed once the uploads are recording chunks (copies being written among them), not before.
    _wait(lambda: _state(server)["chunks"] >= baseline + 40, timeout=120, every=0.5)
    for pid in server.worker_pids():
        os.kill(pid, signal.SIGKILL)
    for stream in streams:
        stream.join(60)
    killed = time.monotonic()
    before = _state(server)
    time.sleep(max(0.0, 21 - (time.monotonic() - killed)))  # past CLOUDSTORAGE_WRITE_GRACE (20 s here)
    gc = server.python("from disks.gc import chunks_gc\nprint(chunks_gc())")
    after = _state(server)
    temporaries = [p for p in (server.var / "disks").rglob("*.tmp") if p.is_file()]
    old = [p for p in temporaries if p.stat().st_mtime < time.time() - 3600]
    # The same half-written files an hour later (the sweep grace): the next GC run removes them.
    for path in temporaries:
        os.utime(path, (time.time() - 3700, time.time() - 3700))
    later = server.python("from disks.gc import chunks_gc\nprint(chunks_gc())")
    lost_errors = [line for line in worker_log.read_text().splitlines() if "no good copy left" in line]
    return {
        "mib_sent_before_kill": len(sent),
        "after_kill": {k: before[k] for k in ("chunks", "copyless", "used_mismatch")},
        "gc_run": gc.strip(),
        "after_one_gc_run": {k: after[k] for k in ("chunks", "copyless", "used_mismatch")},
        "tmp_files_left_after_one_gc_run": len(temporaries),
        "tmp_files_older_than_the_grace_after_it": len(old),
        "gc_run_an_hour_later": later.strip(),
        "tmp_files_left_then": sum(1 for p in (server.var / "disks").rglob("*.tmp") if p.is_file()),
        "lost_chunk_error_lines": len(lost_errors),
    }


def standby(server) -> dict:
    _upload(server, "filler.bin", os.urandom(4 * MB))  # the category's disks hold something to be full of
    server.python(
        "from django.conf import settings\nfrom django.db.models import F\n"
        "from disks.models import Disk\nfrom disks.services import disk_create_local\n"
        "disk_create_local(name='B-spare', path=settings.CLOUDSTORAGE_DISKS_DIR / 'B-spare', category='B',"
        " capacity_bytes=64 << 30, status='standby')\n"
        # The category's in-service disks shrunk to 90 % full of what they really hold.
        "Disk.objects.filter(category='B', status='active').update(capacity_bytes=F('used_bytes') * 10 / 9 + 1)"
    )
    start = time.monotonic()
    active = _wait(lambda: _state(server)["disks"]["B-spare"] == "active", timeout=180)
    seconds = time.monotonic() - start if active else None
    placed = server.python(
        "from accounts.models import User, Workspace\nfrom disks.placement import workspace_place\n"
        "user = User.objects.create_user(email='late@example.com', password='a-long-password-1234')\n"
        "workspace = Workspace.objects.get(owner=user, kind='personal')\n"
        "Workspace.objects.filter(pk=workspace.pk).update(plan_gb=10)\nworkspace.refresh_from_db()\n"
        "print(workspace_place(workspace=workspace)[0].name)"
    ).strip()
    mails = [p for p in (server.var / "mail").glob("*") if "B-spare" in p.read_text(errors="replace")]
    return {
        "seconds_to_active": round(seconds, 1) if seconds else "not within 180 s",
        "new_workspace_primary_disk": placed,
        "mails_naming_the_standby": [p.name for p in mails],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9500)
    parser.add_argument("--files", type=int, default=24)
    parser.add_argument("--size-mb", type=int, default=4)
    parser.add_argument("--only", choices=["disk-loss", "writer-kill", "standby"], help="run one scenario")
    args = parser.parse_args()
    env = {
        "CLOUDSTORAGE_CHUNK_AVG": str(256 * 1024),
        "CLOUDSTORAGE_WRITE_GRACE": "20",
        "OPERATOR_EMAILS": "ops@example.com",
        "THROTTLE_ANON": "1000000/min",
    }
    with instance(workers=2, threads=8, port=args.port, extra_env=env, start_timeout=180) as server:
        worker = _celery(server, "worker", "-Q", "celery,probes", "--concurrency", "2", "-n", "w@%h", log="worker.log")
        prober = _celery(server, "worker", "-Q", "probes", "--concurrency", "1", "-n", "probe@%h", log="probe.log")
        beat = _celery(server, "beat", "--loglevel", "INFO", log="beat.log")
        scenarios = {
            "disk-loss": ("disk_loss_under_16_downloads", lambda: disk_loss(server, args)),
            "writer-kill": ("web_workers_killed_mid_upload", lambda: writer_kill(server, server.var / "worker.log")),
            "standby": ("standby_activation", lambda: standby(server)),
        }
        try:
            report = {}
            for name, (title, run) in scenarios.items():
                if args.only in (None, name):
                    report[title] = run()
                    print(json.dumps({title: report[title]}, indent=2), flush=True)
            for log in ("worker.log", "beat.log", "probe.log"):
                shutil.copy(server.var / log, Path("/tmp") / f"faults-{log}")
        finally:
            for process in (beat, prober, worker):
                process.terminate()
            for process in (beat, prober, worker):
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()


if __name__ == "__main__":
    main()
