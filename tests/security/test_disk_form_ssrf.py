"""Finding I: the admin's disk form probed whatever it was given. An S3 endpoint on any address
was contacted and the remote answer shown (a port scanner into the operator's network), and a local
disk could be pointed at any folder the web process may write to."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import Client

from disks.locations import s3_endpoint_check
from disks.models import Disk
from tests.factories import UserFactory

ADD = "/admin/disks/disk/add/"
BODY_MARKER = "INTERNAL-ONLY-7f3a"


@pytest.fixture
def internal_service():
    """A plain HTTP service on loopback, standing in for something on the operator's network; it
    counts the requests it gets and answers every one with a body that must never be shown."""
    hits = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self):
            hits.append(self.command)
            body = f"<Error><Code>{BODY_MARKER}</Code><Message>{BODY_MARKER}</Message></Error>".encode()
            self.send_response(403)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = _answer

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()


@pytest.fixture
def admin_client(db) -> Client:
    client = Client()
    client.force_login(UserFactory(email="operator@example.com", is_staff=True, is_superuser=True))
    return client


def _form(**overrides) -> dict:
    form = {
        "name": "probe-me",
        "category": "A",
        "capacity_gb": "0.01",
        "backend": "s3",
        "path": "",
        "s3_endpoint_url": "",
        "s3_bucket": "bucket",
        "s3_prefix": "",
        "s3_region": "us-east-1",
        "s3_access_key": "k",
        "s3_secret_key": "s",
    }
    return {**form, **overrides}


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_loopback_endpoint_is_refused_without_a_request(admin_client, internal_service, host):
    url, hits = internal_service
    response = admin_client.post(ADD, _form(s3_endpoint_url=url.replace("127.0.0.1", host)))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "s3_endpoint_url" in errors
    assert hits == []  # nothing was sent
    assert not Disk.objects.filter(name="probe-me").exists()


def test_allowed_endpoint_is_probed_but_its_answer_is_not_echoed(admin_client, internal_service, settings):
    url, hits = internal_service
    settings.CLOUDSTORAGE_S3_ENDPOINT_ALLOW = [url.removeprefix("http://")]
    response = admin_client.post(ADD, _form(s3_endpoint_url=url))
    assert response.status_code == 200 and hits  # the operator allowed it: it was probed
    page = response.content.decode()
    assert "not reachable or not writable" in page
    assert BODY_MARKER not in page and "403" not in page.split("errorlist", 1)[1][:500]
    assert not Disk.objects.filter(name="probe-me").exists()


@pytest.mark.parametrize(
    ("url", "addresses", "ok"),
    [
        ("https://s3.example.test", ["93.184.216.34"], True),
        ("http://s3.example.test", ["93.184.216.34"], False),  # public but plain http
        ("https://metadata.example.test", ["169.254.169.254"], False),  # link-local (cloud metadata)
        ("https://intranet.example.test", ["10.1.2.3"], False),
        ("https://mixed.example.test", ["93.184.216.34", "192.168.1.10"], False),
        ("https://v6.example.test", ["::1"], False),
        ("https://mapped.example.test", ["::ffff:127.0.0.1"], False),
        ("https://user:pw@s3.example.test", ["93.184.216.34"], False),
        ("", [], True),  # AWS's default endpoint
    ],
)
def test_endpoint_needs_https_and_public_addresses(monkeypatch, settings, url, addresses, ok):
    settings.CLOUDSTORAGE_S3_ENDPOINT_ALLOW = []

    def resolve(host, port, *args, **kwargs):
        family = socket.AF_INET6
        return [(family if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    assert (s3_endpoint_check(url) is None) is ok


def test_allow_list_patterns_match_host_and_port(settings):
    settings.CLOUDSTORAGE_S3_ENDPOINT_ALLOW = ["minio.internal:9000", "*.ceph.lan"]
    assert s3_endpoint_check("http://minio.internal:9000") is None
    assert s3_endpoint_check("http://minio.internal:9001") is not None
    assert s3_endpoint_check("http://rgw1.ceph.lan:7480") is None


def test_local_disk_outside_the_roots_is_refused(admin_client, settings, tmp_path):
    elsewhere = tmp_path / "etc-like"
    elsewhere.mkdir()
    inside_link = settings.CLOUDSTORAGE_DISKS_DIR / "sneaky"
    inside_link.parent.mkdir(parents=True, exist_ok=True)
    inside_link.symlink_to(elsewhere)
    for path in (elsewhere, inside_link, settings.CLOUDSTORAGE_DISKS_DIR / ".." / "etc-like"):
        response = admin_client.post(ADD, _form(backend="local", path=str(path), s3_bucket=""))
        assert response.status_code == 200
        assert "path" in response.context["adminform"].form.errors, path
    assert list(elsewhere.iterdir()) == []  # never probed: nothing was written there
    assert not Disk.objects.filter(name="probe-me").exists()


def test_local_disk_under_a_configured_root_is_accepted(admin_client, settings, tmp_path):
    mount = tmp_path / "mnt" / "disk7"
    mount.mkdir(parents=True)
    settings.CLOUDSTORAGE_LOCAL_DISK_ROOTS = [tmp_path / "mnt"]
    response = admin_client.post(ADD, _form(backend="local", path=str(mount), s3_bucket=""))
    assert response.status_code == 302
    assert Disk.objects.get(name="probe-me").path == str(mount)
