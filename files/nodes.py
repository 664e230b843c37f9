"""Node metadata, rename, move and copy (the API's PATCH and copy).

Above the trash (a copy walks a folder's live subtree with files.trash.subtree_ids), which itself
builds on files.activity and files.folders only, so neither imports the other back.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils import timezone

from accounts.locks import workspace_lock
from cloudstorage.errors import ServiceError
from disks.store import ManifestGone, manifest_clone
from files.access import node_get_for_user
from files.activity import activity_record, author_of, node_path
from files.changes import change_record, changes_record_created
from files.folders import (
    child_get,
    depth_check,
    folder_height,
    folder_live_check,
    folder_lock_live,
    folder_writable_check,
    name_conflict,
)
from files.models import Change, FileVersion, Node, Tag
from files.names import name_clean, name_key, name_with_suffix
from files.preconditions import Precondition, precondition_check
from files.quota import Reservation, writable_check
from files.trash import subtree_ids
from files.tree import ancestor_chain
from files.vault_rules import vault_boundary_check

MAX_TAGS = 50
MAX_TAG_LENGTH = 64


def tags_clean(tags: object) -> list[str]:
    """Distinct tags (case-insensitively), stripped, each 1–64 characters without control characters."""
    import unicodedata

    if not isinstance(tags, list | tuple) or not all(isinstance(tag, str) for tag in tags):
        raise ServiceError(code="invalid_tags", message="tags must be a list of strings.", status_code=400)
    if len(tags) > MAX_TAGS:
        raise ServiceError(code="invalid_tags", message=f"At most {MAX_TAGS} tags per item.", status_code=400)
    seen: dict[str, str] = {}
    for tag in tags:
        tag = unicodedata.normalize("NFC", tag).strip()
        if not tag or len(tag) > MAX_TAG_LENGTH:
            raise ServiceError(
                code="invalid_tags", message=f"A tag has 1 to {MAX_TAG_LENGTH} characters.", status_code=400
            )
        if any(unicodedata.category(ch) in {"Cc", "Cf"} for ch in tag):
            raise ServiceError(
                code="invalid_tags", message="A tag may not contain control characters.", status_code=400
            )
        seen.setdefault(tag.casefold(), tag)
    return list(seen.values())


def _invalid_parent(message: str = "The target folder does not exist or is not yours.") -> ServiceError:
    # Unknown and foreign folders get the same answer, so a foreign id's existence is not revealed.
    return ServiceError(code="invalid_parent", message=message, status_code=400)


def target_folder_get(*, user, node: Node, parent_id) -> Node:
    """The live folder ``parent_id`` the caller may write into, in ``node``'s workspace (400 otherwise)."""
    try:
        target = node_get_for_user(user=user, node_id=parent_id, need="edit")
    except Http404:
        raise _invalid_parent() from None
    if target.workspace_id != node.workspace_id:
        raise _invalid_parent("Items can only be moved or copied within their workspace.")
    if not target.is_folder:
        raise ServiceError(code="not_a_folder", message="The target is not a folder.", status_code=400)
    return target


def _refuse_into_itself(*, node: Node, target: Node, verb: str) -> None:
    """A folder goes neither into itself or a subfolder (a cycle cut off from the root) nor deeper
    than the depth limit, whose check also refuses a target whose walk up does not reach the root."""
    if not node.is_folder:
        return
    # Read from the target's row, not the caller's copy of it: that may predate another move.
    if node.pk in {node_id for node_id, _, _ in ancestor_chain(node_id=target.pk)}:
        raise ServiceError(
            code="invalid_move",
            message=f"A folder cannot be {verb} into itself or one of its subfolders.",
            status_code=400,
        )
    depth_check(parent=target, height=folder_height(node=node))


def node_update(
    *,
    user,
    node: Node,
    name: str | None = None,
    parent: Node | None = None,
    tags: list[str] | None = None,
    description: str | None = None,
    precondition: Precondition | None = None,
) -> Node:
    """Rename and/or move ``node`` (one UPDATE of its own row: O(1) whatever the subtree), and set
    its tags and description. ``parent`` is a folder from :func:`target_folder_get`. All or nothing;
    nothing at all when ``precondition`` fails on the node as it is at the commit."""
    changes: dict = {}
    if name is not None:
        name = name_clean(name)
    if tags is not None:
        tags = tags_clean(tags)
    if description is not None:
        if not isinstance(description, str) or len(description) > 10_000:
            raise ServiceError(
                code="invalid_description", message="description is text of at most 10,000 characters.", status_code=400
            )
    if (name is not None and name != node.name) or (parent is not None and parent.pk != node.parent_id):
        if node.parent_id is None:
            raise ServiceError(
                code="root_folder", message="The root folder cannot be renamed or moved.", status_code=400
            )
    if any(value is not None for value in (name, parent, tags, description)):
        writable_check(workspace=node.workspace)
    if parent is not None and parent.pk != node.parent_id:
        _refuse_into_itself(node=node, target=parent, verb="moved")
        vault_boundary_check(node=node, target=parent, verb="moved")
        changes["parent_id"] = parent.pk
    if name is not None and name != node.name:
        changes["name"] = name
        changes["name_key"] = name_key(name)
    target_parent_id = changes.get("parent_id", node.parent_id)
    final_name = changes.get("name", node.name)
    if changes:
        existing = (
            Node.objects.filter(parent_id=target_parent_id, name_key=name_key(final_name), trashed_in__isnull=True)
            .exclude(pk=node.pk)
            .first()
        )
        if existing is not None:
            raise name_conflict(final_name, existing=existing)
    # Whether this may write (and so write a change feed entry): given tags are compared with the
    # node's under the lock, so the lock is taken for them even when they turn out unchanged.
    writes = bool(changes) or tags is not None or (description is not None and description != node.description)
    try:
        with transaction.atomic():
            if writes:
                # The workspace first, before any node (accounts.locks): a delete of a folder above
                # both the node and its new parent locks them top-down, not by id as below, and the
                # two orders deadlocked. Under it too the paths are read for the change feed (as
                # its entry is written), so no folder above renamed by another request between
                # this read and this commit leaves an entry with a path that never existed.
                workspace_lock(node.workspace_id)
            if "parent_id" in changes:
                # The node and its new parent, in one order (by id): two crossing moves (X into Y,
                # Y into X) already queue on the workspace's lock, but the rows' own order must not
                # depend on that. Read whole under that lock, the rows answer the precondition and
                # whether the new parent is still live (folder_lock_live's check), with no second
                # lock on either.
                rows = Node.objects.select_for_update().filter(pk__in=[node.pk, parent.pk]).order_by("pk")
                locked = {row.pk: row for row in rows}
                mine = locked.get(node.pk)
                precondition_check(precondition, mine if mine is not None and mine.trashed_in_id is None else None)
                folder_live_check(locked.get(parent.pk))
            elif precondition is not None or (writes and not changes):
                # A tags or description edit changes no row that says whether the node is live (a
                # rename's UPDATE does): read it under its lock, or an edit of a node trashed since
                # the request read it would land in the trash with a feed entry.
                mine = Node.objects.select_for_update().filter(pk=node.pk, trashed_in__isnull=True).first()
                if mine is None and precondition is None:
                    raise ServiceError(code="in_trash", message="This item is in the trash.", status_code=409)
                precondition_check(precondition, mine)
            if changes:
                if "parent_id" in changes:
                    # Again under the lock every move holds to its commit: a move committed since
                    # the check above (Y into X while this moves X into Y) is seen now, and the
                    # cycle it would close, cut off from the root, is refused.
                    _refuse_into_itself(node=node, target=parent, verb="moved")
                old_path = node_path(node=node)
                changes["modified_at"] = timezone.now()
                updated = Node.objects.filter(pk=node.pk, trashed_in__isnull=True).update(**changes)
                if not updated:
                    raise ServiceError(code="in_trash", message="This item is in the trash.", status_code=409)
                for field, value in changes.items():
                    setattr(node, field, value)
            metadata_changed = False
            if description is not None and description != node.description:
                node.description = description
                Node.objects.filter(pk=node.pk).update(description=description)
                metadata_changed = True
            if tags is not None:
                metadata_changed = _tags_set(node=node, tags=tags) or metadata_changed
            new_path = ""
            if changes:
                verb = "move" if "parent_id" in changes else "rename"
                # A rename stays in its folder: the new path needs no second walk up the tree.
                new_path = f"{old_path.rsplit('/', 1)[0]}/{node.name}" if verb == "rename" else node_path(node=node)
                change_record(node=node, kind=verb, path=new_path, from_path=old_path, locked=True)
                activity_record(
                    workspace_id=node.workspace_id,
                    actor=user,
                    verb=verb,
                    node=node,
                    details={"from": old_path},
                    path=new_path,
                )
            if metadata_changed:
                # A sync client keeping tags and descriptions learns of an edit from the feed like
                # of any other change (it reads the node for the new values). The path is read under
                # the workspace's lock, as a rename's is.
                if not changes:
                    new_path = node_path(node=node)
                change_record(node=node, kind=Change.Kind.METADATA, path=new_path, locked=True)
    except IntegrityError:
        raise name_conflict(final_name) from None
    return node


def _tags_set(*, node: Node, tags: list[str]) -> bool:
    """Make ``node``'s tags exactly ``tags``; whether they were not already."""
    current = {tag.name: tag for tag in Tag.objects.filter(node=node)}
    wanted = set(tags)
    if set(current) == wanted:
        return False
    Tag.objects.filter(node=node).exclude(name__in=wanted).delete()
    Tag.objects.bulk_create(
        [Tag(workspace_id=node.workspace_id, node=node, name=tag) for tag in tags if tag not in current]
    )
    return True


def _copy_name(*, parent: Node, name: str) -> str:
    """``name``, or ``name (copy)``, ``name (copy 2)``… : the first free one in ``parent``."""
    candidate = name
    for n in range(1, 1000):
        if child_get(parent=parent, name=candidate) is None:
            return candidate
        candidate = name_with_suffix(name, " (copy)" if n == 1 else f" (copy {n})")
    raise name_conflict(name)


def node_copy(*, user, node: Node, parent: Node, name: str | None = None) -> Node:
    """Copy a file (its current version) or a folder's live subtree into ``parent``.

    No bytes are copied: each new version gets a manifest sharing the source's chunks; the copy's
    logical bytes are reserved against the quota first (all at once, refused whole). Without an
    explicit ``name`` a clash gets a `` (copy)`` suffix; with one it is a 409.
    """
    folder_writable_check(parent)
    writable_check(workspace=parent.workspace)
    _refuse_into_itself(node=node, target=parent, verb="copied")
    vault_boundary_check(node=node, target=parent, verb="copied")
    if name is not None:
        name = name_clean(name)
        existing = child_get(parent=parent, name=name)
        if existing is not None:
            raise name_conflict(name, existing=existing)
    else:
        name = _copy_name(parent=parent, name=node.name)
    ids = subtree_ids(node=node) if node.is_folder else [node.pk]
    sources = list(
        Node.objects.filter(pk__in=ids, trashed_in__isnull=True)
        .select_related("current_version__manifest")
        .order_by("pk")
    )
    if node.pk not in {source.pk for source in sources}:
        raise ServiceError(code="in_trash", message="This item is in the trash.", status_code=409)
    # One read decides both what is cloned and what is charged. The caller's ``node`` may predate a
    # new version saved meanwhile: cloning its version and charging this read's size left used_bytes
    # off for good. The rows are not locked: a copy must not hold up a writer of its source, and a
    # version committed after this read is simply not the one copied (one thinned meanwhile is
    # refused below, ManifestGone).
    versions = {source.pk: source.current_version for source in sources if source.is_file and source.current_version}
    total = sum(version.size for version in versions.values())
    reservation = Reservation(workspace=parent.workspace, expected=total)
    author = author_of(user)
    try:
        with transaction.atomic():
            workspace_lock(parent.workspace_id)  # first, before the folder (accounts.locks)
            folder_lock_live(parent)
            by_parent: dict = {}
            for source in sources:
                by_parent.setdefault(source.parent_id, []).append(source)
            copies: dict = {}
            created: list[tuple[Node, str]] = []  # (copy, its path), parents first: the change feed
            now = timezone.now()

            def clone(source: Node, into: Node, as_name: str, into_path: str) -> Node:
                copy = Node.objects.create(
                    workspace_id=into.workspace_id,
                    parent=into,
                    kind=source.kind,
                    name=as_name,
                    name_key=name_key(as_name),
                    description=source.description,
                    created_by=author,
                    created_at=now,
                    modified_at=now,
                )
                version = versions.get(source.pk)
                if version is not None:
                    new = FileVersion.objects.create(
                        workspace_id=into.workspace_id,
                        node=copy,
                        number=1,
                        manifest=manifest_clone(manifest=version.manifest),
                        size=version.size,
                        sha256=version.sha256,
                        mime_type=version.mime_type,
                        created_by=author,
                    )
                    copy.version, copy.current_version = 1, new
                    copy.size, copy.sha256, copy.mime_type = new.size, new.sha256, new.mime_type
                    copy.save(update_fields=["version", "current_version", "size", "sha256", "mime_type"])
                copies[source.pk] = copy
                created.append((copy, f"{into_path.rstrip('/')}/{as_name}"))
                return copy

            top = clone(
                next(source for source in sources if source.pk == node.pk), parent, name, node_path(node=parent)
            )
            paths = {node.pk: created[0][1]}
            level = [node.pk]
            while level:
                following = []
                for parent_id in level:
                    for child in by_parent.get(parent_id, []):
                        clone(child, copies[parent_id], child.name, paths[parent_id])
                        paths[child.pk] = created[-1][1]
                        following.append(child.pk)
                level = following
            tags = Tag.objects.filter(node_id__in=list(copies)).values_list("node_id", "name")
            Tag.objects.bulk_create(
                [Tag(workspace_id=parent.workspace_id, node=copies[node_id], name=tag) for node_id, tag in tags]
            )
            changes_record_created(nodes_with_paths=created, locked=True)
            activity_record(
                workspace_id=parent.workspace_id, actor=user, verb="copy", node=top, details={"from": str(node.pk)}
            )
            reservation.settle(total)
    except IntegrityError:
        reservation.cancel()
        raise name_conflict(name) from None
    except ManifestGone:
        # A version it read was dropped meanwhile (a new version thinned it): nothing was copied.
        reservation.cancel()
        raise ServiceError(
            code="changed_meanwhile", message="A file changed while it was being copied; try again.", status_code=409
        ) from None
    except BaseException:
        reservation.cancel()
        raise
    return top
