"""The workspace row's lock: what orders concurrent writers of one workspace (its change feed's ids,
its disk placement) on PostgreSQL."""

from __future__ import annotations

from django.db import connection

from accounts.models import Workspace


def workspace_lock(workspace_id) -> None:
    """Hold the workspace row's lock until the caller's transaction ends. Not sent to SQLite, which
    has no row locks and needs none: its write transactions (IMMEDIATE) take the whole database
    before their first statement."""
    if connection.features.has_select_for_update:
        Workspace.objects.select_for_update().filter(pk=workspace_id).order_by().values_list("pk", flat=True).first()
