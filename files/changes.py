"""The change feed of a workspace: every create, update, move, rename, metadata edit (tags,
description), trash, restore and purge, in order, for sync clients (like Dropbox's
list_folder/continue).

A cursor is the id of the last entry a client has seen. Entries are written by the services in the
same transaction as the change, after taking the workspace's row lock, so within a workspace ids
are in commit order: a client that read up to id N never later finds a new entry below N. Entries
older than CLOUDSTORAGE_CHANGES_DAYS are pruned nightly; a cursor from before the pruned range gets
a 410 (list the tree again), and one past the newest entry, which the feed never handed out, a 400.
Long-polling polls the database (one indexed query a second), so it works across web processes and
hosts, holds no connection while it sleeps, and takes at most CLOUDSTORAGE_CHANGES_WAITERS threads
of a process (the rest are told to back off).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts.locks import workspace_lock
from cloudstorage.errors import ServiceError
from files.models import Change, ChangeFeedFloor, Node

POLL_SECONDS = 1.0
MAX_WAIT = 60
BACKOFF_SECONDS = 5


def change_record(*, node: Node, kind: str, path: str, from_path: str = "", locked: bool = False) -> Change:
    """Append ``kind`` for ``node`` to its workspace's feed; call inside the change's transaction
    (``locked``: the caller holds the workspace's lock already, taken to read the path)."""
    if not locked:
        workspace_lock(node.workspace_id)  # so ids follow commit order (see above)
    return Change.objects.create(
        workspace_id=node.workspace_id,
        kind=kind,
        node_id=node.pk,
        node_type=node.kind,
        parent_id=node.parent_id,
        name=node.name,
        path=path,
        from_path=from_path,
        size=node.size,
        sha256=node.sha256,
        version=node.version,
    )


def changes_record_created(*, nodes_with_paths: list[tuple[Node, str]], locked: bool = False) -> None:
    """A ``create`` for each new node (a copied tree), parents before children; inside the
    transaction (``locked``: the caller holds the workspace's lock already)."""
    if not nodes_with_paths:
        return
    if not locked:
        workspace_lock(nodes_with_paths[0][0].workspace_id)
    Change.objects.bulk_create(
        [
            Change(
                workspace_id=node.workspace_id,
                kind=Change.Kind.CREATE,
                node_id=node.pk,
                node_type=node.kind,
                parent_id=node.parent_id,
                name=node.name,
                path=path,
                size=node.size,
                sha256=node.sha256,
                version=node.version,
            )
            for node, path in nodes_with_paths
        ]
    )


@dataclass
class ChangePage:
    changes: list[Change]
    cursor: int
    has_more: bool
    backoff: int | None = None


def _cursor_expired(floor: int) -> ServiceError:
    return ServiceError(
        code="cursor_expired",
        message="This cursor is too old: the changes after it are no longer kept. List the workspace again "
        "(take a fresh cursor from GET …/changes/ first, then list the folders) and continue from that cursor.",
        status_code=410,
        details={"oldest_cursor": str(floor)},
    )


def _cursor_ahead() -> ServiceError:
    return ServiceError(
        code="invalid_cursor",
        message="This cursor is past the newest change: it is no position this feed returned, and following it "
        "would skip every change until the feed reached it. Take a fresh cursor from GET …/changes/, then list the "
        "workspace again.",
        status_code=400,
    )


def cursor_parse(raw: str | None) -> int | None:
    """The position a client sent (None: none sent); 400 for anything that is not one."""
    if raw in (None, ""):
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise ServiceError(code="invalid_cursor", message="cursor is a value this feed returned.", status_code=400)
    return int(raw)


def latest_cursor(*, workspace_id) -> int:
    """The position of the newest entry (what a client starts from after listing the tree)."""
    last = Change.objects.filter(workspace_id=workspace_id).order_by("-id").values_list("id", flat=True).first()
    return max(last or 0, _floor(workspace_id))


def _floor(workspace_id) -> int:
    return (
        ChangeFeedFloor.objects.filter(workspace_id=workspace_id).values_list("pruned_through", flat=True).first() or 0
    )


_waiters = threading.BoundedSemaphore(max(1, getattr(settings, "CLOUDSTORAGE_CHANGES_WAITERS", 4)))


def changes_list(*, workspace_id, cursor: int, limit: int = 500, wait: int = 0) -> ChangePage:
    """The entries after ``cursor``, oldest first, at most ``limit``; with ``wait`` seconds and none
    yet, wait for the first one (polling; see the module's docstring)."""
    floor = _floor(workspace_id)
    if cursor < floor:
        raise _cursor_expired(floor)
    # Every cursor the feed hands out is an entry's position or the floor, and neither ever goes
    # down (see latest_cursor): one past both was never handed out.
    if cursor > floor and not Change.objects.filter(workspace_id=workspace_id, id__gte=cursor).exists():
        raise _cursor_ahead()
    wait = min(max(wait, 0), MAX_WAIT)
    newer = Change.objects.filter(workspace_id=workspace_id, id__gt=cursor)
    if wait and not newer.exists():
        if not _waiters.acquire(blocking=False):
            return ChangePage(changes=[], cursor=cursor, has_more=False, backoff=BACKOFF_SECONDS)
        try:
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if not connection.in_atomic_block:
                    connection.close()  # sleep without holding a database connection
                time.sleep(min(POLL_SECONDS, max(deadline - time.monotonic(), 0)))
                if newer.exists():
                    break
        finally:
            _waiters.release()
    page = list(newer.order_by("id")[: limit + 1])
    has_more = len(page) > limit
    page = page[:limit]
    return ChangePage(changes=page, cursor=page[-1].id if page else cursor, has_more=has_more)


def changes_prune(*, now: datetime | None = None) -> int:
    """Drop entries older than CLOUDSTORAGE_CHANGES_DAYS and raise each workspace's floor past them,
    so a cursor that pointed into them gets a 410 instead of silently missing changes."""
    cutoff = (now or timezone.now()) - timezone.timedelta(days=settings.CLOUDSTORAGE_CHANGES_DAYS)
    pruned = 0
    workspace_ids = Change.objects.filter(created_at__lt=cutoff).values_list("workspace_id", flat=True).distinct()
    for workspace_id in list(workspace_ids):
        with transaction.atomic():
            workspace_lock(workspace_id)
            old = Change.objects.filter(workspace_id=workspace_id, created_at__lt=cutoff)
            through = old.order_by("-id").values_list("id", flat=True).first()
            if through is None:
                continue
            floor, _ = ChangeFeedFloor.objects.get_or_create(workspace_id=workspace_id)
            if through > floor.pruned_through:
                floor.pruned_through = through
                floor.save(update_fields=["pruned_through"])
            pruned += Change.objects.filter(workspace_id=workspace_id, id__lte=through).delete()[0]
    return pruned
