"""Resumable uploads (the services behind the tus 1.0 API in files/api/tus.py).

An upload is created with its target (``parent`` folder, ``filename``, optional ``relative_path``)
and, when known, its length, whose quota is reserved right away. Each PATCH streams its bytes into a
pending manifest of the chunk store (disks/resumable.py): chunks are stored as they arrive and the
SHA-256 state is carried from request to request, so when the last byte is in, completing is one
small transaction that turns the manifest into a file or a new version (content_commit) with the
reservation it already holds. A PATCH whose checksum does not match is rolled back and leaves the
offset unchanged. One request at a time writes an upload (a short lease on the row, not a long DB
transaction). Termination and expiry release the pending manifest and give the quota back.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import NoReturn

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.http import Http404
from django.utils import timezone

from accounts.models import Workspace
from cloudstorage.errors import ServiceError
from disks.resumable import (
    PendingGone,
    PendingState,
    pending_create,
    pending_discard,
    pending_resume,
    pending_state_saved,
)
from disks.store import StoreError, manifest_release
from files.access import _is_uuid, node_get_for_user, node_permission, permission_at_least
from files.content import SNIFF_BYTES, StoredContent, _store_error
from files.folders import child_get, folder_ensure
from files.models import Node, Upload
from files.names import name_clean, relative_path_split
from files.preconditions import Precondition, precondition_check
from files.quota import Reservation, quota_release, quota_reserve, writable_check
from files.versions import content_commit

logger = logging.getLogger(__name__)

READ_BLOCK = 1024 * 1024
CHECKSUM_ALGORITHMS = ("sha1", "md5", "sha256")


def _lease() -> timedelta:
    """How long a PATCH holds its upload without renewing: also how soon an upload whose writer
    died (a web node killed mid-PATCH) can be resumed. Renewed every quarter of it."""
    return timedelta(seconds=settings.CLOUDSTORAGE_UPLOAD_LEASE)


def _gone() -> ServiceError:
    return ServiceError(
        code="upload_expired", message="This upload has expired or failed; start a new one.", status_code=410
    )


def _locked() -> ServiceError:
    return ServiceError(
        code="upload_locked",
        message="Another request is writing this upload right now; retry when it is done.",
        status_code=423,
    )


def _taken_over() -> LeaseLost:
    return LeaseLost(
        code="upload_locked", message="This request stalled and another one took the upload over.", status_code=409
    )


# --- Reads --------------------------------------------------------------------------------------


def personal_workspace_of(*, user) -> Workspace | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return Workspace.objects.filter(owner=user, kind=Workspace.Kind.PERSONAL).first()


def free_bytes(*, workspace: Workspace | None) -> int | None:
    """What the workspace may still store (Tus-Max-Size), or None when unknown."""
    if workspace is None:
        return None
    workspace.refresh_from_db(fields=["used_bytes", "plan_gb"])
    return max(workspace.quota_bytes - workspace.used_bytes, 0)


def upload_get_for_user(*, user, upload_id) -> Upload:
    """The upload if the caller created it; 404 for anyone else (its existence is not revealed)."""
    if not getattr(user, "is_authenticated", False) or not _is_uuid(upload_id):
        raise Http404
    upload = Upload.objects.select_related("workspace").filter(pk=upload_id, user=user).first()
    if upload is None:
        raise Http404
    return upload


def upload_is_expired(*, upload: Upload) -> bool:
    return upload.state == Upload.State.EXPIRED or (
        upload.state == Upload.State.ACTIVE and upload.expires_at <= timezone.now()
    )


class LeaseLost(ServiceError):
    """The lease lapsed under a stalled request: it must stop without touching the upload."""


# --- The lease ----------------------------------------------------------------------------------


class _Lease:
    """One request at a time writes an upload. A lease (not a row lock held for the whole PATCH,
    which would block every writer of an SQLite database) that a crashed request lets lapse."""

    def __init__(self, upload: Upload):
        self.upload = upload
        self.token = uuid.uuid4()
        self.renewed = timezone.now()
        self.released = False  # by the request's last commit already

    def acquire(self) -> bool:
        now = timezone.now()
        taken = (
            Upload.objects.filter(pk=self.upload.pk)
            .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
            .update(locked_until=now + _lease(), lock_token=self.token)
        )
        self.renewed = now
        return bool(taken)

    def renew(self) -> None:
        """Extend the lease; LeaseLost when it lapsed and another request took the upload over
        (this one was stalled longer than the lease, e.g. on a connection that went silent)."""
        now = timezone.now()
        if now - self.renewed >= _lease() / 4:
            held = Upload.objects.filter(pk=self.upload.pk, lock_token=self.token).update(locked_until=now + _lease())
            if not held:
                raise _taken_over()
            self.renewed = now

    def release(self) -> None:
        if self.released:
            return
        Upload.objects.filter(pk=self.upload.pk, lock_token=self.token).update(locked_until=None, lock_token=None)

    def __enter__(self) -> _Lease:
        if not self.acquire():
            raise _locked()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


# --- Creation -----------------------------------------------------------------------------------


def _target(*, user, parent_id, filename: str, relative_path: str) -> tuple[Node, str, list[str]]:
    # relative_path ends with the file's own name (as in a folder upload); `filename` wins if both.
    parts = relative_path_split(relative_path) if relative_path else []
    name = name_clean(filename or (parts[-1] if parts else ""))
    folders = parts[:-1]
    if parent_id:
        parent = node_get_for_user(user=user, node_id=parent_id, need="edit")
    else:
        workspace = personal_workspace_of(user=user)
        if workspace is None:
            raise ServiceError(code="invalid", message="Metadata `parent` (a folder id) is required.")
        parent = Node.objects.select_related("workspace").get(workspace=workspace, parent__isnull=True)
    if not parent.is_folder:
        raise ServiceError(code="not_a_folder", message="The parent is not a folder.", status_code=400)
    if not folders:
        existing = child_get(parent=parent, name=name)
        if existing is not None and existing.is_folder:
            raise ServiceError(
                code="name_conflict",
                message=f'A folder named "{name}" already exists in this folder.',
                status_code=409,
                details={"name": name, "existing_id": str(existing.pk)},
            )
    return parent, name, folders


def upload_create(
    *,
    user,
    filename: str,
    parent_id=None,
    relative_path: str = "",
    length: int | None,
    metadata: dict | None = None,
    precondition: Precondition | None = None,
) -> Upload:
    """A new resumable upload into folder ``parent_id`` (the caller's personal root when omitted).

    ``length`` None defers the length (tus Upload-Defer-Length); quota is then reserved as bytes
    arrive. A known length is reserved now: 413 when it does not fit the free quota. A
    ``precondition`` (If-Match / If-None-Match of the creation request) is checked now against what
    the target name holds, and again when the upload completes, under the commit's row lock."""
    if length is not None and length < 0:
        raise ServiceError(code="invalid", message="Upload-Length must not be negative.")
    parent, name, folders = _target(user=user, parent_id=parent_id, filename=filename, relative_path=relative_path)
    if precondition is not None:
        if not folders:
            # Under folders of relative_path (some perhaps not there yet) only the completion checks.
            precondition_check(precondition, child_get(parent=parent, name=name))
        metadata = {**(metadata or {}), **precondition.to_metadata()}
    workspace = parent.workspace
    writable_check(workspace=workspace)
    expires_at = timezone.now() + timedelta(days=settings.CLOUDSTORAGE_UPLOAD_EXPIRY_DAYS)
    with transaction.atomic():
        quota_reserve(workspace=workspace, nbytes=length or 0)
        state = pending_create(workspace=workspace, keep_until=expires_at)
        upload = Upload.objects.create(
            workspace=workspace,
            user=user,
            parent=parent,
            filename=name,
            relative_path="/".join([*folders, name]) if folders else "",
            length=length,
            reserved_bytes=length or 0,
            manifest_id=state.manifest_id,
            store_state=state.to_json(),
            metadata=metadata or {},
            expires_at=expires_at,
        )
    if length == 0:
        with _Lease(upload):
            upload_complete(upload=upload)
        upload.refresh_from_db()
    return upload


# --- Writing ------------------------------------------------------------------------------------


def checksum_parse(value: str | None) -> tuple[str, bytes] | None:
    """``Upload-Checksum: <algorithm> <base64 digest>``; 400 for an unsupported algorithm."""
    import base64
    import binascii

    if not value:
        return None
    algorithm, _, encoded = value.strip().partition(" ")
    algorithm = algorithm.lower()
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise ServiceError(
            code="checksum_unsupported",
            message=f"Checksum algorithm {algorithm!r} is not supported; use one of {', '.join(CHECKSUM_ALGORITHMS)}.",
            details={"supported": list(CHECKSUM_ALGORITHMS)},
        )
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ServiceError(code="invalid", message="Upload-Checksum: the digest is not base64.") from None
    return algorithm, digest


def _reserve_up_to(upload: Upload, total: int) -> None:
    """Hold quota for ``total`` bytes of a deferred-length upload (413 when it does not fit)."""
    extra = total - upload.reserved_bytes
    if extra <= 0:
        return
    quota_reserve(workspace=upload.workspace, nbytes=extra)
    Upload.objects.filter(pk=upload.pk).update(reserved_bytes=F("reserved_bytes") + extra)
    upload.reserved_bytes += extra


def _length_declare(upload: Upload, length: int) -> None:
    if upload.length is not None:
        if length != upload.length:
            raise ServiceError(code="invalid", message="Upload-Length cannot be changed once set.")
        return
    if length < upload.offset:
        raise ServiceError(code="invalid", message="Upload-Length is smaller than what was already received.")
    _reserve_up_to(upload, length)
    if upload.reserved_bytes > length:
        quota_release(workspace=upload.workspace, nbytes=upload.reserved_bytes - length)
        Upload.objects.filter(pk=upload.pk).update(reserved_bytes=length)
        upload.reserved_bytes = length
    Upload.objects.filter(pk=upload.pk).update(length=length)
    upload.length = length


def upload_write(
    *,
    upload: Upload,
    offset: int,
    read: Callable[[int], bytes],
    content_length: int | None,
    checksum: tuple[str, bytes] | None = None,
    length: int | None = None,
) -> Upload:
    """Append the request body (read in blocks with ``read``) at ``offset``; completes the upload
    when its last byte is in. 409 on an offset mismatch, 460 on a checksum mismatch (nothing kept),
    410 when expired, 423 while another request writes it. A body cut short by a dropped connection
    keeps what arrived (unless a checksum was given: then it cannot be verified and is dropped)."""
    if upload_is_expired(upload=upload):
        upload_expire(upload=upload)
        raise _gone()
    if upload.state == Upload.State.FAILED:
        raise _gone()
    with _Lease(upload) as lease:
        upload.refresh_from_db()
        if upload.state != Upload.State.ACTIVE and upload.state != Upload.State.COMPLETE:
            raise _gone()
        if offset != upload.offset:
            raise ServiceError(
                code="offset_mismatch",
                message=f"Upload-Offset is {offset} but the upload is at {upload.offset}.",
                status_code=409,
                details={"offset": upload.offset},
            )
        if upload.state == Upload.State.COMPLETE:
            if content_length:
                raise ServiceError(code="upload_complete", message="This upload is already complete.")
            return upload
        if length is not None:
            _length_declare(upload, length)
        room = None if upload.length is None else upload.length - upload.offset
        if content_length is not None and room is not None and content_length > room:
            raise ServiceError(
                code="upload_too_long",
                message=f"The body ({content_length} bytes) goes past Upload-Length ({upload.length}).",
                status_code=413,
            )
        if upload.length is None and content_length is not None:
            _reserve_up_to(upload, upload.offset + content_length)
        _write_body(upload, lease, read, content_length, checksum, room)
        if upload.length is not None and upload.offset == upload.length:
            upload_complete(upload=upload)
            upload.refresh_from_db()
    return upload


def _write_body(upload: Upload, lease: _Lease, read, content_length, checksum, room) -> None:
    state = PendingState.from_json(upload.store_state)
    try:
        writer = pending_resume(workspace=upload.workspace, state=state)
    except PendingGone:
        _lost(upload)
    except StoreError as error:
        raise _store_error(error) from error
    hasher = hashlib.new(checksum[0]) if checksum else None
    head = bytearray(upload.head) if len(upload.head) < SNIFF_BYTES else None
    received = 0
    cut_short = False
    try:
        while content_length is None or received < content_length:
            want = READ_BLOCK if content_length is None else min(READ_BLOCK, content_length - received)
            try:
                block = read(want)
            except OSError:
                # The client went away mid-body (what arrived is still good, tus resumes from it).
                logger.info("upload %s: body cut short after %d bytes", upload.pk, received)
                cut_short = True
                break
            if not block:
                cut_short = content_length is not None
                break
            received += len(block)
            if room is not None and received > room:
                raise ServiceError(code="upload_too_long", message="The body goes past Upload-Length.", status_code=413)
            if upload.length is None:
                _reserve_up_to(upload, upload.offset + received)
            if head is not None and len(head) < SNIFF_BYTES:
                head += block[: SNIFF_BYTES - len(head)]
            if hasher is not None:
                hasher.update(block)
            lease.renew()  # before writing: a request that lost the upload must write nothing more
            writer.write(block)
        if checksum is not None and (cut_short or hasher.digest() != checksum[1]):
            raise ServiceError(
                code="checksum_mismatch",
                message="The body does not match Upload-Checksum; nothing of it was kept.",
                status_code=460,
                details={"offset": upload.offset},
            )
        if received == 0:
            writer.abort()
            return
        new_state = writer.checkpoint()
        saved_fields = {
            "offset": F("offset") + received,
            "store_state": new_state.to_json(),
            "head": bytes(head) if head is not None else upload.head,
        }
        # Unless this PATCH completes the upload (the lease covers the completion), the lease goes
        # with the state: one commit fewer per PATCH.
        last = upload.length is not None and upload.offset + received == upload.length
        if not last:
            saved_fields |= {"locked_until": None, "lock_token": None}
        with transaction.atomic():
            saved = Upload.objects.filter(pk=upload.pk, lock_token=lease.token, state=Upload.State.ACTIVE).update(
                **saved_fields
            )
            if not saved:
                if Upload.objects.filter(pk=upload.pk, state=Upload.State.ACTIVE).exists():
                    # Another request took the upload over while this one stalled past its lease
                    # (in the checkpoint: renew() had not been due): what the other committed is
                    # not this writer's to roll back.
                    raise _taken_over()
                raise _gone()
            pending_state_saved(state=new_state, keep_until=upload.expires_at)
        if not last:
            lease.released = True
        writer.committed(new_state)
    except LeaseLost:
        # Another request owns the upload now and rolled back whatever this one left: keep off it.
        writer.abandon()
        raise
    except StoreError as error:
        writer.abort()
        raise _store_error(error) from error
    except BaseException:
        writer.abort()
        raise
    upload.offset += received
    upload.store_state = new_state.to_json()
    upload._writer = writer  # completing in this request reuses it (its tail is in memory)


def _lost(upload: Upload) -> NoReturn:
    """The stored part of the upload is gone (collected by an operator's GC run): it cannot go on."""
    logger.warning("upload %s lost its pending manifest; failing it", upload.pk)
    with transaction.atomic():
        if Upload.objects.filter(pk=upload.pk, state=Upload.State.ACTIVE).update(
            state=Upload.State.FAILED, error="The stored part was lost.", reserved_bytes=0, manifest=None
        ):
            quota_release(workspace=upload.workspace, nbytes=upload.reserved_bytes)
    if upload.store_state:
        pending_discard(state=PendingState.from_json(upload.store_state))
    raise ServiceError(
        code="upload_lost", message="The stored part of this upload was lost; start a new one.", status_code=410
    )


# --- Completion ---------------------------------------------------------------------------------


def upload_complete(*, upload: Upload) -> Upload:
    """Turn the complete pending manifest into a file (or a new version) at the upload's target.

    No pass over the bytes: the last piece is cut, the manifest marked ready with the SHA-256 kept
    across requests, and the version created in one transaction with the upload's state, taking over
    the quota reserved at creation. Idempotent after a crash (a completed manifest is reused). When
    the target refuses (folder gone, a folder of that name), the upload fails and its bytes and quota
    are given back."""
    state = PendingState.from_json(upload.store_state)
    writer = getattr(upload, "_writer", None)
    try:
        if writer is None or writer.closed:
            writer = pending_resume(workspace=upload.workspace, state=state)
        manifest = writer.finish()
    except PendingGone:
        _lost(upload)
    except StoreError as error:
        raise _store_error(error) from error
    try:
        parent = Node.objects.select_related("workspace").filter(pk=upload.parent_id).first()
        if parent is None or parent.trashed_in_id is not None:
            raise ServiceError(
                code="parent_gone", message="The target folder was deleted during the upload.", status_code=409
            )
        if not permission_at_least(node_permission(user=upload.user, node=parent), "edit"):
            raise ServiceError(
                code="permission_denied", message="You can no longer upload into this folder.", status_code=403
            )
        folders = relative_path_split(upload.relative_path)[:-1] if upload.relative_path else []
        if folders:
            parent = folder_ensure(user=upload.user, parent=parent, names=folders)
        content = StoredContent(
            manifest=manifest,
            reservation=Reservation.adopt(workspace=upload.workspace, reserved=upload.reserved_bytes),
            head=bytes(upload.head),
        )
        with transaction.atomic():
            version = content_commit(
                user=upload.user,
                parent=parent,
                name=upload.filename,
                content=content,
                precondition=Precondition.from_metadata(upload.metadata),
            )
            Upload.objects.filter(pk=upload.pk).update(
                state=Upload.State.COMPLETE,
                node=version.node,
                reserved_bytes=0,
                manifest=None,
                store_state={},
                head=b"",
                completed_at=timezone.now(),
            )
    except ServiceError as error:
        # content_commit's own clean-up ran inside the transaction that was rolled back: do it here.
        with transaction.atomic():
            failed = Upload.objects.filter(pk=upload.pk, state=Upload.State.ACTIVE).update(
                state=Upload.State.FAILED, error=error.message[:300], reserved_bytes=0, manifest=None, store_state={}
            )
            if failed:
                quota_release(workspace=upload.workspace, nbytes=upload.reserved_bytes)
                manifest_release(manifest=manifest)
        raise
    return upload


# --- Termination and expiry ---------------------------------------------------------------------


def _reclaim(*, upload: Upload, new_state: str | None) -> bool:
    """Give back an active upload's quota and pending manifest; the row becomes ``new_state``
    (deleted when None). False when it was no longer active."""
    with transaction.atomic():
        locked = Upload.objects.select_for_update().filter(pk=upload.pk, state=Upload.State.ACTIVE).first()
        if locked is None:
            return False
        quota_release(workspace=upload.workspace, nbytes=locked.reserved_bytes)
        store_state = locked.store_state
        if new_state is None:
            locked.delete()
        else:
            Upload.objects.filter(pk=locked.pk).update(
                state=new_state, reserved_bytes=0, manifest=None, store_state={}, head=b""
            )
    if store_state:
        pending_discard(state=PendingState.from_json(store_state))
    return True


def upload_terminate(*, upload: Upload) -> None:
    """tus termination: the upload and everything it stored are gone (a later request gets 404)."""
    if upload.state != Upload.State.ACTIVE:
        Upload.objects.filter(pk=upload.pk).delete()
        return
    with _Lease(upload):
        _reclaim(upload=upload, new_state=None)


def upload_expire(*, upload: Upload) -> bool:
    """Reclaim an active upload past its expiry (a later request gets 410); False when it is being
    written right now or was not active."""
    lease = _Lease(upload)
    if not lease.acquire():
        return False
    try:
        return _reclaim(upload=upload, new_state=Upload.State.EXPIRED)
    finally:
        lease.release()


def uploads_expire(*, limit: int = 1000) -> dict:
    """The beat job: reclaim expired uploads, finish uploads whose last byte arrived but whose
    completion was cut short (a crash, a full disk), forget finished ones a while after expiry."""
    now = timezone.now()
    completed = 0
    stuck = Upload.objects.select_related("workspace", "user").filter(
        state=Upload.State.ACTIVE, length=F("offset"), expires_at__gt=now, created_at__lt=now - _lease()
    )
    for upload in stuck[:limit]:
        lease = _Lease(upload)
        if not lease.acquire():
            continue
        try:
            upload.refresh_from_db()
            if upload.state == Upload.State.ACTIVE and upload.offset == upload.length:
                upload_complete(upload=upload)
                completed += 1
        except ServiceError as error:
            logger.info("upload %s could not be completed: %s", upload.pk, error.message)
        except Exception:
            logger.exception("could not complete upload %s", upload.pk)
        finally:
            lease.release()
    expired = 0
    for upload in Upload.objects.select_related("workspace").filter(state=Upload.State.ACTIVE, expires_at__lte=now)[
        :limit
    ]:
        try:
            expired += upload_expire(upload=upload)
        except Exception:
            logger.exception("could not reclaim expired upload %s", upload.pk)
    keep = timedelta(days=settings.CLOUDSTORAGE_UPLOAD_EXPIRY_DAYS)
    forgotten, _ = Upload.objects.exclude(state=Upload.State.ACTIVE).filter(expires_at__lte=now - keep).delete()
    return {"expired": expired, "forgotten": forgotten, "completed": completed}
