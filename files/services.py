"""Writes of the namespace: folders, uploads and versions (trash, shares and links have their own modules).

An upload streams through the chunk store with bounded memory while its quota is reserved; the
file or its new version becomes visible in one transaction only after every chunk has its write
quorum, so a crash at any point leaves no visible partial file and no leaked quota (a pending
manifest is collected by the store's GC).
"""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import filetype
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Workspace
from cloudstorage.errors import ServiceError
from disks.store import (
    Manifest,
    StorageFullError,
    StoreError,
    manifest_release,
    manifest_writer,
)
from files.changes import change_record, changes_record_created
from files.models import Activity, Change, FilesPolicy, FileVersion, Node
from files.names import name_clean, name_key, name_with_suffix
from files.preconditions import Precondition, precondition_check
from files.quota import Reservation, quota_release, writable_check
from files.tree import folders_up, path_from
from files.vault_rules import vault_boundary_check

logger = logging.getLogger(__name__)

# Bytes asked of a stream at a time. For a request body that is gunicorn's largest recv(): it hands
# back what was asked for and re-buffers the rest, so asking for less (256 KiB) made it copy its
# whole buffer again on every call, ~7 copies of each byte; 1 MiB costs 2.
READ_BLOCK = 1024 * 1024
SNIFF_BYTES = 8192


def node_path(*, node: Node) -> str:
    """``/a/b/name`` from the workspace root (the root itself is ``/``); one query at any depth."""
    if node.parent_id is None:
        return "/"
    return f"{path_from(folders_up(start_ids=[node.parent_id]), node.parent_id).rstrip('/')}/{node.name}"


def author_of(user):
    """The user to record as author: None for an anonymous caller (a public link)."""
    return user if getattr(user, "is_authenticated", False) else None


def _child_create(*, user, parent: Node, name: str, kind: str) -> Node:
    """A new live child; the caller checked the name and handles the unique-name IntegrityError."""
    return Node.objects.create(
        workspace_id=parent.workspace_id,
        parent=parent,
        kind=kind,
        name=name,
        name_key=name_key(name),
        created_by=author_of(user),
    )


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


def _conflict(name: str, *, existing: Node | None = None) -> ServiceError:
    details = {"name": name}
    if existing is not None:
        details["existing_id"] = str(existing.pk)
    return ServiceError(
        code="name_conflict",
        message=f'An item named "{name}" already exists in this folder.',
        status_code=409,
        details=details,
    )


def _writable_folder(parent: Node) -> None:
    if not parent.is_folder:
        raise ServiceError(code="not_a_folder", message="The parent is not a folder.", status_code=400)
    if parent.trashed_in_id is not None:
        raise ServiceError(code="in_trash", message="The folder is in the trash.", status_code=409)


def child_get(*, parent: Node, name: str) -> Node | None:
    """The live child of ``parent`` called ``name`` (case-insensitively), if any."""
    return Node.objects.filter(parent=parent, name_key=name_key(name), trashed_in__isnull=True).first()


def folder_create(*, user, parent: Node, name: str) -> Node:
    """A new empty folder; 409 when a live sibling already has the name."""
    name = name_clean(name)
    _writable_folder(parent)
    writable_check(workspace=parent.workspace)
    existing = child_get(parent=parent, name=name)
    if existing is not None:
        raise _conflict(name, existing=existing)
    try:
        with transaction.atomic():
            folder = _child_create(user=user, parent=parent, name=name, kind=Node.Kind.FOLDER)
            change_record(node=folder, kind=Change.Kind.CREATE, path=node_path(node=folder))
    except IntegrityError:
        raise _conflict(name, existing=child_get(parent=parent, name=name)) from None
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
            raise _conflict(name)
    return current


def mime_type_guess(*, name: str, head: bytes) -> str:
    """From the content's magic bytes when they are telling, else from the name."""
    kind = filetype.guess(head) if head else None
    if kind is not None:
        return kind.mime
    guessed, _ = mimetypes.guess_type(name, strict=False)
    if guessed:
        return guessed
    if head and b"\0" not in head[:SNIFF_BYTES]:
        try:
            head[:SNIFF_BYTES].decode("utf-8")
            return "text/plain"
        except UnicodeDecodeError as error:
            # A multi-byte character cut at the end of the sample is still text.
            if error.start >= len(head[:SNIFF_BYTES]) - 4:
                return "text/plain"
    return "application/octet-stream"


def _blocks(stream) -> Iterator[bytes]:
    read = getattr(stream, "read", None)
    if read is None:
        yield from stream
        return
    while True:
        block = read(READ_BLOCK)
        if not block:
            return
        yield block


@dataclass
class StoredContent:
    """A complete, durable content whose quota is reserved, not yet attached to a file."""

    manifest: Manifest
    reservation: Reservation
    head: bytes

    def discard(self) -> None:
        self.reservation.cancel()
        try:
            manifest_release(manifest=self.manifest)
        except Exception:
            logger.exception("could not release manifest %s (GC will)", self.manifest.pk)


def _store_error(error: StoreError) -> ServiceError:
    if isinstance(error, StorageFullError):
        return ServiceError(
            code="storage_full",
            message="The storage is full; operators have been alerted. Try again later.",
            status_code=507,
        )
    return ServiceError(
        code="storage_unavailable", message=f"The storage could not take the upload: {error}", status_code=503
    )


class ContentSink:
    """Push-style storing of one content: ``write`` blocks as they arrive, then ``finish``.

    What an upload handler needs (Django's multipart parser pushes data at us). Quota is reserved
    as bytes arrive: all of ``size`` up front when the exact size is known; else ``size_bound`` (an
    upper bound such as the rest of the request body) when it fits, so concurrent uploads cannot
    each grab a big step near the limit; else in steps. ``finish`` trims the reservation to the exact
    size, so a multi-file request never holds more than it will keep.
    """

    def __init__(self, *, workspace: Workspace, size: int | None = None, size_bound: int | None = None):
        writable_check(workspace=workspace)
        self.size = size
        self.received = 0
        self.head = bytearray()
        self.reservation = Reservation(workspace=workspace, expected=size)
        if size is None and size_bound:
            try:
                self.reservation.add(size_bound)
            except ServiceError as error:
                if error.code != "quota_exceeded":
                    raise
        try:
            self.writer = manifest_writer(workspace=workspace)
        except StoreError as error:
            self.reservation.cancel()
            raise _store_error(error) from error
        except BaseException:
            self.reservation.cancel()
            raise

    def write(self, block: bytes) -> None:
        try:
            self.received += len(block)
            self.reservation.grow(self.received)
            if len(self.head) < SNIFF_BYTES:
                self.head += block[: SNIFF_BYTES - len(self.head)]
            self.writer.write(block)
        except StoreError as error:
            self.abort()
            raise _store_error(error) from error
        except BaseException:
            self.abort()
            raise

    def finish(self) -> StoredContent:
        try:
            if self.size is not None and self.received != self.size:
                raise ServiceError(
                    code="size_mismatch",
                    message=f"The upload ended after {self.received} of {self.size} declared bytes.",
                    status_code=400,
                )
            manifest = self.writer.finish()
        except StoreError as error:
            self.abort()
            raise _store_error(error) from error
        except BaseException:
            self.abort()
            raise
        self.reservation.trim(self.received)
        return StoredContent(manifest=manifest, reservation=self.reservation, head=bytes(self.head))

    def abort(self) -> None:
        """Give everything back (idempotent)."""
        self.writer.abort()
        self.reservation.cancel()


def content_store(*, workspace: Workspace, stream: object | Iterable[bytes], size: int | None = None) -> StoredContent:
    """Stream bytes into the chunk store, reserving quota as they arrive (all of it up front when
    ``size`` is known, so an upload that cannot fit is refused before a byte is stored)."""
    sink = ContentSink(workspace=workspace, size=size)
    try:
        for block in _blocks(stream):
            sink.write(block)
    except BaseException:
        sink.abort()
        raise
    return sink.finish()


def _next_version(*, node: Node, user, content: StoredContent, mime_type: str, restored_from: int | None = None):
    """Attach ``content`` to the locked ``node`` as its next version (inside a transaction)."""
    number = node.version + 1
    version = FileVersion.objects.create(
        workspace_id=node.workspace_id,
        node=node,
        number=number,
        manifest=content.manifest,
        size=content.manifest.size,
        sha256=content.manifest.sha256,
        mime_type=mime_type,
        created_by=author_of(user),
        restored_from=restored_from,
    )
    node.version = number
    node.current_version = version
    node.size = version.size
    node.sha256 = version.sha256
    node.mime_type = mime_type
    node.modified_at = timezone.now()
    node.save(update_fields=["version", "current_version", "size", "sha256", "mime_type", "modified_at"])
    content.reservation.settle(version.size)
    # Kept on the version for the caller's activity entry and response: one path query, not two.
    version.node_path = node_path(node=node)
    change_record(node=node, kind=Change.Kind.CREATE if number == 1 else Change.Kind.UPDATE, path=version.node_path)
    return version


def content_commit(
    *,
    user,
    parent: Node,
    name: str,
    content: StoredContent,
    replace: bool = True,
    precondition: Precondition | None = None,
) -> FileVersion:
    """Make stored content visible as ``parent/name``: a new file, or a new version of the file of
    that name (``replace``); refused (and the content discarded) when a folder has the name or the
    ``precondition`` fails on what is there now (checked under the row lock)."""
    try:
        name = name_clean(name)
        _writable_folder(parent)
        for _ in range(3):
            try:
                with transaction.atomic():
                    existing = (
                        Node.objects.select_for_update()
                        .filter(parent=parent, name_key=name_key(name), trashed_in__isnull=True)
                        .first()
                    )
                    precondition_check(precondition, existing)
                    if existing is not None:
                        if existing.is_folder or not replace:
                            raise _conflict(name, existing=existing)
                        node = existing
                    else:
                        node = _child_create(user=user, parent=parent, name=name, kind=Node.Kind.FILE)
                    version = _next_version(
                        node=node, user=user, content=content, mime_type=mime_type_guess(name=name, head=content.head)
                    )
                break
            except IntegrityError:
                # A concurrent upload created the same name first: become a version of it.
                continue
        else:
            raise _conflict(name)
    except BaseException:
        content.discard()
        raise
    if version.number > 1:
        # A first version has nothing older to thin.
        transaction.on_commit(lambda: _versions_thin_later(version.node_id))
    return version


def version_commit(
    *,
    user,
    node: Node,
    content: StoredContent,
    restored_from: int | None = None,
    precondition: Precondition | None = None,
) -> FileVersion:
    """Make stored content the next version of the file ``node`` (if ``precondition`` still holds)."""
    try:
        with transaction.atomic():
            locked = Node.objects.select_for_update().get(pk=node.pk)
            if not locked.is_file or locked.trashed_in_id is not None:
                raise ServiceError(
                    code="not_a_file", message="Only a live file can get a new version.", status_code=409
                )
            precondition_check(precondition, locked)
            version = _next_version(
                node=locked,
                user=user,
                content=content,
                mime_type=mime_type_guess(name=locked.name, head=content.head)
                if content.head or not restored_from
                else locked.mime_type,
                restored_from=restored_from,
            )
    except BaseException:
        content.discard()
        raise
    transaction.on_commit(lambda: _versions_thin_later(node.pk))
    return version


def file_upload(
    *, user, parent: Node, name: str, stream, size: int | None = None, precondition: Precondition | None = None
) -> FileVersion:
    """Upload ``stream`` as ``parent/name``: a new file, or a new version of the file of that name.
    A failing ``precondition`` is refused before the body is read, and again at the commit."""
    name = name_clean(name)
    _writable_folder(parent)
    existing = child_get(parent=parent, name=name)
    precondition_check(precondition, existing)
    if existing is not None and existing.is_folder:
        raise _conflict(name, existing=existing)
    content = content_store(workspace=parent.workspace, stream=stream, size=size)
    return content_commit(user=user, parent=parent, name=name, content=content, precondition=precondition)


def file_upload_version(
    *, user, node: Node, stream, size: int | None = None, precondition: Precondition | None = None
) -> FileVersion:
    """Upload ``stream`` as a new version of the file ``node`` (if ``precondition`` holds, before and after)."""
    if not node.is_file:
        raise ServiceError(code="not_a_file", message="Only a file has versions.", status_code=400)
    precondition_check(precondition, node)
    content = content_store(workspace=node.workspace, stream=stream, size=size)
    return version_commit(user=user, node=node, content=content, precondition=precondition)


def policy_for(*, workspace_id) -> FilesPolicy:
    policy = FilesPolicy.objects.filter(workspace_id=workspace_id).first()
    return policy or FilesPolicy(workspace_id=workspace_id)


def version_delete(*, version: FileVersion) -> None:
    """Drop an old version: its manifest is released and its bytes leave the quota."""
    with transaction.atomic():
        deleted, _ = FileVersion.objects.filter(pk=version.pk).exclude(node__current_version=version.pk).delete()
        if not deleted:
            return
        quota_release(workspace=version.workspace, nbytes=version.size)
        manifest_release(manifest=version.manifest)


def versions_thin(*, node_id) -> int:
    """Apply the workspace's version policy to one file: keep the last N versions (and, with an age
    limit, none older than it), never the current one and never a pinned one. Returns how many went."""
    node = Node.objects.filter(pk=node_id).select_related("workspace").first()
    if node is None or not node.is_file:
        return 0
    policy = policy_for(workspace_id=node.workspace_id)
    versions = list(FileVersion.objects.filter(node=node).select_related("workspace", "manifest").order_by("-number"))
    cutoff = timezone.now() - timezone.timedelta(days=policy.keep_days) if policy.keep_days else None
    removed = 0
    for index, version in enumerate(versions):
        if version.pk == node.current_version_id or version.pinned:
            continue
        if index >= policy.keep_versions or (cutoff is not None and version.created_at < cutoff):
            version_delete(version=version)
            removed += 1
    return removed


def _versions_thin_later(node_id) -> None:
    try:
        versions_thin(node_id=node_id)
    except Exception:
        # Thinning only frees space; the nightly job retries what failed here.
        logger.exception("could not thin the versions of node %s", node_id)


def version_restore(*, user, node: Node, number: int) -> FileVersion:
    """Rollback: a new version with the content of version ``number`` (history is never rewritten)."""
    from disks.store import manifest_clone

    old = FileVersion.objects.filter(node=node, number=number).select_related("manifest").first()
    if old is None:
        raise ServiceError(code="not_found", message=f"This file has no version {number}.", status_code=404)
    writable_check(workspace=node.workspace)
    reservation = Reservation(workspace=node.workspace, expected=old.size)
    try:
        manifest = manifest_clone(manifest=old.manifest)
    except BaseException:
        reservation.cancel()
        raise
    content = StoredContent(manifest=manifest, reservation=reservation, head=b"")
    version = version_commit(user=user, node=node, content=content, restored_from=number)
    FileVersion.objects.filter(pk=version.pk).update(mime_type=old.mime_type)
    Node.objects.filter(pk=node.pk, current_version=version).update(mime_type=old.mime_type)
    version.mime_type = old.mime_type
    return version


def workspace_usage_recount(*, workspace: Workspace) -> int:
    """Set ``used_bytes`` to the sum of every version's size (an operator's repair tool; uploads in
    flight would be forgotten, so run it when the workspace is quiet)."""
    from django.db.models import Sum

    total = FileVersion.objects.filter(workspace=workspace).aggregate(total=Sum("size"))["total"] or 0
    Workspace.objects.filter(pk=workspace.pk).update(used_bytes=total)
    return total


# --- Metadata, rename, move, copy (the API's PATCH and copy) ----------------------------------------

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
    from django.http import Http404

    from files.access import node_get_for_user

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
    from files.access import node_ancestor_ids

    if node.is_folder and node.pk in node_ancestor_ids(node=target):
        raise ServiceError(
            code="invalid_move",
            message=f"A folder cannot be {verb} into itself or one of its subfolders.",
            status_code=400,
        )


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
            raise _conflict(final_name, existing=existing)
    old_path = node_path(node=node) if changes else ""
    try:
        with transaction.atomic():
            if precondition is not None:
                locked = Node.objects.select_for_update().filter(pk=node.pk, trashed_in__isnull=True).first()
                precondition_check(precondition, locked)
            if changes:
                changes["modified_at"] = timezone.now()
                updated = Node.objects.filter(pk=node.pk, trashed_in__isnull=True).update(**changes)
                if not updated:
                    raise ServiceError(code="in_trash", message="This item is in the trash.", status_code=409)
                for field, value in changes.items():
                    setattr(node, field, value)
            if description is not None and description != node.description:
                node.description = description
                Node.objects.filter(pk=node.pk).update(description=description)
            if tags is not None:
                _tags_set(node=node, tags=tags)
            if changes:
                verb = "move" if "parent_id" in changes else "rename"
                # A rename stays in its folder: the new path needs no second walk up the tree.
                new_path = f"{old_path.rsplit('/', 1)[0]}/{node.name}" if verb == "rename" else node_path(node=node)
                change_record(node=node, kind=verb, path=new_path, from_path=old_path)
                activity_record(
                    workspace_id=node.workspace_id,
                    actor=user,
                    verb=verb,
                    node=node,
                    details={"from": old_path},
                    path=new_path,
                )
    except IntegrityError:
        raise _conflict(final_name) from None
    return node


def _tags_set(*, node: Node, tags: list[str]) -> None:
    from files.models import Tag

    current = {tag.name: tag for tag in Tag.objects.filter(node=node)}
    wanted = set(tags)
    Tag.objects.filter(node=node).exclude(name__in=wanted).delete()
    Tag.objects.bulk_create(
        [Tag(workspace_id=node.workspace_id, node=node, name=tag) for tag in tags if tag not in current]
    )


def _copy_name(*, parent: Node, name: str) -> str:
    """``name``, or ``name (copy)``, ``name (copy 2)``… : the first free one in ``parent``."""
    candidate = name
    for n in range(1, 1000):
        if child_get(parent=parent, name=candidate) is None:
            return candidate
        candidate = name_with_suffix(name, " (copy)" if n == 1 else f" (copy {n})")
    raise _conflict(name)


def node_copy(*, user, node: Node, parent: Node, name: str | None = None) -> Node:
    """Copy a file (its current version) or a folder's live subtree into ``parent``.

    No bytes are copied: each new version gets a manifest sharing the source's chunks; the copy's
    logical bytes are reserved against the quota first (all at once, refused whole). Without an
    explicit ``name`` a clash gets a `` (copy)`` suffix; with one it is a 409.
    """
    from disks.store import manifest_clone
    from files.trash import subtree_ids

    _writable_folder(parent)
    writable_check(workspace=parent.workspace)
    _refuse_into_itself(node=node, target=parent, verb="copied")
    vault_boundary_check(node=node, target=parent, verb="copied")
    if name is not None:
        name = name_clean(name)
        existing = child_get(parent=parent, name=name)
        if existing is not None:
            raise _conflict(name, existing=existing)
    else:
        name = _copy_name(parent=parent, name=node.name)
    ids = subtree_ids(node=node) if node.is_folder else [node.pk]
    sources = list(
        Node.objects.filter(pk__in=ids, trashed_in__isnull=True)
        .select_related("current_version__manifest")
        .order_by("pk")
    )
    total = sum(source.current_version.size for source in sources if source.is_file and source.current_version)
    reservation = Reservation(workspace=parent.workspace, expected=total)
    author = author_of(user)
    try:
        with transaction.atomic():
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
                version = source.current_version if source.is_file else None
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

            top = clone(node, parent, name, node_path(node=parent))
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
            from files.models import Tag

            tags = Tag.objects.filter(node_id__in=list(copies)).values_list("node_id", "name")
            Tag.objects.bulk_create(
                [Tag(workspace_id=parent.workspace_id, node=copies[node_id], name=tag) for node_id, tag in tags]
            )
            changes_record_created(nodes_with_paths=created)
            activity_record(
                workspace_id=parent.workspace_id, actor=user, verb="copy", node=top, details={"from": str(node.pk)}
            )
            reservation.settle(total)
    except IntegrityError:
        reservation.cancel()
        raise _conflict(name) from None
    except BaseException:
        reservation.cancel()
        raise
    return top


def version_pin(*, user, node: Node, number: int, pinned: bool) -> FileVersion:
    """Pin a version (the version policy never removes it) or unpin it."""
    version = FileVersion.objects.filter(node=node, number=number).first()
    if version is None:
        raise ServiceError(code="not_found", message=f"This file has no version {number}.", status_code=404)
    if version.pinned != pinned:
        version.pinned = pinned
        version.save(update_fields=["pinned"])
        activity_record(
            workspace_id=node.workspace_id,
            actor=user,
            verb="pin" if pinned else "unpin",
            node=node,
            details={"version": number},
        )
        if not pinned:
            transaction.on_commit(lambda: _versions_thin_later(node.pk))
    return version


def version_policy_set(*, workspace: Workspace, keep_versions: int, keep_days: int | None) -> FilesPolicy:
    """Set a workspace's version policy and apply it to its files with more versions than it keeps."""
    if not isinstance(keep_versions, int) or keep_versions < 1 or keep_versions > 10_000:
        raise ServiceError(code="invalid_policy", message="keep_versions is 1 to 10,000.", status_code=400)
    if keep_days is not None and (not isinstance(keep_days, int) or keep_days < 1 or keep_days > 36_500):
        raise ServiceError(code="invalid_policy", message="keep_days is empty or 1 to 36,500.", status_code=400)
    policy, _ = FilesPolicy.objects.get_or_create(workspace=workspace)
    policy.keep_versions = keep_versions
    policy.keep_days = keep_days
    policy.save(update_fields=["keep_versions", "keep_days"])
    transaction.on_commit(lambda: versions_thin_workspace(workspace_id=workspace.pk))
    return policy


def versions_thin_workspace(*, workspace_id) -> int:
    """Apply the version policy to every file of a workspace that has more than one version."""
    from django.db.models import Count

    node_ids = (
        FileVersion.objects.filter(workspace_id=workspace_id)
        .values("node_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .values_list("node_id", flat=True)
    )
    return sum(versions_thin(node_id=node_id) for node_id in list(node_ids))


# --- Multipart uploads: commit many stored contents to their relative paths -------------------------


def _upload_plan_check(*, parent: Node, targets: list[list[str]]) -> None:
    """Refuse (before anything is committed) a batch whose paths clash with each other or with what
    exists: a folder of the path is a file, or a file's name is a folder."""
    planned: dict[tuple, tuple[str, str]] = {}  # key path -> (kind, name as given)
    for parts in targets:
        keys = tuple(name_key(part) for part in parts)
        for depth in range(1, len(keys) + 1):
            kind = Node.Kind.FILE if depth == len(keys) else Node.Kind.FOLDER
            seen = planned.setdefault(keys[:depth], (kind, parts[depth - 1]))
            if seen[0] != kind:
                raise _conflict(parts[depth - 1])
    existing: dict[tuple, object] = {(): parent.pk}
    for depth in range(1, max((len(key) for key in planned), default=0) + 1):
        by_parent: dict = {}
        for key in planned:
            if len(key) == depth and key[:-1] in existing:
                by_parent.setdefault(existing[key[:-1]], {})[key[-1]] = key
        for parent_id, keys in by_parent.items():
            rows = Node.objects.filter(parent_id=parent_id, name_key__in=list(keys), trashed_in__isnull=True)
            for pk, key_name, kind in rows.values_list("pk", "name_key", "kind"):
                key = keys[key_name]
                if kind != planned[key][0]:
                    raise _conflict(planned[key][1], existing=Node(pk=pk))
                if kind == Node.Kind.FOLDER:
                    existing[key] = pk


def uploads_commit(*, user, parent: Node, items: list[tuple[list[str], StoredContent]]) -> list[FileVersion]:
    """Make uploaded contents visible at their relative paths under ``parent`` (folders created on the
    way; an existing file of the name gets a new version). Every path is checked first, so a bad batch
    changes nothing. Takes ownership of the contents: each is committed or discarded when this returns."""
    versions: list[FileVersion] = []
    handed = 0
    try:
        _writable_folder(parent)
        _upload_plan_check(parent=parent, targets=[parts for parts, _ in items])
        folders: dict[tuple, Node] = {}
        for parts, content in items:
            folder_key = tuple(name_key(part) for part in parts[:-1])
            folder = folders.get(folder_key)
            if folder is None:
                folder = folder_ensure(user=user, parent=parent, names=parts[:-1]) if parts[:-1] else parent
                folders[folder_key] = folder
            handed += 1  # content_commit discards the content itself if it fails
            versions.append(content_commit(user=user, parent=folder, name=parts[-1], content=content))
    except BaseException:
        for _, content in items[handed:]:
            content.discard()
        raise
    return versions
