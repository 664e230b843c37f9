"""The trash: delete moves a subtree there keeping its original path; restore puts it back; purge
deletes it forever and gives its bytes and quota back.

Every node of a trashed subtree points ``trashed_in`` at the subtree's root (the trash entry), so
an item deleted earlier from inside a folder that is deleted later keeps its own entry. A trashed
subtree still counts against the quota until it is purged. Restore and purge both lock the entry's
row first and re-check that it is still in the trash, so they never interleave: a purge racing a
restore either finds the item restored (and does nothing) or purges it before the restore starts
(which then answers 404).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.locks import workspace_lock
from accounts.models import Workspace
from cloudstorage.errors import ServiceError
from disks.store import manifest_release
from files.activity import activity_record, author_of, node_path
from files.changes import change_record
from files.folders import child_get, folder_ensure
from files.models import Change, FileVersion, Node
from files.names import name_key, name_with_suffix
from files.preconditions import Precondition, precondition_check
from files.quota import quota_release

logger = logging.getLogger(__name__)

RESTORED_SUFFIX = " (restored)"


def subtree_ids(*, node: Node, trashed_in=None, lock: bool = False) -> list:
    """The ids of ``node`` and all its descendants, one query per level of depth; with ``lock``,
    each level's rows are locked as they are read (inside the caller's transaction)."""
    ids = [node.pk]
    seen = {node.pk}
    level = [node.pk]
    while level:
        rows = Node.objects.filter(parent_id__in=level, trashed_in=trashed_in)
        # An id seen before would be a cycle in the parent pointers: the walk would never end.
        level = [
            pk for pk in (rows.select_for_update() if lock else rows).values_list("pk", flat=True) if pk not in seen
        ]
        seen.update(level)
        ids.extend(level)
    return ids


def _workspace_id(node: Node):
    """``node``'s workspace, to lock before the node (a caller may know the id alone). A node never
    changes workspace, so the row needs no lock to read it; one that is gone reads as None and
    its own lookup answers for it."""
    if node.workspace_id is not None:
        return node.workspace_id
    return Node.objects.filter(pk=node.pk).values_list("workspace_id", flat=True).first()


def trash_path(*, node: Node) -> str:
    """Where a trash entry was when it was deleted (``/docs/report.pdf``)."""
    parent = node.original_path.rstrip("/")
    return f"{parent}/{node.name}"


def trash_retention() -> timedelta:
    return timedelta(days=settings.CLOUDSTORAGE_TRASH_DAYS)


def node_trash(*, user, node: Node, precondition: Precondition | None = None) -> Node:
    """Move ``node`` and its subtree to the trash; its bytes stay counted until purged. With a
    ``precondition`` (If-Match / If-None-Match), only if it holds on the locked row (412 otherwise):
    a sync client's delete of the version it saw must not trash a newer one."""
    if node.parent_id is None:
        raise ServiceError(code="root_folder", message="The root folder cannot be deleted.", status_code=400)
    with transaction.atomic():
        # The workspace first, the subtree after (accounts.locks): a move between two of its
        # folders locks them by id, not top-down, and in another order than this walk would
        # deadlock with it; both wait here instead. Under it, no rename above the item slips
        # between the read of its path (for the feed and the restore) and the commit.
        workspace_lock(node.workspace_id)
        locked = Node.objects.select_for_update().get(pk=node.pk)
        if locked.trashed_in_id is not None:
            raise ServiceError(code="in_trash", message="This item is already in the trash.", status_code=409)
        precondition_check(precondition, locked)
        # Level by level under row locks: a request creating or moving a child into one of these
        # folders (it locks its folder, files.folders.folder_lock_live, after the workspace's lock
        # and so after this whole walk) either finished first, and its child is found at the next
        # level, or waits and finds its folder trashed.
        ids = subtree_ids(node=locked, lock=True)
        Node.objects.filter(pk__in=ids).update(trashed_in=locked)
        original = node_path(node=Node.objects.get(pk=locked.parent_id))
        locked.trashed_in = locked
        locked.deleted_at = timezone.now()
        locked.deleted_by = author_of(user)
        locked.original_path = original
        locked.save(update_fields=["trashed_in", "deleted_at", "deleted_by", "original_path"])
        change_record(node=locked, kind=Change.Kind.TRASH, path=trash_path(node=locked), locked=True)
        activity_record(
            workspace_id=locked.workspace_id, actor=user, verb="delete", node=locked, path=trash_path(node=locked)
        )
    return locked


def trash_list(*, workspace: Workspace) -> QuerySet[Node]:
    """The workspace's trash entries, newest first, each annotated with ``trashed_bytes`` (what a
    purge would free: every version of every file of the subtree)."""
    trashed_bytes = (
        FileVersion.objects.filter(node__trashed_in=OuterRef("pk"))
        .values("node__trashed_in")
        .annotate(total=Sum("size"))
        .values("total")
    )
    return (
        Node.objects.filter(workspace=workspace, deleted_at__isnull=False)
        .select_related("deleted_by")
        .annotate(trashed_bytes=Coalesce(Subquery(trashed_bytes), 0))
        .order_by("-deleted_at", "-pk")
    )


def _restore_parent(*, user, node: Node) -> Node:
    """The folder a trash entry goes back to: its original parent while that is live, else the
    original path, re-creating the folders that are missing."""
    parent = Node.objects.select_for_update().filter(pk=node.parent_id).first()  # as folder_lock_live
    # A purge of a folder moves the entries deleted earlier from inside it under the root (their
    # original parent is gone); the original path says where they really were.
    moved_to_root = parent is not None and parent.parent_id is None and node.original_path not in ("", "/")
    if parent is not None and parent.trashed_in_id is None and not moved_to_root:
        return parent
    current = Node.objects.get(workspace_id=node.workspace_id, parent__isnull=True)
    for name in (name for name in node.original_path.split("/") if name):
        existing = child_get(parent=current, name=name)
        if existing is not None and not existing.is_folder:
            # A file took the folder's name meanwhile: re-create the folder beside it, renamed.
            name = _free_name(parent=current, name=name)
        current = folder_ensure(user=user, parent=current, names=[name])
    return current


def _free_name(*, parent: Node, name: str) -> str:
    """``name``, or ``name (restored)``, ``name (restored 2)``… whichever is free in ``parent``."""
    candidate, attempt = name, 1
    while child_get(parent=parent, name=candidate) is not None:
        suffix = RESTORED_SUFFIX if attempt == 1 else f" (restored {attempt})"
        candidate = name_with_suffix(name, suffix)
        attempt += 1
    return candidate


def trash_restore(*, user, node: Node) -> Node:
    """Put a trash entry back where it was, re-creating missing parent folders and renaming it
    (``report (restored).pdf``) when its name is taken there now. Its shares and links work again."""
    workspace_id = _workspace_id(node)
    for _ in range(3):
        try:
            with transaction.atomic():
                # The workspace first (accounts.locks): the parent it goes back to is locked next,
                # as a delete of that folder locks it after the workspace too.
                workspace_lock(workspace_id)
                locked = Node.objects.select_for_update().filter(pk=node.pk, deleted_at__isnull=False).first()
                if locked is None:
                    raise ServiceError(code="not_in_trash", message="This item is not in the trash.", status_code=404)
                was = trash_path(node=locked)
                parent = _restore_parent(user=user, node=locked)
                name = _free_name(parent=parent, name=locked.name)
                locked.parent = parent
                locked.name = name
                locked.name_key = name_key(name)
                locked.trashed_in = None
                locked.deleted_at = None
                locked.deleted_by = None
                locked.original_path = ""
                locked.save(
                    update_fields=[
                        "parent",
                        "name",
                        "name_key",
                        "trashed_in",
                        "deleted_at",
                        "deleted_by",
                        "original_path",
                    ]
                )
                Node.objects.filter(trashed_in=locked).update(trashed_in=None)
                path = node_path(node=locked)
                change_record(node=locked, kind=Change.Kind.RESTORE, path=path, from_path=was, locked=True)
                activity_record(
                    workspace_id=locked.workspace_id,
                    actor=user,
                    verb="restore",
                    node=locked,
                    path=path,
                    details={"from": was} if path != was else {},
                )
            return locked
        except IntegrityError:
            # Someone took the name between our check and the save: pick another.
            continue
    raise ServiceError(
        code="name_conflict", message="The item could not be restored: its name keeps being taken.", status_code=409
    )


def node_purge(*, user=None, node: Node, older_than: datetime | None = None) -> bool:
    """Delete a trash entry forever: every version's manifest is released (chunks nothing else
    references are collected later by the store's GC, so a chunk shared with a live file survives)
    and its bytes leave the quota. With ``older_than``, only if it was deleted at or before then.
    Idempotent: False when the entry is gone, was restored meanwhile or is too recent."""
    workspace_id = _workspace_id(node)
    with transaction.atomic():
        # The workspace first (accounts.locks), as a restore of this entry or of one inside it.
        workspace_lock(workspace_id)
        entries = Node.objects.select_for_update().filter(pk=node.pk, deleted_at__isnull=False)
        if older_than is not None:
            entries = entries.filter(deleted_at__lte=older_than)
        locked = entries.select_related("workspace").first()
        if locked is None:
            return False
        members = list(Node.objects.filter(trashed_in=locked).values_list("pk", flat=True))
        # A live item under a trashed folder (left by a write that raced the trash before folders
        # were locked) would go with the folder by cascade, its versions' bytes counted for ever:
        # it goes as a member.
        level, seen = members, set(members)
        while level:
            level = list(Node.objects.filter(parent_id__in=level, trashed_in__isnull=True).values_list("pk", flat=True))
            level = [pk for pk in level if pk not in seen]  # an id seen before: a cycle, no end
            seen.update(level)
            members.extend(level)
        # Items deleted earlier from inside this subtree are trash entries of their own, with their
        # own retention: keep them (under the root; they remember their original path).
        root_id = Node.objects.filter(workspace_id=locked.workspace_id, parent__isnull=True).values_list(
            "pk", flat=True
        )
        Node.objects.filter(parent_id__in=members, deleted_at__isnull=False).exclude(trashed_in=locked).update(
            parent_id=root_id.get()
        )
        versions = list(FileVersion.objects.filter(node_id__in=members).select_related("manifest"))
        freed = sum(version.size for version in versions)
        Node.objects.filter(pk__in=members).update(current_version=None)
        FileVersion.objects.filter(pk__in=[version.pk for version in versions]).delete()
        for version in versions:
            manifest_release(manifest=version.manifest)
        quota_release(workspace=locked.workspace, nbytes=freed)
        path = trash_path(node=locked)
        change_record(node=locked, kind=Change.Kind.PURGE, path=path, locked=True)
        Node.objects.filter(pk__in=members).delete()
        activity_record(
            workspace_id=locked.workspace_id,
            actor=user,
            verb="purge",
            path=path,
            details={
                "bytes": freed,
                "versions": len(versions),
                "items": len(members),
                "expired": older_than is not None,
            },
        )
    return True


def trash_empty(*, user, workspace: Workspace) -> int:
    """Purge every trash entry of the workspace; returns how many entries went."""
    ids = list(Node.objects.filter(workspace=workspace, deleted_at__isnull=False).values_list("pk", flat=True))
    return sum(1 for node_id in ids if node_purge(user=user, node=Node(pk=node_id, workspace_id=workspace.pk)))


def trash_purge_expired(*, now: datetime | None = None) -> int:
    """Purge, in every workspace, what has been in the trash longer than CLOUDSTORAGE_TRASH_DAYS.
    Safe to run again or concurrently: each entry is re-checked under its row lock."""
    cutoff = (now or timezone.now()) - trash_retention()
    rows = list(Node.objects.filter(deleted_at__lte=cutoff).order_by("deleted_at").values_list("pk", "workspace_id"))
    purged = 0
    for node_id, workspace_id in rows:
        try:
            purged += node_purge(node=Node(pk=node_id, workspace_id=workspace_id), older_than=cutoff)
        except Exception:
            # One broken entry must not keep the rest of the trash forever; the next run retries it.
            logger.exception("could not purge trash entry %s", node_id)
    return purged
