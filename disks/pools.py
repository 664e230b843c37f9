"""Thread pools of the chunk store, one per purpose, created lazily and again after a fork.

Hashing, AES-GCM, file writes and fsync all release the GIL on large buffers, so a few threads
overlap them on the machine's cores and disks. No pool thread ever touches the database: Django
connections belong to the thread that opened them (and an in-memory SQLite test database to one).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

_pools: dict[str, tuple[int, ThreadPoolExecutor]] = {}
_lock = threading.Lock()


def pool(name: str, *, workers: int) -> ThreadPoolExecutor:
    """The process's pool called ``name`` (threads do not survive a fork: Celery's prefork workers
    get a new one)."""
    with _lock:
        entry = _pools.get(name)
        if entry is None or entry[0] != os.getpid():
            entry = (os.getpid(), ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"chunk-{name}"))
            _pools[name] = entry
        return entry[1]
