"""The one place that decides who may do what to a node (STYLE.md habit 1).

Permissions, weakest first: ``view`` (read, download), ``edit`` (write inside: upload, rename,
move, delete, share no more than one has), ``manage`` (a workspace's owners and admins: also link
policies, activity, emptying the trash). A workspace member's role gives the permission on every
node of the workspace; a share gives it on the shared node's subtree. Anyone else gets a 404, never
a 403, so the existence of a node is not revealed.
"""

from __future__ import annotations

from django.http import Http404

from accounts.models import Membership, Workspace
from cloudstorage.errors import ServiceError
from files.models import Node, Share

LEVELS = {"view": 1, "edit": 2, "manage": 3}
ROLE_PERMISSION = {
    Membership.Role.OWNER: "manage",
    Membership.Role.ADMIN: "manage",
    Membership.Role.MEMBER: "edit",
    Membership.Role.VIEWER: "view",
}


def permission_at_least(permission: str | None, need: str) -> bool:
    return permission is not None and LEVELS[permission] >= LEVELS[need]


def workspace_permission(*, user, workspace_id) -> str | None:
    """The permission a membership gives on every node of the workspace, or None."""
    if not getattr(user, "is_authenticated", False):
        return None
    role = Membership.objects.filter(workspace_id=workspace_id, user=user).values_list("role", flat=True).first()
    return ROLE_PERMISSION.get(role) if role else None


def node_ancestor_ids(*, node: Node) -> list:
    """Ids from the node up to the root (the node first); one small query per level."""
    ids = [node.pk]
    parent_id = node.parent_id
    while parent_id is not None:
        ids.append(parent_id)
        parent_id = Node.objects.filter(pk=parent_id).values_list("parent_id", flat=True).first()
    return ids


def node_permission(*, user, node: Node) -> str | None:
    """The caller's permission on ``node``: from their membership, else the strongest share of an
    ancestor (or the node itself); None when they have no business with it."""
    permission = workspace_permission(user=user, workspace_id=node.workspace_id)
    if permission is not None:
        return permission
    if not getattr(user, "is_authenticated", False):
        return None
    shares = set(
        Share.objects.filter(user=user, node_id__in=node_ancestor_ids(node=node)).values_list("permission", flat=True)
    )
    if Share.Permission.EDIT in shares:
        return "edit"
    if Share.Permission.VIEW in shares:
        return "view"
    return None


def _refuse(need: str) -> ServiceError:
    what = {"view": "see", "edit": "change", "manage": "manage"}[need]
    return ServiceError(
        code="permission_denied", message=f"You do not have permission to {what} this item.", status_code=403
    )


def node_get_for_user(*, user, node_id, need: str = "view", trashed: bool = False) -> Node:
    """The node with ``.permission`` set, if the caller may ``need`` it.

    404 when the node does not exist, is in the trash (unless ``trashed``) or is none of the
    caller's business; 403 when they may see it but not do ``need``. ``trashed=True`` returns only
    trashed roots (the trash routes) and requires a membership: shares do not reach the trash.
    """
    node = Node.objects.select_related("workspace").filter(pk=node_id).first() if _is_uuid(node_id) else None
    if node is None:
        raise Http404
    if trashed:
        if node.deleted_at is None:
            raise Http404
        permission = workspace_permission(user=user, workspace_id=node.workspace_id)
    else:
        if node.trashed_in_id is not None:
            raise Http404
        permission = node_permission(user=user, node=node)
    if permission is None:
        raise Http404
    if not permission_at_least(permission, need):
        raise _refuse(need)
    node.permission = permission
    return node


def workspace_get_for_user(*, user, workspace_id, need: str = "view") -> Workspace:
    """A workspace the caller is a member of with at least ``need``; 404 otherwise (403 if too weak)."""
    if not _is_uuid(workspace_id):
        raise Http404
    permission = workspace_permission(user=user, workspace_id=workspace_id)
    if permission is None:
        raise Http404
    if not permission_at_least(permission, need):
        raise _refuse(need)
    workspace = Workspace.objects.get(pk=workspace_id)
    workspace.permission = permission
    return workspace


def _is_uuid(value) -> bool:
    import uuid

    if isinstance(value, uuid.UUID):
        return True
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True
