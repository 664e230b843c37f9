"""WebDAV GET served a user's HTML or SVG file inline as a page of the site's own origin.

/dav/ is handed to WsgiDAV by cloudstorage/wsgi.py before Django's middleware, so it sent the file's
own type (text/html) with no Content-Disposition, no sandbox policy and no nosniff. A browser follows
a cross-site link to https://attacker%40x:TOKEN@drive/dav/Attacker/evil.html (the attacker's own
Basic credentials in the URL's userinfo) and ran the attacker's script in the drive's origin with
the victim's session cookie (found by audit 2, checked with headless Chromium).
"""

from __future__ import annotations

import base64
import io
from urllib.parse import quote

import pytest

from accounts.services import token_create
from tests.files.sharing_helpers import client_for, root_of, upload

HTML = b"<!doctype html><script>fetch('/app/tokens/', {method: 'POST'})</script>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script></svg>'


@pytest.fixture
def dav(monkeypatch, owner):
    """One request through the dispatcher cloudstorage/wsgi.py mounts, as the owner over Basic auth."""
    from files.dav import app as dav_app

    # The test's transaction must survive the dispatcher's per-request connection hygiene.
    monkeypatch.setattr(dav_app, "close_old_connections", lambda: None)
    dispatcher = dav_app.DavDispatcher(django_app=None)
    raw = token_create(user=owner, name="dav").raw
    auth = "Basic " + base64.b64encode(f"{owner.email}:{raw}".encode()).decode()

    def call(method: str, path: str, **headers) -> tuple[int, dict, bytes]:
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "SCRIPT_NAME": "",
            "QUERY_STRING": "",
            "SERVER_NAME": "testserver",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "testserver",
            "HTTP_AUTHORIZATION": auth,
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.errors": io.StringIO(),
            "wsgi.version": (1, 0),
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            **{"HTTP_" + key.upper(): value for key, value in headers.items()},
        }
        captured = {}

        def start_response(status, response_headers, exc_info=None):
            captured["status"] = int(status.split()[0])
            captured["headers"] = {key.lower(): value for key, value in response_headers}

        body = b"".join(dispatcher(environ, start_response))
        return captured["status"], captured["headers"], body

    return call


@pytest.mark.parametrize(("name", "data"), [("evil.html", HTML), ("evil.svg", SVG)], ids=["html", "svg"])
def test_dav_get_of_an_active_file_is_a_sandboxed_attachment(owner, owner_workspace, dav, name, data):
    upload(owner, root_of(owner_workspace), name, data)
    api_download = client_for(owner).get(f"/api/v1/nodes/{root_of(owner_workspace).children.get().pk}/content")

    for method in ("GET", "HEAD"):
        status, headers, body = dav(method, f"/dav/{quote(owner_workspace.name)}/{name}")

        assert status == 200 and body == (data if method == "GET" else b""), (method, status, body[:80])
        assert headers["content-disposition"].startswith(f'attachment; filename="{name}"'), (method, headers)
        assert headers["content-security-policy"] == api_download["Content-Security-Policy"], (method, headers)
        assert headers["x-content-type-options"] == "nosniff", (method, headers)


def test_dav_range_get_and_propfind_keep_working_with_the_headers(owner, owner_workspace, dav):
    upload(owner, root_of(owner_workspace), "evil.html", HTML)
    path = f"/dav/{quote(owner_workspace.name)}/evil.html"

    status, headers, body = dav("GET", path, range="bytes=0-8")
    assert status == 206 and body == HTML[:9] and headers["content-disposition"].startswith("attachment")

    # PROPFIND still reports the file's real type: clients keep it, browsers never render it.
    status, headers, body = dav("PROPFIND", path, depth="0")
    assert status == 207 and b"text/html" in body
    assert headers["x-content-type-options"] == "nosniff" and headers["content-security-policy"].startswith("sandbox")
