"""Real threads racing on PostgreSQL's row locks: the race tests' shared pieces."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

postgres_only = pytest.mark.skipif(
    connection.vendor == "sqlite",
    reason="SQLite's in-memory test database serialises writers; the race needs PostgreSQL (CI's second pass)",
)


def race(*jobs):
    """Run each job in a thread of its own, all released at once; their results or exceptions."""
    barrier = threading.Barrier(len(jobs))
    results: list = [None] * len(jobs)

    def run(index, job):
        try:
            barrier.wait()
            results[index] = job()
        except BaseException as exc:  # noqa: BLE001 - inspected by the caller
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(n, job)) for n, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
