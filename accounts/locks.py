"""The workspace row's lock: what orders concurrent writers of one workspace (its change feed's ids,
its disk placement) on PostgreSQL.

The lock order of a workspace's writers, decided here once: **the workspace row first**, then
the nodes (a move's node and new parent by id, a delete's subtree level by level, a folder a child
goes into), then everything else (versions, manifests, chunks, the quota's UPDATE of this same row).
Every transaction that locks a node and writes a change feed entry takes this lock as its first
statement: files.folders.folder_create, files.versions.content_commit and version_commit,
files.nodes.node_update and node_copy, files.trash.node_trash, trash_restore and node_purge; and
those that lock a row such a writer deletes before they update this one (the quota's used bytes):
files.versions.version_delete (a purge deletes the versions) and files.quota.quota_holds_reclaim
(an upload's commit deletes its hold; an upload cancelling or trimming its hold locks the hold and
then this row, so the reclaim skips a hold locked now instead of waiting for it).

Why first: a delete locks its subtree top-down and a move locks two folders by id, which are two
orders of the same rows (a delete of ``docs`` and a move of ``docs/a/x`` into ``docs/b`` each held
one row the other waited for, and PostgreSQL aborted one: a 500). No one order of node rows suits
every writer, but every one of them needs this row anyway (the feed's entry, written last), so
taking it first makes it the only lock they ever wait for each other on. What it costs: they
already ran one at a time from this lock to their commit, and most hold it for a few statements
(no chunk is written and nothing is fsync'd under it: an upload stores its bytes before its commit
transaction begins). A copy of a large tree and a delete's walk of one hold it throughout, so the
workspace's other writes wait for them. Take it before any node row, never after:
a writer holding a folder and waiting for this row while the holder of this row waits for the
folder is the same deadlock again.
"""

from __future__ import annotations

from django.db import connection

from accounts.models import Workspace


def workspace_lock(workspace_id) -> None:
    """Hold the workspace row's lock until the caller's transaction ends (first: see above). Not
    sent to SQLite, which has no row locks and needs none: its write transactions (IMMEDIATE) take
    the whole database before their first statement."""
    if connection.features.has_select_for_update:
        Workspace.objects.select_for_update().filter(pk=workspace_id).order_by().values_list("pk", flat=True).first()
