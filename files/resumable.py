"""Resumable uploads (the services behind the tus 1.0 API in files/api/tus.py): reads, creation,
completion, termination and expiry.

An upload is created with its target (``parent`` folder, ``filename``, optional ``relative_path``)
and, when known, its length, whose quota is reserved right away. Each PATCH streams its bytes into a
pending manifest of the chunk store (files/upload_writing.py, disks/resumable.py): chunks are stored
as they arrive and the SHA-256 state is carried from request to request, so when the last byte is
in, completing is one small transaction that turns the manifest into a file or a new version
(content_commit) with the reservation it already holds. One request at a time writes an upload (a
short lease on the row, not a long DB transaction: files/upload_lease.py). Termination and expiry
release the pending manifest and give the quota back.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import NoReturn

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.http import Http404
from django.utils import timezone

from accounts.models import Workspace
from cloudstorage.errors import ServiceError
from disks.resumable import PendingGone, PendingState, pending_create, pending_discard, pending_resume
from disks.store import StoreError, manifest_release
from files.access import is_uuid, node_get_for_user, node_permission, permission_at_least
from files.content import StoredContent, store_error
from files.folders import child_get, folder_ensure
from files.models import Node, Upload
from files.names import name_clean, relative_path_split
from files.preconditions import Precondition, precondition_check
from files.quota import Reservation, quota_release, quota_reserve, writable_check
from files.upload_lease import UploadLease, lease_duration
from files.versions import content_commit

logger = logging.getLogger(__name__)


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
    if not getattr(user, "is_authenticated", False) or not is_uuid(upload_id):
        raise Http404
    upload = Upload.objects.select_related("workspace", "user").filter(pk=upload_id, user=user).first()
    if upload is None:
        raise Http404
    return upload


def upload_is_expired(*, upload: Upload) -> bool:
    return upload.state == Upload.State.EXPIRED or (
        upload.state == Upload.State.ACTIVE and upload.expires_at <= timezone.now()
    )


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
        with UploadLease(upload):
            upload_complete(upload=upload)
        upload.refresh_from_db()
    return upload


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
        upload_fail_lost(upload)
    except StoreError as error:
        raise store_error(error) from error
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


def upload_fail(upload: Upload, *, error: ServiceError) -> NoReturn:
    """The upload cannot go on: it fails (later requests get 410 with ``error``'s message), its
    quota and stored part are given back, and ``error`` is raised."""
    with transaction.atomic():
        if Upload.objects.filter(pk=upload.pk, state=Upload.State.ACTIVE).update(
            state=Upload.State.FAILED, error=error.message[:300], reserved_bytes=0, manifest=None
        ):
            quota_release(workspace=upload.workspace, nbytes=upload.reserved_bytes)
    if upload.store_state:
        pending_discard(state=PendingState.from_json(upload.store_state))
    raise error


def upload_fail_lost(upload: Upload) -> NoReturn:
    """The stored part of the upload is gone (collected by an operator's GC run): it cannot go on."""
    logger.warning("upload %s lost its pending manifest; failing it", upload.pk)
    upload_fail(
        upload,
        error=ServiceError(
            code="upload_lost", message="The stored part of this upload was lost; start a new one.", status_code=410
        ),
    )


def upload_fail_unless_writable(upload: Upload, *, user) -> None:
    """Each PATCH asks again whether the creator may still write into the upload's folder: a share
    revoked or a membership ended since the upload was created must stop its bytes, and the quota
    they take, at once, not at the completion. If not, the upload fails (403). A folder in the
    trash is left to the completion: it may be restored before the last byte. ``user`` is the
    upload's creator."""
    if upload.parent_id is None:
        return  # purged: the completion refuses it (parent_gone)
    try:
        node_get_for_user(user=user, node_id=upload.parent_id, need="edit")
        return
    except Http404:
        trashed = Node.objects.filter(pk=upload.parent_id, trashed_in__isnull=False).first()
        if trashed is not None and permission_at_least(node_permission(user=user, node=trashed), "edit"):
            return
    except ServiceError:
        pass  # may see the folder, no longer write into it
    upload_fail(
        upload,
        error=ServiceError(
            code="permission_denied",
            message="You can no longer upload into this folder; the upload was cancelled.",
            status_code=403,
        ),
    )


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
    with UploadLease(upload):
        _reclaim(upload=upload, new_state=None)


def upload_expire(*, upload: Upload) -> bool:
    """Reclaim an active upload past its expiry (a later request gets 410); False when it is being
    written right now or was not active."""
    lease = UploadLease(upload)
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
        state=Upload.State.ACTIVE, length=F("offset"), expires_at__gt=now, created_at__lt=now - lease_duration()
    )
    for upload in stuck[:limit]:
        lease = UploadLease(upload)
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
