"""A writer process killed mid-upload (kill -9 of a real gunicorn worker while it streams a body
into the chunk store) leaves no visible file, and everything it left behind — the pending
manifest, its chunks, copies recorded as being written, reserved disk bytes, half-written
temporaries — is collected by GC.

A real gunicorn on a file SQLite database in a temporary var dir, as the embedded run mode.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time
from pathlib import Path

from bench.harness import instance
from disks.backends import MARKER

MB = 1024 * 1024

STATE = """
import json
from accounts.models import Workspace
from disks.models import Chunk, Disk, Manifest, Replica
from files.models import FileVersion, Node
print(json.dumps({
    "files": Node.objects.filter(kind="file").count(),
    "versions": FileVersion.objects.count(),
    "pending": Manifest.objects.filter(state="pending").count(),
    "chunks": Chunk.objects.count(),
    "replicas": {state: Replica.objects.filter(state=state).count() for state in ("ok", "new", "bad")},
    "disk_used": sum(Disk.objects.values_list("used_bytes", flat=True)),
}))
"""

GC = """
from datetime import timedelta
from disks.gc import chunks_gc
zero = timedelta(0)
print(chunks_gc(grace=zero, pending_grace=zero, temp_grace=zero))
"""


def _objects(var: Path) -> list[Path]:
    """Every file on every disk but the probe objects of the health check."""
    return [
        p
        for p in (var / "disks").rglob("*")
        if p.is_file() and ".probe" not in p.parts and not p.name.startswith(MARKER)
    ]


def _stream_until_killed(server, size: int, sent: list[int]) -> None:
    connection = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=120)
    connection.putrequest("PUT", f"/api/v1/nodes/{server.root}/children/big.bin")
    connection.putheader("Authorization", f"Bearer {server.token}")
    connection.putheader("Content-Type", "application/octet-stream")
    connection.putheader("Content-Length", str(size))
    connection.endheaders()
    try:
        while sent[0] < size:
            # Fresh bytes each time (repeated ones would deduplicate), at ~20 MB/s.
            connection.send(os.urandom(MB))
            sent[0] += MB
            time.sleep(0.05)
        connection.getresponse().read()
    except OSError:
        pass  # the worker died under us: that is the point
    finally:
        connection.close()


def test_a_writer_killed_mid_upload_leaves_nothing_visible_and_gc_collects_the_rest():
    # Small chunks, so many batches are recorded and written before the kill.
    with instance(workers=1, threads=4, extra_env={"CLOUDSTORAGE_CHUNK_AVG": str(256 * 1024)}) as server:
        size = 256 * MB
        sent = [0]
        client = threading.Thread(target=_stream_until_killed, args=(server, size, sent), daemon=True)
        client.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = json.loads(server.python(STATE))
            if state["replicas"]["ok"] >= 8 and state["chunks"] >= 8:
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"the upload never got going: {state}")
        (worker,) = server.worker_pids()
        os.kill(worker, signal.SIGKILL)
        client.join(timeout=60)

        # Mid-upload: bytes on the disks, chunks and copies recorded, and nothing visible.
        assert sent[0] < size
        after_kill = json.loads(server.python(STATE))
        assert after_kill["files"] == 0 and after_kill["versions"] == 0
        assert after_kill["pending"] == 1 and after_kill["chunks"] > 0 and after_kill["disk_used"] > 0
        assert _objects(server.var)

        # The first run releases the abandoned upload, the next collects what it referenced.
        released = server.python(GC)
        assert "'abandoned_uploads': 1" in released, released
        server.python(GC)

        collected = json.loads(server.python(STATE))
        assert collected == {
            "files": 0,
            "versions": 0,
            "pending": 0,
            "chunks": 0,
            "replicas": {"ok": 0, "new": 0, "bad": 0},
            "disk_used": 0,
        }
        assert _objects(server.var) == []
