"""HTTP transfers for the benches, with nothing on the client side that could be the bottleneck:
bodies stream from the file in 1 MiB blocks, downloads are read into one reused buffer, a tus upload
runs on one keep-alive connection; and a throw-away ``rclone serve webdav`` as the peer to compare with."""

from __future__ import annotations

import base64
import hashlib
import http.client
import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from bench.harness import free_port

MIB = 1024 * 1024
BLOCK = MIB


def connect(url: str) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=3600, blocksize=BLOCK)


def put_file(url: str, path: str, source: Path, headers: dict) -> tuple[float, int, bytes]:
    """(seconds, status, body) of a PUT streamed from the file in 1 MiB blocks on a new connection."""
    conn = connect(url)
    try:
        started = time.perf_counter()
        with open(source, "rb") as body:
            conn.request(
                "PUT",
                path,
                body=body,
                headers=headers
                | {"Content-Type": "application/octet-stream", "Content-Length": str(source.stat().st_size)},
            )
            response = conn.getresponse()
            data = response.read()
        return time.perf_counter() - started, response.status, data
    finally:
        conn.close()


def get_discard(url: str, path: str, headers: dict) -> tuple[float, int]:
    """(seconds, bytes) of a GET read into one reused 1 MiB buffer: the client does nothing else."""
    conn = connect(url)
    buffer = memoryview(bytearray(BLOCK))
    try:
        started = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {response.read()[:300]!r}")
        total = 0
        while n := response.readinto(buffer):
            total += n
        return time.perf_counter() - started, total
    finally:
        conn.close()


def get_sha256(url: str, path: str, headers: dict) -> tuple[int, str]:
    conn = connect(url)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {response.read()[:300]!r}")
        return read_sha256(response)
    finally:
        conn.close()


def read_sha256(response) -> tuple[int, str]:
    """(bytes, SHA-256) of a response body, read in BLOCK pieces."""
    digest = hashlib.sha256()
    total = 0
    while block := response.read(BLOCK):
        digest.update(block)
        total += len(block)
    return total, digest.hexdigest()


def put_many(url: str, paths: list[str], blobs: list[bytes], headers: dict) -> tuple[float, list[bytes]]:
    """Sequential PUTs on one keep-alive connection; (seconds, response bodies)."""
    conn = connect(url)
    bodies = []
    try:
        started = time.perf_counter()
        for path, blob in zip(paths, blobs, strict=True):
            conn.request(
                "PUT",
                path,
                body=blob,
                headers=headers | {"Content-Type": "application/octet-stream", "Content-Length": str(len(blob))},
            )
            response = conn.getresponse()
            data = response.read()
            if response.status >= 300:
                raise RuntimeError(f"PUT {path}: {response.status} {data[:300]!r}")
            bodies.append(data)
        return time.perf_counter() - started, bodies
    finally:
        conn.close()


def tus_upload(server, parent: str, name: str, source: Path, patch_size: int) -> float:
    """Seconds for a tus upload: creation, then PATCHes of patch_size on one keep-alive connection."""
    size = source.stat().st_size
    b64 = lambda text: base64.b64encode(text.encode()).decode()  # noqa: E731
    headers = {"Authorization": f"Bearer {server.token}", "Tus-Resumable": "1.0.0"}
    conn = connect(server.url)
    try:
        started = time.perf_counter()
        conn.request(
            "POST",
            "/api/v1/uploads/",
            headers=headers
            | {
                "Upload-Length": str(size),
                "Upload-Metadata": f"filename {b64(name)},parent {b64(parent)}",
                "Content-Length": "0",
            },
        )
        response = conn.getresponse()
        data = response.read()
        if response.status != 201:
            raise RuntimeError(f"tus POST: {response.status} {data[:300]!r}")
        location = urlsplit(response.headers["Location"]).path
        offset = 0
        with open(source, "rb") as src:
            while offset < size:
                block = src.read(patch_size)
                conn.request(
                    "PATCH",
                    location,
                    body=block,
                    headers=headers
                    | {
                        "Upload-Offset": str(offset),
                        "Content-Type": "application/offset+octet-stream",
                        "Content-Length": str(len(block)),
                    },
                )
                response = conn.getresponse()
                data = response.read()
                if response.status != 204:
                    raise RuntimeError(f"tus PATCH at {offset}: {response.status} {data[:300]!r}")
                offset = int(response.headers["Upload-Offset"])
        return time.perf_counter() - started
    finally:
        conn.close()


@contextmanager
def rclone_webdav(root: Path, log: Path):
    """``rclone serve webdav root`` on a free loopback port; yields its URL, or None without rclone."""
    exe = shutil.which("rclone")
    if exe is None:
        yield None
        return
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    with open(log, "wb") as log_file:
        proc = subprocess.Popen(
            [exe, "serve", "webdav", str(root), "--addr", f"127.0.0.1:{port}", "--config", "/dev/null"],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    conn = connect(url)
                    conn.request("OPTIONS", "/")
                    conn.getresponse().read()
                    conn.close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("rclone serve webdav did not start: " + log.read_text()[-2000:]) from None
                    time.sleep(0.1)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
