"""Settings, health, e-mail files, the schema: the platform under every feature."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.mail import EmailMessage
from django.test import Client

from accounts.mail import FileAndConsoleBackend
from disks.health import disk_probe
from disks.models import Disk
from disks.services import disk_create_local

ROOT = Path(__file__).resolve().parents[2]


def _settings_import(env: dict) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DEBUG", "SECRET_KEY", "DATABASE_URL", "CLOUDSTORAGE_MASTER_KEY"}
    }
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "cloudstorage.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "env, message",
    [
        ({"DEBUG": "0"}, "SECRET_KEY must be set"),
        ({"DEBUG": "0", "SECRET_KEY": "django-insecure-short"}, "too weak"),
        (
            {"DEBUG": "0", "SECRET_KEY": "k" * 20 + "Zq81hfT2mZ0aLp7Qs9dYw3xVb6NcEe"},
            "DATABASE_URL must be set",
        ),
        (
            {
                "DEBUG": "0",
                "SECRET_KEY": "k" * 20 + "Zq81hfT2mZ0aLp7Qs9dYw3xVb6NcEe",
                "DATABASE_URL": "sqlite:////tmp/x.sqlite3",
            },
            "CLOUDSTORAGE_MASTER_KEY must be set",
        ),
        ({"DEBUG": "maybe"}, "is not a boolean"),
    ],
)
def test_production_refuses_to_start_without_real_settings(env, message, tmp_path):
    result = _settings_import({**env, "CLOUDSTORAGE_VAR_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert message in result.stderr


def test_mail_goes_to_files_and_console(tmp_path, capsys):
    backend = FileAndConsoleBackend(file_path=str(tmp_path))
    sent = backend.send_messages([EmailMessage("Hello", "Body text", "from@example.com", ["to@example.com"])])
    assert sent == 1
    [eml] = list(tmp_path.glob("*.eml"))
    content = eml.read_text()
    assert "Subject: Hello" in content and "Body text" in content
    assert "Body text" in capsys.readouterr().out


def _operator_client() -> Client:
    """The detailed health check is for staff only (the plain /healthz is liveness)."""
    from tests.factories import UserFactory

    client = Client()
    client.force_login(UserFactory(email="operator@example.com", is_staff=True))
    return client


@pytest.mark.django_db
def test_healthz_detail_ok_with_healthy_disks(tmp_path):
    disk_create_local(name="d1", path=tmp_path / "d1", category="A", capacity_bytes=10**9)
    response = _operator_client().get("/healthz/detail")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] and body["checks"]["broker"]["ok"]
    assert body["checks"]["disks"]["disks"]["d1"]["ok"]


@pytest.mark.django_db
def test_healthz_detail_503_names_the_missing_disk(tmp_path):
    disk_create_local(name="d1", path=tmp_path / "d1", category="A", capacity_bytes=10**9)
    disk_create_local(name="d2", path=tmp_path / "d2", category="A", capacity_bytes=10**9)
    shutil.rmtree(tmp_path / "d2")
    response = _operator_client().get("/healthz/detail")
    assert response.status_code == 503
    disks = response.json()["checks"]["disks"]["disks"]
    assert disks["d1"]["ok"] and not disks["d2"]["ok"]
    assert disks["d2"]["error"]


@pytest.mark.django_db
def test_healthz_detail_503_when_broker_is_down(settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    response = _operator_client().get("/healthz/detail")
    assert response.status_code == 503
    assert not response.json()["checks"]["broker"]["ok"]


@pytest.mark.django_db
def test_disk_marked_failed_after_repeated_probe_failures(tmp_path, settings):
    settings.CLOUDSTORAGE_DISK_PROBE_FAILURES = 3
    disk = disk_create_local(name="flaky", path=tmp_path / "flaky", category="B", capacity_bytes=10**9)
    shutil.rmtree(tmp_path / "flaky")
    assert not disk_probe(disk=disk)
    assert not disk_probe(disk=disk)
    disk.refresh_from_db()
    assert disk.status == Disk.Status.ACTIVE and disk.consecutive_failures == 2
    assert not disk_probe(disk=disk)
    disk.refresh_from_db()
    assert disk.status == Disk.Status.FAILED


@pytest.mark.django_db
def test_schema_and_docs_are_served_without_outside_hosts():
    schema = Client().get("/api/v1/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/workspaces/" in schema.content and b"/api/v1/auth/token/" in schema.content
    docs = Client().get("/api/v1/docs/")
    assert docs.status_code == 200
    assert b"cdn.jsdelivr" not in docs.content and b"unpkg" not in docs.content


@pytest.mark.django_db
def test_unknown_api_route_answers_json_404(settings):
    settings.DEBUG = False
    response = Client().get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.django_db
def test_bootstrap_demo_creates_operator_and_two_disks_per_category(settings, tmp_path):
    from django.core.management import call_command

    settings.VAR_DIR = tmp_path
    call_command("bootstrap_demo")
    call_command("bootstrap_demo")  # idempotent
    assert sorted(Disk.objects.values_list("category", flat=True)) == sorted("AABBCCDDEE")
    from accounts.models import User

    operator = User.objects.get(email="operator@example.com")
    assert operator.is_staff and operator.is_superuser
    assert (tmp_path / "demo_operator.txt").read_text().startswith("operator@example.com")


def test_the_embedded_default_starts_with_debug_off_and_plain_http_cookies(tmp_path):
    """``make run``: DEBUG=0 with CLOUDSTORAGE_EMBEDDED=1 needs no SECRET_KEY, DATABASE_URL or master
    key (generated under var/), and its cookies still work over http://127.0.0.1."""
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.DEBUG, settings.DATABASES['default']['ENGINE'], settings.SESSION_COOKIE_SECURE)"
    )
    clean = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DATABASE_URL", "CLOUDSTORAGE_MASTER_KEY"}}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={
            **clean,
            "DJANGO_SETTINGS_MODULE": "cloudstorage.settings",
            "DEBUG": "0",
            "CLOUDSTORAGE_EMBEDDED": "1",
            "CLOUDSTORAGE_VAR_DIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "django.db.backends.sqlite3", "False"]
    assert (tmp_path / "secret_key").exists() and (tmp_path / "master_key").exists()


def test_unknown_pages_get_our_404_page_not_a_debug_page(db, settings):
    settings.DEBUG = False
    response = Client().get("/no-such-page/anywhere")
    assert response.status_code == 404
    body = response.content.decode()
    assert "This page does not exist" in body
    assert "URLconf" not in body and "Traceback" not in body
