"""An acknowledged write's records are on the disk before the answer leaves, on the embedded default too.

SQLite in WAL mode with ``synchronous=NORMAL`` writes each commit to the WAL file but syncs it only
at checkpoints: a power cut or kernel crash after a 201 could roll back the new file's node and
version rows (the chunk copies were fsync'd, and GC would then collect them as orphans), a 204 for a
share revoke could come undone. With ``synchronous=FULL`` every commit syncs the WAL first.

The live test traces a real gunicorn worker (strace, attached to all its threads) through an upload,
a rename and a delete, and checks that no byte written to the WAL before an answer is still unsynced
when the answer is sent.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from bench.harness import instance

FULL = 2  # PRAGMA synchronous: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "sqlite", reason="the embedded default's SQLite setting")
def test_sqlite_commits_sync_the_wal():
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA synchronous")
        assert cursor.fetchone()[0] >= FULL


def _request(server, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=30)
    headers = {"Authorization": f"Bearer {server.token}"}
    if body is not None and method == "PATCH":
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


def _unsynced_answers(log: str) -> tuple[list[str], int]:
    """The answers sent while WAL bytes written before them were not yet synced, and how many
    answers there were. Lines are in time order across the worker's threads (``strace -f``)."""
    unsynced_since = None
    late, answers = [], 0
    for line in log.splitlines():
        if re.search(r"\bpwrite64\(\d+<[^>]*/db\.sqlite3-wal>", line):
            unsynced_since = unsynced_since or line
        elif re.search(r"\b(fsync|fdatasync)\(\d+<[^>]*/db\.sqlite3-wal>", line):
            unsynced_since = None
        elif re.search(r"\b(sendto|write|sendmsg)\(\d+<(socket|TCP)[^>]*>, \"HTTP/1\.1 2", line):
            answers += 1
            if unsynced_since is not None:
                late.append(f"{line[:120]}  (unsynced since: {unsynced_since[:100]})")
    return late, answers


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace (Debian package strace)")
def test_a_write_is_answered_only_after_its_commit_reached_the_disk(tmp_path):
    with instance(workers=1, threads=2) as server:
        # One request first, so the worker has opened its connection and loaded its views.
        assert _request(server, "GET", "/api/v1/workspaces/")[0] == 200
        (worker,) = server.worker_pids()
        log = tmp_path / "strace.log"
        tracer = subprocess.Popen(
            ["strace", "-f", "-y", "-e", "trace=pwrite64,fsync,fdatasync,sendto,write,sendmsg"]
            + ["-o", str(log), "-p", str(worker)],
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            attached = tracer.stderr.readline()
            # As root (CI, make test) strace may trace any process; not being able to is a failure.
            assert "attached" in attached, f"strace could not attach to the worker: {attached.strip()}"
            time.sleep(0.3)  # the worker's other threads
            status, body = _request(server, "PUT", f"/api/v1/nodes/{server.root}/children/a.bin", os.urandom(16384))
            assert status == 201, body
            node = json.loads(body)["id"]
            status, body = _request(server, "PATCH", f"/api/v1/nodes/{node}/", json.dumps({"name": "b.bin"}).encode())
            assert status == 200, body
            status, body = _request(server, "DELETE", f"/api/v1/nodes/{node}/")
            assert status == 204, body
        finally:
            tracer.terminate()
            tracer.wait(timeout=10)
        late, answers = _unsynced_answers(log.read_text())
        assert answers == 3, log.read_text()[-3000:]
        assert late == [], "\n".join(late)


NEW_FOLDERS = r"""
import sys
from disks.backends import LocalBackend
LocalBackend(sys.argv[1]).put("ws/0f/1e2d/abc", b"chunk")
"""
# Folders made by someone else (another thread, a process that died before syncing them): this
# process cannot know they are durable, so its first write into them syncs them as well.
OLD_FOLDERS = r"""
import os, sys
from disks.backends import LocalBackend
os.makedirs(os.path.join(sys.argv[1], "ws/0f/1e2d"))
LocalBackend(sys.argv[1]).put("ws/0f/1e2d/abc", b"chunk")
LocalBackend(sys.argv[1]).put("ws/0f/1e2d/def", b"chunk")
"""


def _folders_left_unsynced(trace: str, root: Path) -> tuple[list[str], list[str]]:
    """(folders of the disk made or looked at with mkdir, those whose parent was not synced after
    that), in trace order."""
    created, pending = [], {}
    for line in trace.splitlines():
        made = re.search(r"mkdir(?:at)?\((?:AT_FDCWD<[^>]*>, )?\"([^\"]+)\", [^)]*\) = (?:0|-1 EEXIST)", line)
        if made and made.group(1).startswith(f"{root}/") and "/.tmp" not in made.group(1):
            # (temporaries need no durable name)
            created.append(made.group(1))
            pending[made.group(1)] = str(Path(made.group(1)).parent)
        synced = re.search(r"f(?:data)?sync\(\d+<([^>]+)>\) = 0", line)
        if synced:
            pending = {folder: parent for folder, parent in pending.items() if parent != synced.group(1)}
    return created, sorted(pending)


def _trace_folders(tmp_path, code: str) -> tuple[Path, list[str], list[str], str]:
    root = tmp_path / "disk"
    root.mkdir()
    log = tmp_path / "strace.log"
    subprocess.run(
        ["strace", "-f", "-y", "-e", "trace=mkdir,mkdirat,fsync,fdatasync", "-o", str(log)]
        + [sys.executable, "-c", "import django; django.setup()\n" + code, str(root)],
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    trace = log.read_text()
    created, unsynced = _folders_left_unsynced(trace, root)
    return root, created, unsynced, trace


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace (Debian package strace)")
def test_a_copy_in_folders_made_by_someone_else_syncs_them_before_it_is_stored(tmp_path):
    root, created, unsynced, trace = _trace_folders(tmp_path, OLD_FOLDERS)
    assert str(root / "ws/0f/1e2d") in created, trace  # looked at (EEXIST), then synced in its parent
    assert unsynced == [], trace
    # Once per process, not per write: the second copy finds the folder known.
    assert len(re.findall(rf"fsync\(\d+<{re.escape(str(root))}/ws/0f>\)", trace)) == 1, trace


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace (Debian package strace)")
def test_a_copy_in_new_folders_is_stored_only_once_their_names_are_synced_too(tmp_path):
    # A copy's file and its folder's entry were synced, but a folder the write had to create is an
    # entry in its own parent, which POSIX makes durable only through the parent's fsync: without it
    # a power cut could lose a new folder of acknowledged copies (a journal such as ext4's happens to
    # commit it with the file; XFS or btrfs need not).
    root, created, unsynced, trace = _trace_folders(tmp_path, NEW_FOLDERS)
    assert {str(root / "ws"), str(root / "ws/0f"), str(root / "ws/0f/1e2d")} <= set(created), trace
    assert unsynced == [], trace
