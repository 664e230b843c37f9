"""gunicorn reads this file from the working directory by default (the Procfile's web process and
bench/api.py); command-line flags still win.

Memory: a web process streams uploads and downloads in MiB-sized blocks from several threads, and
every block is a fresh allocation (a body block, a cut chunk, its ciphertext). glibc's defaults give
each thread its own arena and hand freed blocks back to the OS, so the next block of the same size
is faulted in again, page by page: a perf profile of a 512 MiB raw PUT showed ~1,900 minor faults
per MiB and a quarter of the web worker's CPU in the page-fault handler (zeroing fresh pages),
raw PUT 88-117 MB/s. One arena keeps the footprint to what the threads use at once; MiB blocks come
from the heap (mmap threshold 32 MiB), and up to 64 MiB of freed heap is kept for the next block
(top pad and trim threshold): 8-21 faults per MiB, ~30% less CPU per MB, raw PUT 129-160 MB/s, at
+7 MB of peak RSS. After a big transfer ``malloc_trim`` hands the kept memory back, so an idle
worker returns to its baseline. Measured with bench/compare.py (peak RSS of 2 GiB transfers).
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
KEPT_FREE = 64 * 1024 * 1024
BIG_TRANSFER = 64 * 1024 * 1024  # a tus PATCH (16 MiB in the bench) keeps its heap for the next one

_libc = None


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


def post_fork(server, worker):  # noqa: ARG001 - gunicorn's hook signature
    _bounded_malloc()


def post_request(worker, req, environ, resp):  # noqa: ARG001 - gunicorn's hook signature
    # After a big upload or download, hand the freed heap back to the OS so the next one starts
    # from the same baseline (small requests skip this: it costs a walk of the heap).
    if _libc is None:
        return
    try:
        received = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        received = 0
    if received > BIG_TRANSFER or (getattr(resp, "sent", 0) or 0) > BIG_TRANSFER:
        _libc.malloc_trim(0)
