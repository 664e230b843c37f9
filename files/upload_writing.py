"""Writing a resumable upload (a tus PATCH, files/api/tus.py): the request body streamed into the
upload's pending manifest of the chunk store (disks/resumable.py).

Chunks are stored as they arrive and the SHA-256 state is carried from request to request. A
deferred-length upload reserves quota as its bytes arrive. A PATCH whose checksum does not match is
rolled back and leaves the offset unchanged. One request at a time writes an upload (its lease,
files/upload_lease.py); the PATCH that brings the last byte completes it (files/resumable.py).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

from django.db import transaction
from django.db.models import F

from cloudstorage.errors import ServiceError
from disks.resumable import PendingGone, PendingState, pending_resume, pending_state_saved
from disks.store import READ_BLOCK, StoreError
from files.content import SNIFF_BYTES, store_error
from files.models import Upload
from files.quota import quota_release, quota_reserve
from files.resumable import (
    upload_complete,
    upload_expire,
    upload_fail_lost,
    upload_fail_unless_writable,
    upload_is_expired,
)
from files.upload_lease import LeaseLost, UploadLease, lease_taken_over

logger = logging.getLogger(__name__)

CHECKSUM_ALGORITHMS = ("sha1", "md5", "sha256")


def _gone() -> ServiceError:
    return ServiceError(
        code="upload_expired", message="This upload has expired or failed; start a new one.", status_code=410
    )


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
    # One transaction: the nightly recount counts reserved_bytes as part of used_bytes.
    with transaction.atomic():
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
        with transaction.atomic():
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
    creator = upload.user  # read with the upload by the view (refresh_from_db forgets it)
    with UploadLease(upload) as lease:
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
        upload_fail_unless_writable(upload, user=creator)
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


def _write_body(upload: Upload, lease: UploadLease, read, content_length, checksum, room) -> None:
    state = PendingState.from_json(upload.store_state)
    try:
        # A roll-back (abort) happens only while this request still holds the upload: one that
        # stalled past its lease must not drop what the request that took over has committed.
        writer = pending_resume(workspace=upload.workspace, state=state, owns=lease.held)
    except PendingGone:
        upload_fail_lost(upload)
    except StoreError as error:
        raise store_error(error) from error
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
                    raise lease_taken_over()
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
        raise store_error(error) from error
    except BaseException:
        writer.abort()
        raise
    upload.offset += received
    upload.store_state = new_state.to_json()
    upload._writer = writer  # completing in this request reuses it (its tail is in memory)
