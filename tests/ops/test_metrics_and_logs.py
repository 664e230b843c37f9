"""GET /metrics in Prometheus text for monitors only; a request id on every log line, JSON on demand."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from disks.models import Disk, Replica
from tests.factories import local_disks

TOKEN = "m" * 40
SETTINGS_ENV = {
    "DEBUG",
    "CLOUDSTORAGE_EMBEDDED",
    "SECRET_KEY",
    "DATABASE_URL",
    "CLOUDSTORAGE_MASTER_KEY",
    "METRICS_ALLOW",
}


@pytest.fixture(autouse=True)
def _disks(settings, db):
    settings.CLOUDSTORAGE_CHUNK_AVG = 16 * 1024
    settings.CLOUDSTORAGE_REPLICAS = 2
    settings.METRICS_TOKEN = TOKEN
    return local_disks(settings)


@pytest.fixture
def root(owner_workspace):
    from files.models import Node

    return Node.objects.get(workspace=owner_workspace, parent__isnull=True)


def scrape(**headers) -> dict:
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", **headers)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")  # the Prometheus text format
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_outsiders_get_404_and_an_allowed_address_gets_in(settings):
    outsider = Client(REMOTE_ADDR="192.0.2.1")
    assert outsider.get("/metrics").status_code == 404
    assert outsider.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 404
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOW = []
    assert Client().get("/metrics").status_code == 404  # from 127.0.0.1, no address allowed
    settings.METRICS_ALLOW = ["10.0.0.0/8"]
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="192.0.2.1").get("/metrics").status_code == 404


@pytest.mark.parametrize(
    "env, allowed",
    [
        ({"DEBUG": "0", "CLOUDSTORAGE_EMBEDDED": "1"}, ["127.0.0.1"]),  # make run
        ({"DEBUG": "1"}, ["127.0.0.1"]),
        ({"DEBUG": "0", "CLOUDSTORAGE_EMBEDDED": "1", "METRICS_ALLOW": ""}, []),
        (
            {
                "DEBUG": "0",
                "SECRET_KEY": "k" * 20 + "Zq81hfT2mZ0aLp7Qs9dYw3xVb6NcEe",
                "DATABASE_URL": "sqlite:////tmp/x.sqlite3",
                "CLOUDSTORAGE_MASTER_KEY": "A" * 43 + "=",
            },
            [],  # production
        ),
    ],
)
def test_the_embedded_default_lets_127_0_0_1_scrape_and_production_no_address(env, allowed, tmp_path):
    """DESIGN.md: the embedded default allows 127.0.0.1; METRICS_ALLOW was empty everywhere."""
    clean = {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings as s; print(s.METRICS_ALLOW)",
        ],
        env={**clean, "DJANGO_SETTINGS_MODULE": "cloudstorage.settings", "CLOUDSTORAGE_VAR_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == repr(allowed)


def test_disk_replication_and_transfer_gauges_follow_the_store(api, root):
    before = scrape()
    data = os.urandom(300_000)
    response = api.put(f"/api/v1/nodes/{root.pk}/children/m.bin", data, content_type="application/octet-stream")
    assert response.status_code == 201
    node_id = response.json()["id"]
    assert b"".join(api.get(f"/api/v1/nodes/{node_id}/content").streaming_content) == data

    after = scrape()
    for disk in Disk.objects.all():
        assert value(after, "cloudstorage_disk_used_bytes", disk=disk.name, category=disk.category) == disk.used_bytes
        assert value(after, "cloudstorage_disk_free_bytes", disk=disk.name, category=disk.category) == disk.free_bytes
    used = sum(d.used_bytes for d in Disk.objects.filter(category="A"))
    assert used > 2 * len(data) and value(after, "cloudstorage_category_used_bytes", category="A") == used
    assert value(after, "cloudstorage_upload_bytes_total") - value(before, "cloudstorage_upload_bytes_total") == len(
        data
    )
    assert value(after, "cloudstorage_download_bytes_total") - value(
        before, "cloudstorage_download_bytes_total"
    ) == len(data)
    assert value(after, "cloudstorage_chunks_under_replicated") == 0
    assert any(name == "django_http_requests_total_by_method_total" for name, _ in after)

    # One disk's copies go bad: the chunks are under-replicated; both copies bad: lost.
    replicas = Replica.objects.filter(disk=Replica.objects.first().disk)
    chunks = replicas.count()
    replicas.update(state=Replica.State.BAD)
    damaged = scrape()
    assert value(damaged, "cloudstorage_chunks_under_replicated") == chunks
    assert value(damaged, "cloudstorage_chunks_without_good_copy") == 0
    Replica.objects.update(state=Replica.State.BAD)
    assert value(scrape(), "cloudstorage_chunks_without_good_copy") == chunks


def test_tus_uploads_in_flight_and_failed_logins_are_counted(api, root, owner):
    before = scrape()
    response = api.post(
        "/api/v1/uploads/",
        HTTP_TUS_RESUMABLE="1.0.0",
        HTTP_UPLOAD_LENGTH="10",
        HTTP_UPLOAD_METADATA="filename eC5iaW4=",
    )
    assert response.status_code == 201
    assert Client().post("/accounts/login/", {"login": owner.email, "password": "wrong-password-1"}).status_code == 200
    after = scrape()
    assert value(after, "cloudstorage_tus_uploads_in_flight") == 1
    assert value(after, "cloudstorage_failed_logins_total") - value(before, "cloudstorage_failed_logins_total") == 1


def test_log_lines_carry_the_request_id_and_json_is_one_object_a_line(client, capsys):
    from django.conf import settings as live_settings
    from django.utils.log import configure_logging

    response = client.get("/healthz", HTTP_X_REQUEST_ID="from-proxy-1234")
    assert response["X-Request-ID"] == "from-proxy-1234"
    assert len(client.get("/healthz", HTTP_X_REQUEST_ID="bad id!")["X-Request-ID"]) == 32  # a new one

    config = json.loads(json.dumps(live_settings.LOGGING))
    config["handlers"]["console"]["formatter"] = "json"
    configure_logging(live_settings.LOGGING_CONFIG, config)
    try:
        from cloudstorage import logs

        token = logs._request_id.set("abc123def")
        try:
            logging.getLogger("files.test").warning("something to see")
        finally:
            logs._request_id.reset(token)
        line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
        assert line["request_id"] == "abc123def" and line["message"] == "something to see"
        assert line["level"] == "WARNING" and line["logger"] == "files.test"
    finally:
        configure_logging(live_settings.LOGGING_CONFIG, live_settings.LOGGING)
