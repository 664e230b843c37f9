"""Over real HTTP: concurrent uploads never overshoot the quota and leave the usage equal to what
is stored; a chunked upload (no Content-Length) streams too.

A real gunicorn (threaded workers) on a file SQLite database in a temporary var dir, exactly as the
embedded run mode: an in-memory test database cannot take concurrent writers from several threads.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import threading
import urllib.error
import urllib.request

import pytest

from bench.harness import instance

SIZE = 300_000
MB = 1024 * 1024


def _request(server, method: str, path: str, body: bytes, content_type: str) -> int:
    request = urllib.request.Request(  # noqa: S310 - a local test server
        server.url + path,
        data=body,
        method=method,
        headers={"Authorization": f"Bearer {server.token}", "Content-Type": content_type},
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        error.read()
        return error.code


def _multipart(name: str, data: bytes) -> tuple[bytes, str]:
    boundary = "----bench-boundary-7d1f"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


STATE = """
import json, sys
from django.db.models import Sum
from accounts.models import Workspace
from files.models import FileVersion, Node
workspace = Workspace.objects.get(pk=sys.argv[1])
stored = FileVersion.objects.filter(workspace=workspace)
print(json.dumps({"used": workspace.used_bytes, "quota": workspace.quota_bytes, "versions": stored.count(),
                  "bytes": stored.aggregate(total=Sum("size"))["total"] or 0,
                  "files": Node.objects.filter(workspace=workspace, kind="file").count()}))
"""

PREFILL = """
import sys
from accounts.models import Workspace
workspace = Workspace.objects.get(pk=sys.argv[1])
Workspace.objects.filter(pk=workspace.pk).update(used_bytes=workspace.quota_bytes - int(sys.argv[2]))
"""


@pytest.mark.django_db
def test_twenty_concurrent_uploads_into_room_for_ten():
    with instance(workers=2, threads=10, plan_gb=1, disk_capacity=512 * MB) as server:
        server.python(PREFILL, server.workspace, str(10 * SIZE))
        statuses: list[int] = []
        barrier = threading.Barrier(20)

        def one(n: int) -> None:
            data = bytes([n]) * SIZE  # distinct contents: deduplication cannot make room
            barrier.wait()
            if n % 2:
                status = _request(
                    server, "PUT", f"/api/v1/nodes/{server.root}/children/p{n}.bin", data, "application/octet-stream"
                )
            else:
                body, content_type = _multipart(f"m{n}.bin", data)
                status = _request(server, "POST", f"/api/v1/nodes/{server.root}/children/", body, content_type)
            statuses.append(status)

        threads = [threading.Thread(target=one, args=(n,)) for n in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        state = json.loads(server.python(STATE, server.workspace))
        # No reservation of the burst leaked: exactly the space left is still usable, to the byte.
        free = state["quota"] - state["used"]
        filled = free == 0 or _request(
            server, "PUT", f"/api/v1/nodes/{server.root}/children/rest.bin", b"r" * free, "application/octet-stream"
        )
        one_more = _request(server, "PUT", f"/api/v1/nodes/{server.root}/children/one.bin", b"1", "text/plain")
        final = json.loads(server.python(STATE, server.workspace))

    assert len(statuses) == 20 and set(statuses) <= {201, 413}, statuses
    assert state["versions"] == state["files"] == statuses.count(201)
    assert statuses.count(413) >= 10  # room for ten: at most ten stored
    assert state["used"] - (state["quota"] - 10 * SIZE) == state["bytes"] == state["versions"] * SIZE
    assert filled is True or filled == 201
    assert one_more == 413
    assert final["used"] == final["quota"]


@pytest.mark.django_db
def test_chunked_put_without_content_length_is_stored_whole():
    data = os.urandom(3 * MB + 17)
    with instance(workers=1, threads=2, plan_gb=1, disk_capacity=512 * MB) as server:
        host, port = server.url.split("//")[1].split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=60)

        def body():
            for start in range(0, len(data), 500_000):
                yield data[start : start + 500_000]

        conn.request(
            "PUT",
            f"/api/v1/nodes/{server.root}/children/chunked.bin",
            body=body(),
            headers={"Authorization": f"Bearer {server.token}", "Transfer-Encoding": "chunked"},
            encode_chunked=True,
        )
        response = conn.getresponse()
        node = json.loads(response.read())
        assert response.status == 201, node
        assert node["size"] == len(data) and node["sha256"] == hashlib.sha256(data).hexdigest()
        conn.request("GET", f"/api/v1/nodes/{node['id']}/content", headers={"Authorization": f"Bearer {server.token}"})
        download = conn.getresponse()
        assert download.status == 200 and download.read() == data
        state = json.loads(server.python(STATE, server.workspace))
    assert state["used"] == len(data)
