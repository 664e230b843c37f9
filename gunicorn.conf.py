"""gunicorn reads this file from the working directory by default (the Procfile's web process and
bench/api.py); command-line flags still win.

Memory: a web process streams uploads and downloads in MiB-sized blocks from several threads. With
glibc's defaults each thread gets its own malloc arena and the mmap threshold adapts upwards until
such blocks are carved from the arenas, where fragmentation keeps them: RSS then grows with traffic.
Fixing the mmap threshold hands every large block straight back to the OS when freed, and two arenas
are plenty for a few threads. Measured by bench/api.py (peak RSS during a 2 GiB upload/download).
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
BIG_TRANSFER = 1024 * 1024

_libc = None


def _bounded_malloc() -> None:
    global _libc
    name = ctypes.util.find_library("c")
    if not name:
        return
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt(M_MMAP_THRESHOLD, 256 * 1024)
        libc.mallopt(M_ARENA_MAX, 2)
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
