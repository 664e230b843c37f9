"""Requests per second of one URL with N concurrent keep-alive connections: wrk when it is installed,
otherwise a Python client of one process per connection (which, on a small machine, may itself be
the bottleneck: callers say so)."""

from __future__ import annotations

import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

from bench.transfer import connect


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes (and their threads), from /proc; a process that
    has ended counts as 0 (see cpu_since for a difference that stays right when one ends)."""
    return sum(cpu_by_pid(pids).values())


def cpu_by_pid(pids: list[int]) -> dict[int, float]:
    """{pid: user + system CPU seconds} of those of these processes that are still running."""
    ticks = os.sysconf("SC_CLK_TCK")
    seconds = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds[pid] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return seconds


def cpu_since(before: dict[int, float], pids: list[int]) -> float:
    """CPU seconds these processes used since ``before`` (a cpu_by_pid); one that started meanwhile
    counts whole, one that ended meanwhile is left out (its time cannot be read any more)."""
    now = cpu_by_pid(pids)
    return sum(value - before.get(pid, 0.0) for pid, value in now.items())


def processes_named(name: str, *, title_contains: str = "") -> list[int]:
    """Pids of this machine's processes whose command is ``name`` and whose title (command line)
    contains ``title_contains``: e.g. the PostgreSQL backends serving one database."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() != name:
                    continue
                if title_contains and title_contains not in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    continue
            except OSError:
                continue
            pids.append(int(entry.name))
    return pids


def requests_per_second(url: str, token: str, *, connections: int = 16, seconds: int = 10) -> tuple[float, int]:
    """(requests/s, requests served). Checks one request answers 200 first; fails on any non-2xx
    answer or connect/timeout error."""
    conn = connect(url)
    conn.request("GET", urlsplit(url).path, headers={"Authorization": f"Bearer {token}"})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    if response.status != 200:
        raise RuntimeError(f"GET {url}: {response.status} {body[:300]!r}")
    exe = shutil.which("wrk")
    if exe is None:
        return python_load(url, token, connections, seconds)
    done = subprocess.run(
        [exe, "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--timeout", "30s"]
        + ["-H", f"Authorization: Bearer {token}", url],
        capture_output=True,
        text=True,
    )
    out = done.stdout
    if done.returncode != 0:
        raise RuntimeError(f"wrk {url} exited with {done.returncode}:\n{out}{done.stderr}")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad:
        raise RuntimeError(f"wrk {url}: {bad.group(1)} responses were not 2xx:\n{out}")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if errors and (int(errors.group(1)) or int(errors.group(4))):
        raise RuntimeError(f"wrk {url}: socket errors:\n{out}")
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), requests


def _load_worker(url: str, token: str, seconds: float, start_at: float, counts) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent cleans up
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler: terminate() must end it
    path = urlsplit(url).path
    conn = connect(url)
    headers = {"Authorization": f"Bearer {token}"}
    while time.time() < start_at:
        time.sleep(0.001)
    done = 0
    deadline = start_at + seconds
    while time.time() < deadline:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {url}: {response.status}")
        done += 1
    counts.put(done)


def python_load(url: str, token: str, connections: int, seconds: float) -> tuple[float, int]:
    """wrk's stand-in: one process per connection, each a keep-alive loop of GETs."""
    counts = multiprocessing.Queue()
    start_at = time.time() + 1.0
    procs = [
        multiprocessing.Process(target=_load_worker, args=(url, token, seconds, start_at, counts))
        for _ in range(connections)
    ]
    try:
        for proc in procs:
            proc.start()
        total = sum(counts.get(timeout=seconds + 60) for _ in procs)
        return total / seconds, total
    finally:
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
                proc.join()
