"""Backups of the database: every manifest and every wrapped data key lives there, so losing it
loses every file even with every disk intact.

A backup is a consistent snapshot (PostgreSQL: ``pg_dump`` in its custom format, one transaction;
SQLite: the online backup API, safe while the service writes), sealed with AES-256-GCM under a key
derived from the master key, and stored as ``backups/db-<UTC time>.csbk`` on a disk of the chunk
store (the store's sweep only looks under ``ws/``). The object's header names the master key it was
sealed under, so restoring with another key is refused with a clear message rather than a failed
decryption. Restoring needs only the disk's location (the database that knew the disk is the
thing being restored) and the master key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import shutil
import sqlite3
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.db import connection, connections

from disks.backends import Backend, BackendError, backend_for
from disks.crypto import master_key_id, master_keys
from disks.models import Disk

PREFIX = "backups/"
MAGIC = b"CSBK1"
NONCE_BYTES = 12
KEY_ID_BYTES = 16


class BackupError(Exception):
    """A backup cannot be made or restored; the message says why and what to do."""


def _backup_key(master: bytes) -> bytes:
    return hmac.new(master, b"cloudstorage-metadata-backup", hashlib.sha256).digest()


def _vendor() -> str:
    return connection.vendor


def _pg_env_and_args() -> tuple[dict, list[str]]:
    db = settings.DATABASES["default"]
    env = {**os.environ, "PGPASSWORD": str(db.get("PASSWORD") or "")}
    args = ["-h", str(db.get("HOST") or "127.0.0.1"), "-p", str(db.get("PORT") or 5432)]
    args += ["-U", str(db.get("USER") or "postgres"), "-d", str(db["NAME"])]
    return env, args


def _pg_run(tool: str, *args: str) -> None:
    """Run pg_dump or pg_restore (the PostgreSQL client tools) against the configured database."""
    binary = shutil.which(tool)
    if binary is None:
        raise BackupError(f"{tool} is not installed (Debian: apt-get install postgresql-client)")
    env, target = _pg_env_and_args()
    result = subprocess.run([binary, *args, *target], env=env, capture_output=True)  # noqa: S603 - no user input
    if result.returncode:
        raise BackupError(f"{tool} failed: {result.stderr.decode(errors='replace').strip()}")


def _snapshot() -> bytes:
    """The database as one consistent file's bytes."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "snapshot"
        if _vendor() == "postgresql":
            _pg_run("pg_dump", "--format=custom", "-f", str(path))
        elif _vendor() == "sqlite":
            # uri=True, as Django opens it: a "file:…" name (the tests' shared in-memory database)
            # is then the same database here, not a new empty file of that name.
            source = sqlite3.connect(settings.DATABASES["default"]["NAME"], uri=True)
            target = sqlite3.connect(path)
            try:
                source.backup(target)
            finally:
                target.close()
                source.close()
        else:
            raise BackupError(f"backups of a {_vendor()} database are not supported")
        return path.read_bytes()


def _seal(plaintext: bytes, *, vendor: str) -> bytes:
    key_id = master_key_id(settings.CLOUDSTORAGE_MASTER_KEY)
    master = master_keys()[key_id]
    header = MAGIC + key_id.encode() + vendor.encode().ljust(10)
    nonce = os.urandom(NONCE_BYTES)
    return header + nonce + AESGCM(_backup_key(master)).encrypt(nonce, plaintext, header)


def _open(blob: bytes) -> tuple[str, bytes]:
    """(vendor, snapshot) of a sealed backup; BackupError for another master key or damage."""
    head = len(MAGIC) + KEY_ID_BYTES + 10
    if len(blob) < head + NONCE_BYTES + 16 or not blob.startswith(MAGIC):
        raise BackupError("this is not a database backup of this service")
    header = blob[:head]
    key_id = header[len(MAGIC) : len(MAGIC) + KEY_ID_BYTES].decode()
    vendor = header[len(MAGIC) + KEY_ID_BYTES :].decode().strip()
    master = master_keys().get(key_id)
    if master is None:
        raise BackupError(
            f"this backup was sealed under master key {key_id}, and the configured CLOUDSTORAGE_MASTER_KEY "
            f"is {master_key_id(settings.CLOUDSTORAGE_MASTER_KEY)}: restore with the master key it was made with "
            "(it is also the only key that opens the restored data keys)"
        )
    nonce = blob[head : head + NONCE_BYTES]
    try:
        return vendor, AESGCM(_backup_key(master)).decrypt(nonce, blob[head + NONCE_BYTES :], header)
    except InvalidTag:
        raise BackupError("the backup is damaged (its authentication tag does not match)") from None


def backup_create(*, disk: Disk, keep: int) -> str:
    """Snapshot the database onto ``disk``; keep the ``keep`` newest backups there. The object key."""
    backend = backend_for(disk)
    key = f"{PREFIX}db-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}.csbk"
    backend.put(key, _seal(_snapshot(), vendor=_vendor()))
    for old in backup_list(backend=backend)[keep:]:
        backend.delete(old)
    return key


def backup_create_on(*, disk_name: str, keep: int) -> str:
    """backup_create onto the disk called ``disk_name`` (the commands' --disk, or
    CLOUDSTORAGE_BACKUP_DISK); BackupError when there is no such disk or the disk fails the write."""
    disk = Disk.objects.filter(name=disk_name).first()
    if disk is None:
        raise BackupError(f"there is no disk named {disk_name!r}")
    try:
        return backup_create(disk=disk, keep=keep)
    except BackendError as exc:
        raise BackupError(str(exc)) from exc


def backup_list(*, backend: Backend) -> list[str]:
    """The backups on a disk, newest first (their names sort by time)."""
    return sorted((key for key in backend.keys(PREFIX) if key.endswith(".csbk")), reverse=True)


def backup_restore(*, backend: Backend, key: str | None = None) -> str:
    """Replace the configured database with a backup (the newest when ``key`` is None). The key."""
    keys = backup_list(backend=backend)
    if key is None:
        if not keys:
            raise BackupError("no backup found on that disk (looked under backups/)")
        key = keys[0]
    vendor, snapshot = _open(backend.get(key))
    if vendor != _vendor():
        raise BackupError(f"this backup is of a {vendor} database; the configured one is {_vendor()}")
    connections.close_all()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "snapshot"
        path.write_bytes(snapshot)
        if vendor == "postgresql":
            _pg_run("pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction", str(path))
        else:
            source = sqlite3.connect(path)
            target = sqlite3.connect(settings.DATABASES["default"]["NAME"])
            try:
                source.backup(target)
            finally:
                target.close()
                source.close()
    return key
