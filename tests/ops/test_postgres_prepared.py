"""Server-side prepared statements on PostgreSQL (cloudstorage/settings.py, DATABASE_PREPARED_STATEMENTS):
a request's statements are prepared once per connection and then only executed, so PostgreSQL does
not parse and plan a listing page's queries for every request; and an operator behind a pooler that
cannot keep them turns them off."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from files.folders import folder_create
from tests.files.sharing_helpers import root_of

ROOT = Path(__file__).resolve().parents[2]


def _settings_options(tmp_path, **extra) -> dict:
    code = (
        "import django, json; django.setup(); from django.conf import settings as s; "
        "print(json.dumps(s.DATABASES['default'].get('OPTIONS', {})))"
    )
    env = {
        "CLOUDSTORAGE_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "cloudstorage.settings",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/nothing",
        "SECRET_KEY": "x" * 50,
        "CLOUDSTORAGE_EMBEDDED": "1",
        "PATH": "",
        **extra,
    }
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_postgresql_prepares_statements_by_default_and_an_operator_can_turn_that_off(tmp_path):
    assert _settings_options(tmp_path) == {"server_side_binding": True, "prepare_threshold": 5}
    assert _settings_options(tmp_path, DATABASE_PREPARED_STATEMENTS="0") == {}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL only (CI's second pass)")
def test_a_listing_repeated_on_one_connection_runs_prepared_statements(api, owner, owner_workspace):
    root = root_of(owner_workspace)
    for n in range(3):
        folder_create(user=owner, parent=root, name=f"f{n}")
    url = f"/api/v1/nodes/{root.pk}/children/"
    for _ in range(settings.PREPARE_THRESHOLD + 1):
        response = api.get(url)
        assert response.status_code == 200
        assert [row["name"] for row in response.json()["results"]] == ["f0", "f1", "f2"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    # The page's query (the folder's live children), the folder with the caller's role, the token.
    assert any('FROM "files_node"' in sql and '"parent_id" = $' in sql for sql in prepared), prepared
    assert any('"accounts_apitoken"' in sql for sql in prepared), prepared


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL only (CI's second pass)")
def test_integers_past_int4_keep_their_value_in_prepared_statements(owner_workspace):
    # Django binds a bare int in an expression as int4: bound on the server, 2**31 wrapped to
    # -2**31, and a 2 GiB upload's quota was added as -2 GiB (the bench's 2 GiB run found it).
    from django.db.models import BigIntegerField, F, Value

    from accounts.models import Workspace
    from files.quota import quota_release, quota_reserve

    Workspace.objects.filter(pk=owner_workspace.pk).update(plan_gb=100)
    for _ in range(settings.PREPARE_THRESHOLD + 1):  # prepared with small values first
        quota_reserve(workspace=owner_workspace, nbytes=10)
    quota_reserve(workspace=owner_workspace, nbytes=2**31)
    quota_reserve(workspace=owner_workspace, nbytes=2**32 + 5)
    owner_workspace.refresh_from_db()
    used = 10 * (settings.PREPARE_THRESHOLD + 1) + 2**31 + 2**32 + 5
    assert owner_workspace.used_bytes == used
    quota_release(workspace=owner_workspace, nbytes=2**32 + 5)
    owner_workspace.refresh_from_db()
    assert owner_workspace.used_bytes == used - 2**32 - 5
    value = (
        Workspace.objects.filter(pk=owner_workspace.pk)
        .annotate(far=Value(2**40, output_field=BigIntegerField()) - F("used_bytes") + 2**33)
        .values_list("far", flat=True)
        .get()
    )
    assert value == 2**40 - (used - 2**32 - 5) + 2**33
