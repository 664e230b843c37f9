"""Stars: a person's bookmarks on files and folders (the dashboard's Starred view).

A star is the person's own; it never grants anything. What it points to is shown only while the
person may still see it (files.access decides, as everywhere), and never from the trash.
"""

from __future__ import annotations

from files.access import node_permission
from files.models import Node, Star

STARRED_LIMIT = 500


def star_set(*, user, node: Node, starred: bool) -> None:
    """Star or unstar ``node`` (from files.access.node_get_for_user); idempotent."""
    if starred:
        Star.objects.get_or_create(user=user, node=node, defaults={"workspace_id": node.workspace_id})
    else:
        Star.objects.filter(user=user, node=node).delete()


def starred_for_user(*, user) -> list[Node]:
    """The caller's starred nodes they may still see, newest star first, with ``.permission``."""
    nodes = []
    stars = (
        Star.objects.filter(user=user, node__trashed_in__isnull=True)
        .select_related("node")
        .order_by("-created_at")[:STARRED_LIMIT]
    )
    for star in stars:
        permission = node_permission(user=user, node=star.node)
        if permission is not None:
            star.node.permission = permission
            nodes.append(star.node)
    return nodes


def starred_ids(*, user, node_ids) -> set:
    return set(Star.objects.filter(user=user, node_id__in=node_ids).values_list("node_id", flat=True))
