"""Django's PostgreSQL backend, with the per-request health check skipped on a connection that
has just been used, and timestamps parsed by psycopg's C loader.

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
from functools import lru_cache

import psycopg
from django.db.backends.postgresql import base
from django.db.backends.postgresql.operations import DatabaseOperations as BaseDatabaseOperations
from django.db.backends.postgresql.psycopg_any import BaseTzLoader
from psycopg import adapt
from psycopg.pq import Format
from psycopg.types.numeric import Int2, Int4, Int8

FRESH = 1.0  # seconds
TIMESTAMPTZ = psycopg.adapters.types["timestamptz"].oid


@lru_cache
def _adapters_with_fast_timestamps(template: adapt.AdaptersMap, tz) -> adapt.AdaptersMap:
    """Django's adapters with its timestamptz loader parsing through psycopg's C loader.

    Django loads every timestamptz with a subclass of psycopg's pure-Python loader (to set the
    time zone it wants), so the C implementation psycopg[binary] brings is never used for them: a
    listing page of 100 rows parsed 200 timestamps in Python, ~5 % of its CPU on PostgreSQL (cProfile,
    2026-12-07). This one is the same class as far as Django can tell (``timezone``, the same
    ``replace``), with the parsing done by the loader psycopg registers by default (its C one when
    installed)."""
    parser = psycopg.adapters.get_loader(TIMESTAMPTZ, Format.TEXT)

    class FastTzLoader(BaseTzLoader):
        timezone = tz

        def __init__(self, oid, context=None):
            super().__init__(oid, context)
            self._parse = parser(oid, context).load

        def load(self, data):
            value = self._parse(data)
            # In a UTC session (Django's with USE_TZ) it already is; replace() costs more than the parse.
            return value if value.tzinfo is tz else value.replace(tzinfo=tz)

    adapters = adapt.AdaptersMap(template)
    adapters.register_loader(TIMESTAMPTZ, FastTzLoader)
    return adapters


# The bound of each type Django may give a bare integer (int2, int4), past which it goes as int8.
_INT_LIMITS = {Int2: 2**15, Int4: 2**31}


class DatabaseOperations(BaseDatabaseOperations):
    def adapt_integerfield_value(self, value, internal_type):
        """Django's, with a value too big for the type Django chose sent as int8.

        Django types every integer it binds by its field, and a bare Python int in an expression
        (``F("used_bytes") + nbytes``, ``Value(start)``) is an IntegerField to it: int4. Rendered
        in the SQL text (client-side binding) the type never reached PostgreSQL; bound on the server
        (prepared statements, see settings), 2**31 went as int4 and wrapped to -2**31: a 2 GiB
        upload's quota was added as -2 GiB (tests/ops/test_postgres_prepared.py)."""
        value = super().adapt_integerfield_value(value, internal_type)
        limit = _INT_LIMITS.get(type(value))
        if limit is not None and not -limit <= value < limit:
            return Int8(value)
        return value


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
    used_at = float("-inf")

    def get_connection_params(self):
        params = super().get_connection_params()
        if "context" in params:
            params["context"] = _adapters_with_fast_timestamps(params["context"], self.timezone)
        return params

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
