"""Finding H: ten anonymous POSTs that declare a 100 KB body and send only part of it held all of
gunicorn's threads (each blocked reading the rest), and /healthz timed out. With a read timeout on
the body, a stalled request is answered 408 and its thread freed; the service keeps answering.

A real gunicorn (gthread, 8 threads, as the embedded default runs it) from bench.harness."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from bench.harness import instance

SLOW_CLIENTS = 10
BODY_TIMEOUT = 2


def _slow_post(host: str, port: int) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=30)
    head = (
        "POST /api/v1/auth/token/ HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        "Content-Type: application/json\r\n"
        "Content-Length: 102400\r\n\r\n"
    )
    sock.sendall(head.encode() + b'{"email": "' + b"a" * 1000)  # ...and then nothing more
    return sock


def _get(url: str, timeout: float) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - local
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_stalled_bodies_do_not_starve_the_server():
    with instance(threads=8, extra_env={"REQUEST_BODY_TIMEOUT": str(BODY_TIMEOUT)}) as server:
        parts = urlsplit(server.url)
        slow = [_slow_post(parts.hostname, parts.port) for _ in range(SLOW_CLIENTS)]
        try:
            time.sleep(0.5)  # every thread is now reading a body that does not come
            started = time.monotonic()
            assert _get(server.url + "/healthz", timeout=BODY_TIMEOUT + 8) == 200
            assert _get(server.url + "/api/v1/workspaces/", timeout=5) == 401
            assert time.monotonic() - started < BODY_TIMEOUT + 4
            for sock in slow:
                answer = sock.recv(200)
                assert answer.startswith(b"HTTP/1.1 408"), answer
        finally:
            for sock in slow:
                sock.close()
        log = (server.var / "gunicorn.log").read_text()
        assert "Internal Server Error" not in log
