"""The embedded default's per-request plumbing: the SQLite cache shared by processes, the throttle
that keeps one number per caller, and connections that outlive a request."""

from __future__ import annotations

import multiprocessing
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from cloudstorage.sqlite_cache import SQLiteCache

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def sqlite_cache(tmp_path):
    return SQLiteCache(str(tmp_path / "cache.sqlite3"), {})


def test_cache_round_trips_values_and_keeps_types(sqlite_cache):
    sqlite_cache.set("n", 41)
    sqlite_cache.set("flag", True)
    sqlite_cache.set("obj", {"a": [1, 2.5]})
    assert sqlite_cache.incr("n") == 42
    assert sqlite_cache.get("flag") is True
    assert sqlite_cache.get("obj") == {"a": [1, 2.5]}
    assert sqlite_cache.get_many(["n", "obj", "missing"]) == {"n": 42, "obj": {"a": [1, 2.5]}}
    assert sqlite_cache.delete("n") and sqlite_cache.get("n") is None
    with pytest.raises(ValueError):
        sqlite_cache.incr("n")
    with pytest.raises(TypeError):
        sqlite_cache.incr("obj")


def test_cache_add_refuses_a_live_key_and_takes_over_an_expired_one(sqlite_cache):
    assert sqlite_cache.add("lock", 1, timeout=60)
    assert not sqlite_cache.add("lock", 2, timeout=60)
    assert sqlite_cache.get("lock") == 1
    sqlite_cache.set("old", 1, timeout=-1)  # already expired
    assert sqlite_cache.get("old") is None and not sqlite_cache.has_key("old")
    assert sqlite_cache.add("old", 2, timeout=60)
    assert sqlite_cache.get("old") == 2


def _count(path: str, times: int) -> None:
    cache = SQLiteCache(path, {})
    for _ in range(times):
        cache.incr("hits")


def test_cache_counts_exactly_across_processes(tmp_path):
    """Four forked processes (as four gunicorn workers) incrementing one counter lose no update, though
    the parent had the file open when it forked."""
    path = str(tmp_path / "cache.sqlite3")
    SQLiteCache(path, {}).set("hits", 0, timeout=None)
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_count, args=(path, 200)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    assert SQLiteCache(path, {}).get("hits") == 800


def test_first_use_waits_for_a_writer_holding_the_new_file(tmp_path):
    """CI, finding H's test: a fresh server's first requests, threads racing to create the cache
    file, got a 500 "database is locked". Turning a new file to WAL needs its exclusive lock and
    SQLite fails at once (no busy wait) while another connection holds the write lock; here one
    holds it for 0.3 s and the cache's first read waits for it instead of failing."""
    path = str(tmp_path / "cache.sqlite3")
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE unrelated (x)")
    other.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.3, other.execute, args=("COMMIT",))
    release.start()
    try:
        cache = SQLiteCache(path, {})
        assert cache.get("anything", "missing") == "missing"
        cache.set("key", 1)
        assert cache.get("key") == 1
    finally:
        release.join()
        other.close()
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_user_throttle_lets_a_burst_of_n_through_then_refuses(monkeypatch, owner):
    from rest_framework.settings import api_settings

    from accounts.services import token_create
    from cloudstorage.throttling import UserThrottle

    # DRF reads the rates once, at import.
    monkeypatch.setattr(UserThrottle, "THROTTLE_RATES", {**api_settings.DEFAULT_THROTTLE_RATES, "user": "5/min"})
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_create(user=owner, name='t').raw}")
    statuses = [client.get("/api/v1/workspaces/").status_code for _ in range(7)]
    assert statuses == [200] * 5 + [429, 429]
    refused = client.get("/api/v1/workspaces/")
    assert 0 < int(refused["Retry-After"]) <= 12


def test_embedded_default_keeps_connections_and_uses_the_sqlite_cache(tmp_path):
    code = (
        "import django, json; django.setup(); from django.conf import settings as s; "
        "d = s.DATABASES['default']; "
        "print(json.dumps([d['ENGINE'], d['CONN_MAX_AGE'], d['CONN_HEALTH_CHECKS'], s.CACHES['default']['BACKEND']]))"
    )
    env = {"CLOUDSTORAGE_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "cloudstorage.settings", "PATH": ""}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True, capture_output=True, text=True)
    assert out.stdout.strip() == ('["django.db.backends.sqlite3", 60, true, "cloudstorage.sqlite_cache.SQLiteCache"]')


def test_cache_syncs_at_checkpoints_so_a_power_cut_cannot_corrupt_it(sqlite_cache):
    # synchronous=OFF would skip the checkpoints' syncs too: after a power cut the file could be
    # corrupt and every throttle check would fail on it. NORMAL only forgets recent writes.
    sqlite_cache.set("n", 1)
    assert sqlite_cache._db().execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert sqlite_cache._db().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
