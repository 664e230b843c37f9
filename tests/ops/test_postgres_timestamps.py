"""Timestamps on PostgreSQL are parsed by psycopg's C loader (cloudstorage/postgresql/base.py), with
exactly the values and time zone Django's own pure-Python loader gives."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.db.backends.postgresql.psycopg_any import get_adapters_template
from psycopg.pq import Format

from cloudstorage.postgresql.base import TIMESTAMPTZ
from files.models import Node

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL only (CI's second pass)")

INSTANTS = [
    "2026-12-07 20:26:03.976392+00",
    "1901-03-04 05:06:07+00",
    "1969-12-31 23:59:59.999999+00",
    "2999-12-31 23:59:59.5+05:30",
    "0001-01-01 00:00:00+00",
]


def test_timestamps_read_equal_what_djangos_loader_reads_and_are_aware_utc(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(f"'{value}'::timestamptz" for value in INSTANTS))
        read = cursor.fetchone()
        conn = cursor.connection
    djangos = get_adapters_template(True, datetime.UTC).get_loader(TIMESTAMPTZ, Format.TEXT)(TIMESTAMPTZ, conn)
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(f"('{value}'::timestamptz)::text" for value in INSTANTS))
        texts = cursor.fetchone()
    expected = tuple(djangos.load(text.encode()) for text in texts)
    assert read == expected
    assert all(value.tzinfo is datetime.UTC for value in read)
    assert read[3] == datetime.datetime(2999, 12, 31, 18, 29, 59, 500000, tzinfo=datetime.UTC)
    assert conn.adapters.get_loader(TIMESTAMPTZ, Format.TEXT).__name__ == "FastTzLoader"  # in use


def test_a_models_datetimes_survive_the_round_trip(owner_workspace):
    root = Node.objects.get(workspace=owner_workspace, parent__isnull=True)
    moment = datetime.datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=datetime.UTC)
    Node.objects.filter(pk=root.pk).update(modified_at=moment)
    assert Node.objects.get(pk=root.pk).modified_at == moment
    assert Node.objects.values_list("modified_at", flat=True).get(pk=root.pk).tzinfo is datetime.UTC
