"""The WebDAV WSGI app called in process: one request's environ and answer (the tests that need real
clients drive a live server instead: tests/files/test_webdav.py)."""

from __future__ import annotations

import io


def dav_request(app, auth: str, method: str, path: str, body: bytes = b"", *, script_name: str = "", **extra):
    """``(status code, headers, body)`` of ``method path`` sent to ``app`` with Basic ``auth``
    (base64 of "login:token"); ``extra`` adds or replaces environ keys (HTTP_DEPTH=...)."""
    environ = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "testserver",
        "HTTP_AUTHORIZATION": f"Basic {auth}",
        "CONTENT_LENGTH": str(len(body)),
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        **extra,
    }
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["status"], seen["headers"] = status, dict(headers)

    out = b"".join(app(environ, start_response))
    return int(seen["status"].split()[0]), seen["headers"], out
