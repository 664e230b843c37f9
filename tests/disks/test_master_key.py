"""``manage.py rotate_master_key``: data keys re-wrapped under the new master key, no chunk rewritten."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import sqlite3

import pytest
from django.core.management import CommandError, call_command

from disks.backends import backend_for
from disks.crypto import CryptoError, master_key_id
from disks.metadata_backup import _open, backup_create, backup_list
from disks.models import DataKey
from disks.store import manifest_write
from tests.disks.conftest import make_disks, object_files, read_all

OLD = base64.b64encode(b"o" * 32).decode()
NEW = base64.b64encode(b"n" * 32).decode()
OTHER = base64.b64encode(b"x" * 32).decode()


@pytest.fixture
def stored(settings, owner_workspace, team, three_disks, rng):
    """Two workspaces' files written under the old master key."""
    settings.CLOUDSTORAGE_MASTER_KEY = OLD
    settings.CLOUDSTORAGE_PREVIOUS_MASTER_KEYS = []
    files = [
        (manifest_write(workspace=ws, stream=io.BytesIO(data)), data)
        for ws, data in ((owner_workspace, rng.randbytes(9000)), (team, rng.randbytes(7000)))
    ]
    assert set(DataKey.objects.values_list("master_key_id", flat=True)) == {master_key_id(OLD)}
    return files


def chunk_objects(disks) -> dict:
    return {
        str(p): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for d in disks
        for p in object_files(d)
    }


def rotate(*args) -> str:
    out = io.StringIO()
    call_command("rotate_master_key", *args, stdout=out)
    return out.getvalue()


def test_rotation_rewraps_data_keys_and_leaves_every_chunk_as_it_was(settings, stored, three_disks, tmp_path):
    objects = chunk_objects(three_disks)
    settings.CLOUDSTORAGE_MASTER_KEY = NEW
    old_file = tmp_path / "old.key"
    old_file.write_text(OLD + "\n")

    assert "re-wrapped 2 data key(s), 0 already current" in rotate("--old-key-file", str(old_file))
    assert set(DataKey.objects.values_list("master_key_id", flat=True)) == {master_key_id(NEW)}
    assert DataKey.objects.filter(rotated_at__isnull=False).count() == 2
    assert chunk_objects(three_disks) == objects  # not one chunk rewritten or touched
    # Only the new key is configured now, and everything reads back.
    assert all(read_all(m) == data for m, data in stored)
    assert "re-wrapped 0 data key(s), 2 already current" in rotate()


def test_old_key_from_the_previous_keys_setting_or_an_environment_variable(settings, stored, monkeypatch):
    settings.CLOUDSTORAGE_MASTER_KEY = NEW
    settings.CLOUDSTORAGE_PREVIOUS_MASTER_KEYS = [OLD]
    assert "would re-wrap 2" in rotate("--dry-run")
    assert set(DataKey.objects.values_list("master_key_id", flat=True)) == {master_key_id(OLD)}  # dry run
    settings.CLOUDSTORAGE_PREVIOUS_MASTER_KEYS = []
    monkeypatch.setenv("OLD_MASTER_KEY", OLD)
    assert "re-wrapped 2" in rotate("--old-key-env", "OLD_MASTER_KEY")
    assert all(read_all(m) == data for m, data in stored)


def test_without_the_old_key_nothing_changes_and_the_error_says_why(settings, stored, tmp_path):
    settings.CLOUDSTORAGE_MASTER_KEY = NEW
    before = list(DataKey.objects.values_list("workspace_id", "wrapped", "master_key_id"))
    with pytest.raises(CommandError, match="2 data key.*not given"):
        rotate()
    wrong = tmp_path / "wrong.key"
    wrong.write_text(OTHER)
    with pytest.raises(CommandError, match="2 data key.*not given"):
        rotate("--old-key-file", str(wrong))
    with pytest.raises(CommandError, match="empty or not set"):
        rotate("--old-key-env", "NO_SUCH_VARIABLE_" + os.urandom(4).hex())
    bad = tmp_path / "bad.key"
    bad.write_text("not base64!")
    with pytest.raises(CommandError, match="base64"):
        rotate("--old-key-file", str(bad))
    after = list(DataKey.objects.values_list("workspace_id", "wrapped", "master_key_id"))
    assert [(w, bytes(k), i) for w, k, i in after] == [(w, bytes(k), i) for w, k, i in before]
    # And the files cannot be read with only the new key: the error is explicit.
    with pytest.raises(CryptoError):
        read_all(stored[0][0])


def _wrapping_key_ids(snapshot: bytes, tmp_path) -> set[str]:
    """The master key ids the data keys in a SQLite snapshot are wrapped under."""
    path = tmp_path / "restored.sqlite3"
    path.write_bytes(snapshot)
    with sqlite3.connect(path) as restored:
        return {row[0] for row in restored.execute("SELECT master_key_id FROM disks_datakey")}


def test_rotation_backs_the_database_up_under_the_new_key_before_the_old_key_may_go(
    settings, transactional_db, stored, tmp_path
):
    """Last night's backup is sealed under the old key and holds data keys it wrapped. Once the
    command says the old key can be removed, the newest backup must restore with the new key
    alone. (transactional_db: the real snapshot reads the database from a connection of its own,
    which sees only committed rows.)"""
    (backup_disk,) = make_disks(settings, 1, prefix="bk")
    settings.CLOUDSTORAGE_BACKUP_DISK = backup_disk.name
    backend = backend_for(backup_disk)
    last_night = backup_create(disk=backup_disk, keep=settings.CLOUDSTORAGE_BACKUP_KEEP)
    settings.CLOUDSTORAGE_MASTER_KEY = NEW
    settings.CLOUDSTORAGE_PREVIOUS_MASTER_KEYS = [OLD]

    assert "would re-wrap 2" in rotate("--dry-run")
    assert backup_list(backend=backend) == [last_night]  # a dry run backs nothing up

    out = rotate()
    newest = backup_list(backend=backend)[0]
    assert newest != last_night
    assert f"Backed the database up under the new key to {newest}" in out
    assert "The old key can be removed" in out

    settings.CLOUDSTORAGE_PREVIOUS_MASTER_KEYS = []  # as the command said
    vendor, snapshot = _open(backend.get(newest))
    if vendor == "sqlite":  # a PostgreSQL dump would need a scratch database to be read back
        assert _wrapping_key_ids(snapshot, tmp_path) == {master_key_id(NEW)}


def test_rotation_keeps_only_backup_keep_backups(settings, transactional_db, stored):
    (backup_disk,) = make_disks(settings, 1, prefix="bk")
    settings.CLOUDSTORAGE_BACKUP_DISK = backup_disk.name
    settings.CLOUDSTORAGE_BACKUP_KEEP = 2
    older = [backup_create(disk=backup_disk, keep=5) for _ in range(3)]
    settings.CLOUDSTORAGE_MASTER_KEY = NEW
    settings.CLOUDSTORAGE_PREVIOUS_MASTER_KEYS = [OLD]

    rotate()

    newest, *kept = backup_list(backend=backend_for(backup_disk))
    assert kept == [older[-1]]
    assert newest not in older


def test_without_a_backup_disk_the_old_key_is_to_be_kept_until_older_backups_age_out(settings, stored):
    settings.CLOUDSTORAGE_BACKUP_DISK = ""
    settings.CLOUDSTORAGE_MASTER_KEY = NEW
    settings.CLOUDSTORAGE_PREVIOUS_MASTER_KEYS = [OLD]

    out = rotate()

    assert "re-wrapped 2" in out
    assert "No backup disk is configured" in out
    assert "keep the old key until every such backup has aged out" in out
    assert "The old key can be removed" not in out


def test_a_backup_disk_that_does_not_exist_fails_the_command_and_says_to_keep_the_old_key(settings, stored):
    settings.CLOUDSTORAGE_BACKUP_DISK = "no-such-disk"
    settings.CLOUDSTORAGE_MASTER_KEY = NEW
    settings.CLOUDSTORAGE_PREVIOUS_MASTER_KEYS = [OLD]

    with pytest.raises(CommandError, match="no disk named 'no-such-disk'.*keep the old key"):
        rotate()
    assert set(DataKey.objects.values_list("master_key_id", flat=True)) == {master_key_id(NEW)}
