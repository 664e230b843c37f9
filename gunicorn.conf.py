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


def _bounded_malloc() -> None:
    name = ctypes.util.find_library("c")
    if not name:
        return
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt(M_MMAP_THRESHOLD, 256 * 1024)
        libc.mallopt(M_ARENA_MAX, 2)
    except (OSError, AttributeError):
        return  # not glibc (musl, macOS): their allocators do not need this


def post_fork(server, worker):  # noqa: ARG001 - gunicorn's hook signature
    _bounded_malloc()
