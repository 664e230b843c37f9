"""Walking up the folder tree in one query, whatever the depth.

A node stores only its parent (so a move or a rename is one UPDATE); its path, its ancestors for an
access check and a page's breadcrumbs need the chain up to the root. Walking it one SELECT per level
made every request under a deep folder cost a query per level, so the chain is read here with one
recursive CTE, which SQLite (3.8.3+) and PostgreSQL both run.

The lowest layer of files/: it imports only the models (and the plain ServiceError), so access,
selectors and services can all use it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable

from django.db import connections, router
from django.db.models.expressions import RawSQL

from cloudstorage.errors import ServiceError
from files.models import Node

logger = logging.getLogger(__name__)

# UNION ALL with a depth bound rather than UNION: UNION's duplicate check builds a temporary
# b-tree and made the query 3-4x slower on SQLite. Chains that share folders (paths of nodes from
# several folders) are then read more than once, which the caller's dict absorbs; the bound ends
# even a corrupt cycle in the parent pointers.
MAX_DEPTH = 10_000
_ANCESTORS_SQL = """
WITH RECURSIVE chain(id, parent_id, name, depth) AS (
    SELECT id, parent_id, name, 0 FROM {table} WHERE id IN ({starts})
    UNION ALL
    SELECT n.id, n.parent_id, n.name, c.depth + 1 FROM {table} n JOIN chain c ON n.id = c.parent_id
    WHERE c.depth < {max_depth}
)
SELECT {columns} FROM chain {rest}
"""


def _as_uuid(value) -> uuid.UUID | None:
    # SQLite hands back the 32 hex digits it stores; PostgreSQL a UUID.
    if value is None or isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(value)


def folders_up(*, start_ids: Iterable) -> dict:
    """``{id: (parent id, name)}`` for the nodes ``start_ids`` and all their ancestors: one query."""
    starts = [start for start in dict.fromkeys(start_ids) if start is not None]
    if not starts:
        return {}
    alias = router.db_for_read(Node)
    connection = connections[alias]
    pk = Node._meta.pk
    sql = _ANCESTORS_SQL.format(
        table=connection.ops.quote_name(Node._meta.db_table),
        starts=", ".join(["%s"] * len(starts)),
        max_depth=MAX_DEPTH,
        columns="id, parent_id, name",
        rest="",
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [pk.get_db_prep_value(start, connection) for start in starts])
        rows = cursor.fetchall()
    return {_as_uuid(node_id): (_as_uuid(parent_id), name) for node_id, parent_id, name in rows}


def chain_ids_sql(*, node_id) -> RawSQL:
    """The ids of ``node_id`` and all its ancestors as a subquery (``filter(node_id__in=...)``), so
    that a lookup by the chain is one query with it."""
    connection = connections[router.db_for_read(Node)]
    sql = _ANCESTORS_SQL.format(
        table=connection.ops.quote_name(Node._meta.db_table),
        starts="%s",
        max_depth=MAX_DEPTH,
        columns="id",
        rest="",
    )
    # The SQL is our own constant text (table name quoted by the backend); the id is a parameter.
    return RawSQL(sql, [Node._meta.pk.get_db_prep_value(node_id, connection)])  # noqa: S611


def ancestor_chain(*, node_id) -> list[tuple]:
    """``[(id, parent id, name), ...]`` from ``node_id`` up to the root, the node first."""
    known = folders_up(start_ids=[node_id])
    chain = []
    current = _as_uuid(node_id) if not isinstance(node_id, uuid.UUID) else node_id
    while current is not None and current in known and len(chain) <= len(known):
        parent_id, name = known[current]
        chain.append((current, parent_id, name))
        current = parent_id
    return chain


def path_from(known: dict, node_id) -> str:
    """``/a/b/name`` of ``node_id`` from a ``folders_up`` answer (the root itself is ``/``)."""
    names = []
    current = node_id
    while current in known and known[current][0] is not None and len(names) <= len(known):
        parent_id, name = known[current]
        names.append(name)
        current = parent_id
    return "/" + "/".join(reversed(names))


def cycle_error(*, node_id) -> ServiceError:
    """The refusal of a walk down the tree that meets ``node_id`` a second time: a cycle in the parent
    pointers (which no write makes; one left by an older bug must end the walk, not spin it)."""
    logger.error("Folder %s lies inside itself: a cycle in the parent pointers", node_id)
    return ServiceError(
        code="broken_tree",
        message="This folder lies inside itself (a damaged tree); an operator has to repair it.",
        status_code=409,
        details={"id": str(node_id)},
    )
