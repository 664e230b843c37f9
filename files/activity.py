"""Who did what, where: a node's path, the author to record and the activity log.

The lowest of the namespace's write modules (folders, content, versions, uploads, nodes and the
trash all record activity or authors): it imports only the models and files.tree.
"""

from __future__ import annotations

from files.models import Activity, Node
from files.tree import folders_up, path_from


def node_path(*, node: Node) -> str:
    """``/a/b/name`` from the workspace root (the root itself is ``/``); one query at any depth."""
    if node.parent_id is None:
        return "/"
    return f"{path_from(folders_up(start_ids=[node.parent_id]), node.parent_id).rstrip('/')}/{node.name}"


def author_of(user):
    """The user to record as author: None for an anonymous caller (a public link)."""
    return user if getattr(user, "is_authenticated", False) else None


def activity_record(
    *, workspace_id, actor, verb: str, node: Node | None = None, details: dict | None = None, path: str | None = None
) -> None:
    """``path`` overrides the node's current path (a trashed or purged node is no longer where it was)."""
    Activity.objects.create(
        workspace_id=workspace_id,
        actor=author_of(actor),
        verb=verb,
        node=node,
        path=path if path is not None else (node_path(node=node) if node is not None else ""),
        details=details or {},
    )
