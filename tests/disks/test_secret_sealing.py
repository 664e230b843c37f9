"""Disk credentials at rest: an S3 secret key is stored sealed under the master key, never as
plaintext; existing plaintext rows are sealed by the migration; a master key rotation re-seals
them; the admin never shows the secret."""

from __future__ import annotations

import base64
import importlib
import io

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection
from django.test import Client

from disks.crypto import master_key_id
from disks.models import Disk
from disks.services import disk_check
from tests.disks.conftest import make_s3_disk
from tests.factories import UserFactory

OLD = base64.b64encode(b"o" * 32).decode()
NEW = base64.b64encode(b"n" * 32).decode()
# moto accepts any secret; a distinctive one can be searched for in pages and rows.
S3_SECRET_KEY = "sk-distinctive-8d1e5b"


def stored_secret(disk: Disk) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT s3_secret_key FROM disks_disk WHERE id = %s",
            [Disk._meta.pk.get_db_prep_value(disk.pk, connection)],
        )
        return cursor.fetchone()[0]


@pytest.fixture
def s3_disk(db, settings, s3_server):
    settings.CLOUDSTORAGE_MASTER_KEY = OLD
    settings.CLOUDSTORAGE_PREVIOUS_MASTER_KEYS = []
    disk = make_s3_disk(s3_server, "s3a")
    Disk.objects.filter(pk=disk.pk).update(s3_secret_key=S3_SECRET_KEY)
    return Disk.objects.get(pk=disk.pk)


def test_secret_is_stored_sealed_and_the_disk_still_works(s3_disk):
    raw = stored_secret(s3_disk)
    assert S3_SECRET_KEY not in raw and raw.startswith(f"csenc1:{master_key_id(OLD)}:")
    loaded = Disk.objects.get(pk=s3_disk.pk)
    assert loaded.s3_secret_key == S3_SECRET_KEY
    assert disk_check(disk=loaded) is None  # the probe signs with the opened secret


def test_migration_seals_plaintext_rows(s3_disk):
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE disks_disk SET s3_secret_key = %s WHERE id = %s",
            [S3_SECRET_KEY, Disk._meta.pk.get_db_prep_value(s3_disk.pk, connection)],
        )
    assert stored_secret(s3_disk) == S3_SECRET_KEY
    assert Disk.objects.get(pk=s3_disk.pk).s3_secret_key == S3_SECRET_KEY  # read as it is meanwhile
    migration = importlib.import_module("disks.migrations.0004_seal_s3_secret_key")
    migration.seal_existing(apps, type("Editor", (), {"connection": connection})())
    assert stored_secret(s3_disk).startswith("csenc1:")
    assert Disk.objects.get(pk=s3_disk.pk).s3_secret_key == S3_SECRET_KEY


def test_rotation_reseals_disk_secrets_under_the_new_key(s3_disk, settings, tmp_path):
    settings.CLOUDSTORAGE_MASTER_KEY = NEW
    old_file = tmp_path / "old.key"
    old_file.write_text(OLD)
    out = io.StringIO()
    call_command("rotate_master_key", "--old-key-file", str(old_file), stdout=out)
    assert "re-sealed 1 disk secret(s)" in out.getvalue()
    assert stored_secret(s3_disk).startswith(f"csenc1:{master_key_id(NEW)}:")
    loaded = Disk.objects.get(pk=s3_disk.pk)
    assert loaded.s3_secret_key == S3_SECRET_KEY and disk_check(disk=loaded) is None


def test_admin_shows_neither_the_secret_nor_its_sealed_form(s3_disk):
    client = Client()
    client.force_login(UserFactory(email="op@example.com", is_staff=True, is_superuser=True))
    page = client.get(f"/admin/disks/disk/{s3_disk.pk}/change/").content.decode()
    assert S3_SECRET_KEY not in page and "csenc1:" not in page
    assert s3_disk.s3_access_key in page
