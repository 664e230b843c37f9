"""The web worker's allocator settings (gunicorn.conf.py's post_fork): MiB-sized blocks freed by one
request are reused by the next instead of being handed back to the OS and faulted in again, page by
page (a quarter of the worker's CPU in a perf profile of a raw PUT), also after every view module
has been imported (as a worker's first request does; files/api/tus.py used to set its own mmap
threshold on import). The previous settings (a 256 KiB mmap threshold) fail this with ~256 faults
per MiB."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# The settings are glibc's (musl and macOS have other allocators); on glibc they must take effect.
pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the allocator settings are glibc's")

PROBE = r"""
import resource, runpy, sys, threading
import django
django.setup()
conf = runpy.run_path("gunicorn.conf.py")
conf["post_fork"](None, None)
if conf["post_fork"].__globals__["_libc"] is None:
    sys.exit("post_fork set no allocator options on this glibc")
from django.urls import get_resolver
get_resolver().url_patterns  # every view module, as a worker's first request imports them

def churn():
    # What a request does per chunk: a body block, a chunk, a ciphertext (1-4 MiB each).
    for size in [1 << 20, 3 << 20, 2 << 20, 4 << 20] * 40:
        block = b"x" * size
        del block

churn()  # the first round may grow the heap
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
threads = [threading.Thread(target=churn) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
mib = 4 * 40 * 10
print(f"{faults / mib:.2f}")
"""


def _last_line(code: str, env: dict | None = None) -> str:
    """Run ``code`` in a fresh Python process; the last line it printed (it must succeed)."""
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def _run_embedded(code: str, tmp_path) -> str:
    """``_last_line`` of ``code`` in a process configured as the embedded default (SQLite, var in tmp_path)."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(DJANGO_SETTINGS_MODULE="cloudstorage.settings", CLOUDSTORAGE_VAR_DIR=str(tmp_path), DEBUG="0")
    env["CLOUDSTORAGE_EMBEDDED"] = "1"
    return _last_line(code, env)


def test_freed_blocks_are_reused_without_page_faults(tmp_path):
    last = _run_embedded(PROBE, tmp_path)
    # A block faulted in afresh costs 256 faults per MiB (4 KiB pages); reused heap costs ~none.
    assert float(last) < 8, f"{last} minor faults per MiB allocated"


IDLE = r"""
import runpy, sys, time
conf = runpy.run_path("gunicorn.conf.py")
hooks = conf["post_fork"].__globals__
conf["post_fork"](None, None)
if hooks["_libc"] is None:
    sys.exit("post_fork set no allocator options on this glibc")

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024

base = rss()
blocks = [b"x" * (4 << 20) for _ in range(12)]  # a transfer's 48 MiB, then freed: the heap keeps it
del blocks
kept = rss()
conf["post_request"](None, None, {"CONTENT_LENGTH": str(64 << 20)}, None)
time.sleep(hooks["IDLE_TRIM"] * 2)
print((kept - base) >> 20, (rss() - base) >> 20)
"""


def test_an_idle_worker_hands_the_kept_heap_back(tmp_path):
    last = _last_line(IDLE)
    kept, after = (int(n) for n in last.split())
    assert kept >= 32, f"the freed 48 MiB were not kept ({kept} MiB): the test proves nothing"
    assert after <= 8, f"{after} MiB still resident a second after the last big transfer"


NO_PSYCOPG = r"""
import importlib, pkgutil, sys
import django
django.setup()
from django.test import Client
from django.urls import get_resolver
get_resolver().url_patterns  # every view module, as a web worker's first request imports them
# A request through every middleware and Django REST framework's request path.
assert Client().get("/api/v1/workspaces/").status_code == 401
pg_only = ("disks.tails_pg", "cloudstorage.postgresql")  # the PostgreSQL-only modules
for package in ("cloudstorage", "accounts", "files", "disks", "billing"):
    for module in pkgutil.walk_packages(importlib.import_module(package).__path__, package + "."):
        if not module.name.startswith(pg_only) and ".migrations." not in module.name:
            importlib.import_module(module.name)  # the worker's tasks and beat's schedule too
print(sorted(name for name in sys.modules if name.split(".")[0] == "psycopg")[:5])
"""


def test_the_embedded_default_never_loads_psycopg(tmp_path):
    # psycopg added ~10 MB to a web worker's RSS (24 MB to a bare interpreter's). Django REST
    # framework imports it (through django.contrib.postgres.fields) whenever it is installed, and
    # the PostgreSQL tail code of tus uploads did at import; on SQLite neither is of any use.
    loaded = _run_embedded(NO_PSYCOPG, tmp_path)
    assert loaded == "[]", loaded


GARBAGE = r"""
import runpy, weakref
import django
django.setup()
conf = runpy.run_path("gunicorn.conf.py")
if "post_worker_init" in conf:
    conf["post_worker_init"](None)
else:
    from django.urls import get_resolver
    get_resolver().url_patterns  # what a worker holds once its first request has been served

class View:
    pass

freed = 0

def free():
    global freed
    freed += 1

# Requests as a worker's threads serve them: four in flight, each a view in a reference cycle (as
# DRF's view, request and response are) holding a page of 100 rows; the oldest finishes as the next
# starts. Its rows go only when the cyclic collector finds the dead view.
in_flight, worst = [], 0
for n in range(3000):
    view = View()
    view.itself = view
    view.rows = [{"id": i, "name": f"file-{i}.txt", "tags": []} for i in range(100)]
    weakref.finalize(view, free)
    in_flight.append(view)
    del view
    if len(in_flight) > 4:
        in_flight.pop(0)
    worst = max(worst, n + 1 - freed - len(in_flight))
print(worst)
"""


def test_a_worker_collects_finished_requests_garbage_promptly(tmp_path):
    # With CPython's defaults a worker holding ~120,000 objects let ~170 finished requests pile up
    # (and a listing load left it 12-15 MB larger for good); frozen and collected more often, ~20.
    worst = int(_run_embedded(GARBAGE, tmp_path))
    assert worst <= 50, f"up to {worst} finished requests waited for the cyclic collector at once"


UNUSED = r"""
import runpy, sys
# As a gunicorn worker: the WSGI application (and what its module imports, such as the WebDAV app)
# is loaded before post_worker_init.
import cloudstorage.wsgi
conf = runpy.run_path("gunicorn.conf.py")
conf["post_worker_init"](None)
from django.test import Client
client = Client()
# Through DRF's request path, its JSON and its browsable API (HTML) renderers.
assert client.get("/api/v1/workspaces/").status_code == 401
assert client.get("/api/v1/workspaces/", HTTP_ACCEPT="text/html").status_code == 401
loaded = sorted(name for name in ("requests", "pygments") if name in sys.modules)
import requests  # still importable by whatever needs it later
print(loaded, requests.get.__module__)
"""


def test_a_web_worker_leaves_unused_optional_packages_unloaded(tmp_path):
    # DRF's compat module imports requests and pygments whenever they are installed (~5 MB of a
    # worker's RSS); a web worker uses neither, and they stay importable.
    loaded = _run_embedded(UNUSED, tmp_path)
    assert loaded == "[] requests.api", loaded


SQLITE_PAGES = r"""
import ctypes, threading
import _sqlite3
import django
django.setup()
from django.db import connection
sqlite = ctypes.CDLL(_sqlite3.__file__)  # the SQLite library Python's module uses
sqlite.sqlite3_memory_used.restype = ctypes.c_int64
with connection.cursor() as cursor:
    cursor.execute("CREATE TABLE pages (id INTEGER PRIMARY KEY, data BLOB)")
    cursor.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 64) "
        "INSERT INTO pages (data) SELECT randomblob(256 * 1024) FROM n"
    )
connection.close()
# Four request threads, each reading 16 MiB of rows through its own connection, which lives on
# (as a web worker's do between requests) while the memory is measured.
read, done = threading.Barrier(5), threading.Event()

def request():
    with connection.cursor() as cursor:
        cursor.execute("SELECT data FROM pages")
        assert len(cursor.fetchall()) == 64
    read.wait()
    done.wait()

threads = [threading.Thread(target=request) for _ in range(4)]
for thread in threads:
    thread.start()
read.wait()
print(sqlite.sqlite3_memory_used() >> 20)
done.set()
for thread in threads:
    thread.join()
"""


def test_sqlite_connections_share_a_bounded_page_cache(tmp_path):
    # Each connection kept up to 2 MB of pages, and a worker has one per thread (~10 MB after tus
    # uploads, whose tails are stored in the database); the process-wide soft limit keeps ~4 MiB.
    used = int(_run_embedded(SQLITE_PAGES, tmp_path))
    assert used <= 5, f"SQLite holds {used} MiB for four connections"
