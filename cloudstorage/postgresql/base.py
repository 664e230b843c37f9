"""Django's PostgreSQL backend, with the per-request health check skipped on a connection that
has just been used.

With CONN_HEALTH_CHECKS Django sends ``SELECT 1`` before each request's first query, so that a
connection the server dropped while it sat idle (a restart, an idle timeout in between) is replaced
instead of failing the request. Measured on a 2-core machine with wrk (16 connections), that round
trip was 0.3-0.4 ms of a web worker's CPU per request: ~5 % of a listing page, ~8 % of
GET /api/v1/workspaces/. A connection whose last cursor was opened less than ``FRESH`` seconds ago,
with no error since, is taken as alive. What that gives up: when the server restarts, a request
started within that second on a connection of the old server fails once (as it would without the
check at all); the error is noticed when that request ends and the connection is replaced.
"""

from __future__ import annotations

import time

from django.db.backends.postgresql import base

FRESH = 1.0  # seconds


class DatabaseWrapper(base.DatabaseWrapper):
    used_at = float("-inf")

    def create_cursor(self, name=None):
        self.used_at = time.monotonic()
        return super().create_cursor(name)

    def close_if_health_check_failed(self):
        if (
            self.connection is not None
            and self.health_check_enabled
            and not self.health_check_done
            and not self.errors_occurred
            and time.monotonic() - self.used_at < FRESH
        ):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()
