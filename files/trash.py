"""The trash: delete moves a subtree there keeping its original path; restore puts it back."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from cloudstorage.errors import ServiceError
from files.models import Node
from files.services import activity_record, node_path


def subtree_ids(*, node: Node, trashed_in=None) -> list:
    """The ids of ``node`` and all its descendants, one query per level of depth."""
    ids = [node.pk]
    level = [node.pk]
    while level:
        level = list(Node.objects.filter(parent_id__in=level, trashed_in=trashed_in).values_list("pk", flat=True))
        ids.extend(level)
    return ids


def node_trash(*, user, node: Node) -> Node:
    """Move ``node`` and its subtree to the trash; its bytes stay counted until purged."""
    if node.parent_id is None:
        raise ServiceError(code="root_folder", message="The root folder cannot be deleted.", status_code=400)
    with transaction.atomic():
        locked = Node.objects.select_for_update().get(pk=node.pk)
        if locked.trashed_in_id is not None:
            raise ServiceError(code="in_trash", message="This item is already in the trash.", status_code=409)
        original = node_path(node=Node.objects.get(pk=locked.parent_id))
        ids = subtree_ids(node=locked)
        Node.objects.filter(pk__in=ids).update(trashed_in=locked)
        locked.trashed_in = locked
        locked.deleted_at = timezone.now()
        locked.deleted_by = user if getattr(user, "is_authenticated", False) else None
        locked.original_path = original
        locked.save(update_fields=["trashed_in", "deleted_at", "deleted_by", "original_path"])
        activity_record(workspace_id=locked.workspace_id, actor=user, verb="delete", node=locked)
    return locked
