"""A Django cache in its own SQLite file: the embedded default's cache, shared by every web and
worker process of the machine.

Why not the others: the per-process memory cache would let each web process count its own rate
limits, and Django's file cache costs a file read, a temporary file, a rename and a directory
listing (its cull check) on every write; a throttle writes on every request. Here a read is one
indexed SELECT and a write one UPSERT on a connection the thread keeps open.

Why its own file and not a table in the main database: the main database runs transactions in
IMMEDIATE mode, so a cache write there would queue behind an upload's commit (and the reverse). This
file's writes take its own lock for microseconds. It is a cache, so it trades durability for speed
(``synchronous=NORMAL`` in WAL mode: no commit waits for the disk, only checkpoints sync): a power
cut may forget recent counters, never the main database's data. Not ``OFF``: that skips the
checkpoints' syncs too, and a power cut could leave the file corrupt, every later request's throttle
check failing on it until an operator deleted it.

``add`` and ``incr`` are single statements, hence atomic across processes (the repair
lease in disks.repair relies on ``add``; the file cache only approximated that with a check then a write).
Integers are stored as SQL integers so ``incr`` happens inside SQLite; other values are pickled.
"""

from __future__ import annotations

import os
import pickle
import random
import sqlite3
import threading
import time

from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cache (
    key TEXT PRIMARY KEY,
    value BLOB,
    expires REAL NOT NULL
) WITHOUT ROWID
"""
# Expired rows are read as missing; roughly one write in PURGE_EVERY also deletes them.
PURGE_EVERY = 1000
NEVER = 1e18
BUSY_TIMEOUT = 30  # seconds a statement waits for another connection's lock


# Every connection this process opened. SQLite's locks are fcntl locks, which a forked child does not
# inherit, while its bookkeeping of them (per file, in memory) is inherited: a child that opens the
# same file while the parent's connection is still open believes it holds locks it does not, and
# concurrent writes are lost (SQLite: "do not carry a connection across fork"). So every connection
# is closed just before a fork (Celery's prefork pool, gunicorn --preload) and reopened lazily.
_open: set[sqlite3.Connection] = set()
_open_lock = threading.Lock()


def _close_before_fork() -> None:
    with _open_lock:
        for connection in _open:
            connection.close()
        _open.clear()


os.register_at_fork(before=_close_before_fork)


class SQLiteCache(BaseCache):
    """``LOCATION`` is the path of the SQLite file (created on first use)."""

    def __init__(self, location: str, params: dict):
        super().__init__(params)
        self._path = location
        self._local = threading.local()

    # One connection per thread (sqlite3 connections are not for sharing across threads), opened
    # again after a fork or after _close_before_fork closed it.
    def _db(self) -> sqlite3.Connection:
        local = self._local
        connection = getattr(local, "connection", None)
        if connection is None or local.pid != os.getpid() or connection not in _open:
            connection = self._connect()
            with _open_lock:
                _open.add(connection)
            local.connection, local.pid = connection, os.getpid()
        return connection

    def _connect(self) -> sqlite3.Connection:
        # Turning a new file to WAL needs its exclusive lock, and SQLite answers "database is
        # locked" at once, without waiting out the busy timeout, while another connection holds a
        # write lock on it: processes and threads that start together and race to create the file
        # (web threads' first requests, the worker, beat) retry here rather than fail a request.
        deadline = time.monotonic() + BUSY_TIMEOUT
        while True:
            connection = sqlite3.connect(
                self._path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
            )
            try:
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=NORMAL")
                connection.execute(_SCHEMA)
                return connection
            except sqlite3.OperationalError as exc:
                connection.close()
                # The primary code (the low byte of an extended one): another connection's lock.
                busy = (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
                if not busy or time.monotonic() > deadline:
                    raise
                time.sleep(random.uniform(0.005, 0.05))

    def _expiry(self, timeout) -> float:
        expires = self.get_backend_timeout(timeout)  # an absolute time, None for "never"
        return NEVER if expires is None else expires

    @staticmethod
    def _encode(value):
        # bool is an int subclass but must come back as a bool.
        if type(value) is int and -(2**63) <= value < 2**63:
            return value
        return sqlite3.Binary(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))

    @staticmethod
    def _decode(stored):
        return stored if isinstance(stored, int) else pickle.loads(stored)  # noqa: S301 - our own rows

    def _maybe_purge(self, db: sqlite3.Connection) -> None:
        if random.randrange(PURGE_EVERY) == 0:
            db.execute("DELETE FROM cache WHERE expires <= ?", (time.time(),))

    def get(self, key, default=None, version=None):
        key = self.make_and_validate_key(key, version=version)
        row = self._db().execute("SELECT value FROM cache WHERE key = ? AND expires > ?", (key, time.time())).fetchone()
        return default if row is None else self._decode(row[0])

    def get_many(self, keys, version=None):
        wanted = {self.make_and_validate_key(key, version=version): key for key in keys}
        if not wanted:
            return {}
        marks = ", ".join("?" * len(wanted))
        rows = self._db().execute(
            f"SELECT key, value FROM cache WHERE key IN ({marks}) AND expires > ?",  # noqa: S608 - only marks
            (*wanted, time.time()),
        )
        return {wanted[key]: self._decode(value) for key, value in rows}

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        key = self.make_and_validate_key(key, version=version)
        db = self._db()
        db.execute(
            "INSERT INTO cache (key, value, expires) VALUES (?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value, expires = excluded.expires",
            (key, self._encode(value), self._expiry(timeout)),
        )
        self._maybe_purge(db)

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        db = self._db()
        # One statement: insert, or take over an expired row; a live row is left alone.
        cursor = db.execute(
            "INSERT INTO cache (key, value, expires) VALUES (?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value, expires = excluded.expires "
            "WHERE cache.expires <= ?",
            (key, self._encode(value), self._expiry(timeout), time.time()),
        )
        self._maybe_purge(db)
        return cursor.rowcount == 1

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        cursor = self._db().execute(
            "UPDATE cache SET expires = ? WHERE key = ? AND expires > ?", (self._expiry(timeout), key, time.time())
        )
        return cursor.rowcount == 1

    def incr(self, key, delta=1, version=None):
        key = self.make_and_validate_key(key, version=version)
        db, now = self._db(), time.time()
        # fetchall, not fetchone: the statement (and so its write lock) ends only once read to the end.
        rows = db.execute(
            "UPDATE cache SET value = value + ? WHERE key = ? AND expires > ? AND typeof(value) = 'integer' "
            "RETURNING value",
            (delta, key, now),
        ).fetchall()
        if rows:
            return rows[0][0]
        if db.execute("SELECT 1 FROM cache WHERE key = ? AND expires > ?", (key, now)).fetchone():
            # A live value that is not an integer: Django's other backends fail in the same way.
            raise TypeError(f"Key '{key}' does not hold an integer.")
        raise ValueError(f"Key '{key}' not found")

    def has_key(self, key, version=None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        row = self._db().execute("SELECT 1 FROM cache WHERE key = ? AND expires > ?", (key, time.time())).fetchone()
        return row is not None

    def delete(self, key, version=None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        return self._db().execute("DELETE FROM cache WHERE key = ?", (key,)).rowcount == 1

    def clear(self) -> None:
        self._db().execute("DELETE FROM cache")

    def close(self, **kwargs) -> None:
        # Django calls this at the end of every request: the connection is meant to outlive it.
        pass
