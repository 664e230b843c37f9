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
from files.models import Activity, FilesPolicy, FileVersion, Node
from files.names import name_clean, name_key
from files.quota import Reservation, quota_release, writable_check

logger = logging.getLogger(__name__)

READ_BLOCK = 1024 * 1024
SNIFF_BYTES = 8192


def node_path(*, node: Node) -> str:
    """``/a/b/name`` from the workspace root (the root itself is ``/``)."""
    names = []
    current = node
    while current.parent_id is not None:
        names.append(current.name)
        current = Node.objects.only("name", "parent_id").get(pk=current.parent_id)
    return "/" + "/".join(reversed(names))


def activity_record(
    *, workspace_id, actor, verb: str, node: Node | None = None, details: dict | None = None, path: str | None = None
) -> None:
    """``path`` overrides the node's current path (a trashed or purged node is no longer where it was)."""
    Activity.objects.create(
        workspace_id=workspace_id,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
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
            folder = Node.objects.create(
                workspace_id=parent.workspace_id,
                parent=parent,
                kind=Node.Kind.FOLDER,
                name=name,
                name_key=name_key(name),
                created_by=user if getattr(user, "is_authenticated", False) else None,
            )
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


def content_store(*, workspace: Workspace, stream: object | Iterable[bytes], size: int | None = None) -> StoredContent:
    """Stream bytes into the chunk store, reserving quota as they arrive (all of it up front when
    ``size`` is known, so an upload that cannot fit is refused before a byte is stored)."""
    writable_check(workspace=workspace)
    reservation = Reservation(workspace=workspace, expected=size)
    head = bytearray()
    received = 0
    try:
        writer = manifest_writer(workspace=workspace)
    except StoreError as error:
        reservation.cancel()
        raise _store_error(error) from error
    except BaseException:
        reservation.cancel()
        raise
    try:
        for block in _blocks(stream):
            received += len(block)
            reservation.grow(received)
            if len(head) < SNIFF_BYTES:
                head += block[: SNIFF_BYTES - len(head)]
            writer.write(block)
        if size is not None and received != size:
            raise ServiceError(
                code="size_mismatch",
                message=f"The upload ended after {received} of {size} declared bytes.",
                status_code=400,
            )
        manifest = writer.finish()
    except StoreError as error:
        writer.abort()
        reservation.cancel()
        raise _store_error(error) from error
    except BaseException:
        writer.abort()
        reservation.cancel()
        raise
    return StoredContent(manifest=manifest, reservation=reservation, head=bytes(head))


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
        created_by=user if getattr(user, "is_authenticated", False) else None,
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
    return version


def content_commit(*, user, parent: Node, name: str, content: StoredContent, replace: bool = True) -> FileVersion:
    """Make stored content visible as ``parent/name``: a new file, or a new version of the file of
    that name (``replace``); refused (and the content discarded) when a folder has the name."""
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
                    if existing is not None:
                        if existing.is_folder or not replace:
                            raise _conflict(name, existing=existing)
                        node = existing
                    else:
                        node = Node.objects.create(
                            workspace_id=parent.workspace_id,
                            parent=parent,
                            kind=Node.Kind.FILE,
                            name=name,
                            name_key=name_key(name),
                            created_by=user if getattr(user, "is_authenticated", False) else None,
                        )
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
    transaction.on_commit(lambda: _versions_thin_later(version.node_id))
    return version


def version_commit(*, user, node: Node, content: StoredContent, restored_from: int | None = None) -> FileVersion:
    """Make stored content the next version of the file ``node``."""
    try:
        with transaction.atomic():
            locked = Node.objects.select_for_update().get(pk=node.pk)
            if not locked.is_file or locked.trashed_in_id is not None:
                raise ServiceError(
                    code="not_a_file", message="Only a live file can get a new version.", status_code=409
                )
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


def file_upload(*, user, parent: Node, name: str, stream, size: int | None = None) -> FileVersion:
    """Upload ``stream`` as ``parent/name``: a new file, or a new version of the file of that name."""
    name = name_clean(name)
    _writable_folder(parent)
    existing = child_get(parent=parent, name=name)
    if existing is not None and existing.is_folder:
        raise _conflict(name, existing=existing)
    content = content_store(workspace=parent.workspace, stream=stream, size=size)
    return content_commit(user=user, parent=parent, name=name, content=content)


def file_upload_version(*, user, node: Node, stream, size: int | None = None) -> FileVersion:
    """Upload ``stream`` as a new version of the file ``node``."""
    if not node.is_file:
        raise ServiceError(code="not_a_file", message="Only a file has versions.", status_code=400)
    content = content_store(workspace=node.workspace, stream=stream, size=size)
    return version_commit(user=user, node=node, content=content)


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
