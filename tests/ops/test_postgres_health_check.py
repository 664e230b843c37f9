"""The PostgreSQL backend's health check (cloudstorage/postgresql/base.py), against the real server:
skipped on a connection used within the last second, and still replacing a connection the server
dropped while it sat idle."""

from __future__ import annotations

import time

import pytest
from django.db import OperationalError, connection, connections

from cloudstorage.postgresql import base

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL only (CI's second pass)"),
]


@pytest.fixture
def db_conn():
    conn = connections.create_connection("default")
    assert isinstance(conn, base.DatabaseWrapper)
    yield conn
    conn.close()


def _server_drops(conn) -> None:
    """What a server restart does to the connection: its backend is terminated."""
    pid = conn.connection.info.backend_pid
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    time.sleep(0.1)


def _new_request(conn) -> None:
    """What Django does when a request starts (close_old_connections)."""
    conn.close_if_unusable_or_obsolete()


def _select_one(conn) -> int:
    with conn.cursor() as cursor:
        cursor.execute("SELECT 1")
        return cursor.fetchone()[0]


def test_a_connection_the_server_dropped_while_idle_is_replaced_before_the_request_uses_it(db_conn):
    assert _select_one(db_conn) == 1
    _server_drops(db_conn)
    db_conn.used_at -= base.FRESH  # idle for longer than FRESH
    _new_request(db_conn)
    assert _select_one(db_conn) == 1  # checked, found dead, replaced: the request never sees it


def test_a_connection_used_within_the_last_second_is_not_checked_and_a_failure_replaces_it(db_conn):
    assert _select_one(db_conn) == 1
    _server_drops(db_conn)
    _new_request(db_conn)
    # Used a moment ago: no SELECT 1 went out, so the drop is found by the request's own query
    # (the trade-off the module states), which fails once...
    with pytest.raises(OperationalError):
        _select_one(db_conn)
    # ...and when that request ends the connection is replaced: the next request works.
    _new_request(db_conn)
    assert _select_one(db_conn) == 1
