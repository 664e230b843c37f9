"""gunicorn reads this file from the working directory by default (the Procfile's web process and
bench/api.py); command-line flags still win.

Memory: a web process streams uploads and downloads in MiB-sized blocks from several threads, and
every block is a fresh allocation (a body block, a cut chunk, its ciphertext). glibc's defaults give
each thread its own arena and hand freed blocks back to the OS, so the next block of the same size
is faulted in again, page by page: a perf profile of a 512 MiB raw PUT showed ~1,900 minor faults
per MiB and a quarter of the web worker's CPU in the page-fault handler (zeroing fresh pages),
raw PUT 88-117 MB/s. One arena keeps the footprint to what the threads use at once; MiB blocks come
from the heap (mmap threshold 32 MiB), and up to 64 MiB of freed heap is kept for the next block
(top pad and trim threshold): 8-21 faults per MiB, ~30% less CPU per MB, raw PUT 129-160 MB/s.

What is kept is handed back (``malloc_trim``) once the worker has moved no big body for a second,
by a thread of its own: not after every big request, because a tus upload is a string of PATCHes
(5 MiB each from the dashboard) and trimming between them faulted every PATCH's memory in afresh
(tus ~20% slower); an idle worker still returns to its baseline before the next transfer starts.
Measured with bench/compare.py (peak RSS of 2 GiB transfers) and tests/ops/test_worker_memory.py.

Garbage: every Django REST framework request leaves reference cycles (the view, its request and its
response refer to each other), so a response's rows are freed by the cyclic collector, not by
reference counts. With several requests in flight, their objects outlive young collections and die
in the oldest generation, which CPython collects only once it has grown by a quarter of the ~120,000
objects the imported modules hold: a worker's 16-connection listing load left up to ~7 MB of dead
pages queued, and the pools they were spread over stayed resident after they were freed (+12-15 MB
per worker that never went back). So each worker freezes what it holds once its application and
views are loaded (those objects live as long as the process and are never scanned again) and runs
the oldest generation after every second middle one: a full collection then scans only what
requests left, ~2.5 ms, and what a load leaves behind dropped to 0-5 MB.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys
import threading
import time

M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
KEPT_FREE = 64 * 1024 * 1024
BIG_TRANSFER = 1024 * 1024
IDLE_TRIM = 1.0  # seconds without a big transfer before the kept heap goes back
GC_MIDDLE, GC_OLDEST = 2, 1  # CPython's defaults are 10 and 10 (the young threshold stays at 700)
# Optional packages Django REST framework's compat module imports whenever they are installed, for
# features a web worker never uses: requests for DRF's test client (the vault client needs it
# installed), pygments to highlight the browsable API's markdown (markdown is not installed).
# Hidden while the views load, DRF takes its path for a site without them: ~5 MB less per worker.
UNUSED_OPTIONAL = ("requests", "pygments")

_libc = None
_big_ended = 0.0  # when the last big transfer ended (monotonic); 0.0 once trimmed since


def _bounded_malloc() -> None:
    global _libc
    name = ctypes.util.find_library("c")
    if not name:
        return
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt(M_ARENA_MAX, 1)
        libc.mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024)  # glibc's largest on 64-bit
        libc.mallopt(M_TOP_PAD, KEPT_FREE)
        libc.mallopt(M_TRIM_THRESHOLD, KEPT_FREE)
        libc.malloc_trim  # noqa: B018 - glibc only
    except (OSError, AttributeError):
        return  # not glibc (musl, macOS): their allocators do not need this
    _libc = libc


def _trim_when_idle() -> None:
    global _big_ended
    while True:
        time.sleep(IDLE_TRIM / 4)
        ended = _big_ended
        if ended and time.monotonic() - ended >= IDLE_TRIM:
            # A transfer starting meanwhile only loses free pages, never live memory.
            _big_ended = 0.0
            _libc.malloc_trim(0)


def post_fork(server, worker):  # noqa: ARG001 - gunicorn's hook signature
    _bounded_malloc()
    if _libc is not None:
        threading.Thread(target=_trim_when_idle, name="malloc-trim", daemon=True).start()


def post_worker_init(worker):  # noqa: ARG001 - gunicorn's hook signature
    from django.urls import get_resolver

    hidden = [name for name in UNUSED_OPTIONAL if name not in sys.modules]
    sys.modules.update(dict.fromkeys(hidden))  # None: "not installed" to an import statement
    try:
        get_resolver().url_patterns  # noqa: B018 - imports every view module, as the first request would
    finally:
        for name in hidden:
            del sys.modules[name]  # whatever imports one later (Stripe's client may) gets it
    gc.collect()
    gc.freeze()
    # CPython waits for the oldest generation to grow by a quarter of its size at the last full
    # collection, which counted what is frozen now; this one counts only what is left.
    gc.collect()
    gc.set_threshold(gc.get_threshold()[0], GC_MIDDLE, GC_OLDEST)


def post_request(worker, req, environ, resp):  # noqa: ARG001 - gunicorn's hook signature
    # Small requests are not counted: trimming costs a walk of the heap.
    global _big_ended
    if _libc is None:
        return
    try:
        received = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        received = 0
    if received > BIG_TRANSFER or (getattr(resp, "sent", 0) or 0) > BIG_TRANSFER:
        _big_ended = time.monotonic()
