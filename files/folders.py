"""Folders of the namespace: a child by name, a new folder, a folder path created on the way.

Also the two refusals every write into a folder shares (a name already taken, a parent that is not
a live folder), used by versions, uploads and nodes. Below them all: imports only files.activity
among the namespace's write modules.
"""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction

from accounts.locks import workspace_lock
from cloudstorage.compiled import CompiledQuery
from cloudstorage.errors import ServiceError
from files.activity import author_of, node_path
from files.changes import change_record
from files.models import Change, Node
from files.names import name_clean, name_key
from files.quota import writable_check
from files.tree import ancestor_chain


def child_create(*, user, parent: Node, name: str, kind: str) -> Node:
    """A new live child; the caller checked the name and handles the unique-name IntegrityError."""
    return Node.objects.create(
        workspace_id=parent.workspace_id,
        parent=parent,
        kind=kind,
        name=name,
        name_key=name_key(name),
        created_by=author_of(user),
    )


def name_conflict(name: str, *, existing: Node | None = None) -> ServiceError:
    """The 409 for a name a live sibling already has (with its id, when known)."""
    details = {"name": name}
    if existing is not None:
        details["existing_id"] = str(existing.pk)
    return ServiceError(
        code="name_conflict",
        message=f'An item named "{name}" already exists in this folder.',
        status_code=409,
        details=details,
    )


def folder_writable_check(parent: Node) -> None:
    """Refuse (400 / 409) writing into ``parent`` unless it is a live folder."""
    if not parent.is_folder:
        raise ServiceError(code="not_a_folder", message="The parent is not a folder.", status_code=400)
    if parent.trashed_in_id is not None:
        raise ServiceError(code="in_trash", message="The folder is in the trash.", status_code=409)


def depth_check(*, parent: Node, height: int = 1) -> None:
    """Refuse (400 too_deep) putting ``height`` levels of folders under ``parent`` when the deepest
    would sit more than CLOUDSTORAGE_MAX_FOLDER_DEPTH levels below the root. Fails closed: a parent
    whose walk up does not reach the root (deeper than the walk goes, or a broken chain) is too deep,
    so a folder can never be moved into its own descendant unseen."""
    limit = settings.CLOUDSTORAGE_MAX_FOLDER_DEPTH
    chain = ancestor_chain(node_id=parent.pk)
    reaches_root = bool(chain) and chain[-1][1] is None
    if not reaches_root or len(chain) - 1 + height > limit:
        raise ServiceError(
            code="too_deep",
            message=f"Folders nest at most {limit} levels deep.",
            status_code=400,
            details={"limit": limit},
        )


def folder_height(*, node: Node) -> int:
    """Levels of live folders from ``node`` (a folder: 1) down to its deepest; stops counting past
    the limit (one query per level)."""
    height, level = 1, [node.pk]
    while height <= settings.CLOUDSTORAGE_MAX_FOLDER_DEPTH:
        level = list(
            Node.objects.filter(parent_id__in=level, kind=Node.Kind.FOLDER, trashed_in__isnull=True).values_list(
                "pk", flat=True
            )
        )
        if not level:
            break
        height += 1
    return height


def folder_lock_live(parent: Node) -> None:
    """Inside the caller's transaction: lock the folder about to get a child and check again that it
    is live (409 in_trash otherwise). The caller's copy may have been read before another request
    trashed it, and a child created under a trashed folder would be deleted by its purge with its
    bytes still counted. :func:`files.trash.node_trash` locks each level it trashes, so either it
    waits for this write and takes the new child along, or this write waits and sees the folder
    trashed (SQLite's write transactions run one at a time: the check alone suffices there). Take
    the workspace's lock (accounts.locks.workspace_lock) before this one, as the delete does: the
    other way round the two wait for each other."""
    folder_live_check(Node.objects.select_for_update().filter(pk=parent.pk).only("trashed_in").first())


def folder_live_check(folder: Node | None) -> None:
    """409 in_trash unless ``folder``, read under its row lock (None: gone), is live: the check of
    :func:`folder_lock_live` for a caller that locked the folder's row itself."""
    if folder is None or folder.trashed_in_id is not None:
        raise ServiceError(code="in_trash", message="The folder is in the trash.", status_code=409)


# Every upload and folder creation asks this: compiled once per process (cloudstorage/compiled.py).
_CHILD = CompiledQuery(
    lambda *, parent, key: Node.objects.filter(parent=parent, name_key=key, trashed_in__isnull=True).order_by("pk")[:1],
    parent=Node._meta.get_field("parent"),
    key=Node._meta.get_field("name_key"),
)


def child_get(*, parent: Node, name: str) -> Node | None:
    """The live child of ``parent`` called ``name`` (case-insensitively), if any."""
    return _CHILD.first(parent=parent, key=name_key(name))


def folder_create(*, user, parent: Node, name: str) -> Node:
    """A new empty folder; 409 when a live sibling already has the name."""
    name = name_clean(name)
    folder_writable_check(parent)
    writable_check(workspace=parent.workspace)
    existing = child_get(parent=parent, name=name)
    if existing is not None:
        raise name_conflict(name, existing=existing)
    depth_check(parent=parent)
    try:
        with transaction.atomic():
            workspace_lock(parent.workspace_id)  # first, before the folder (accounts.locks)
            folder_lock_live(parent)
            folder = child_create(user=user, parent=parent, name=name, kind=Node.Kind.FOLDER)
            change_record(node=folder, kind=Change.Kind.CREATE, path=node_path(node=folder), locked=True)
    except IntegrityError:
        raise name_conflict(name, existing=child_get(parent=parent, name=name)) from None
    return folder


def folder_ensure(*, user, parent: Node, names: list[str]) -> Node:
    """The folder ``parent/names[0]/names[1]/...``, creating what is missing (concurrency-safe)."""
    current = parent
    for name in names:
        name = name_clean(name)
        for _ in range(3):
            existing = child_get(parent=current, name=name)
            if existing is not None:
                if not existing.is_folder:
                    raise ServiceError(
                        code="name_conflict",
                        message=f'"{name}" is a file, so a folder of that name cannot be created here.',
                        status_code=409,
                        details={"name": name, "existing_id": str(existing.pk)},
                    )
                current = existing
                break
            try:
                current = folder_create(user=user, parent=current, name=name)
                break
            except ServiceError as error:
                if error.code != "name_conflict":
                    raise
        else:
            raise name_conflict(name)
    return current
