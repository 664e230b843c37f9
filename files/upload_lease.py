"""The lease of a resumable upload (files/resumable.py, files/upload_writing.py): one request at a
time writes an upload, by a short lease on its row rather than a long DB transaction. A request that
stalls past its lease loses the upload to the next one (LeaseLost) and must stop without touching it.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from cloudstorage.errors import ServiceError
from files.models import Upload


def lease_duration() -> timedelta:
    """How long a PATCH holds its upload without renewing: also how soon an upload whose writer
    died (a web node killed mid-PATCH) can be resumed. Renewed every quarter of it."""
    return timedelta(seconds=settings.CLOUDSTORAGE_UPLOAD_LEASE)


def _locked() -> ServiceError:
    return ServiceError(
        code="upload_locked",
        message="Another request is writing this upload right now; retry when it is done.",
        status_code=423,
    )


def lease_taken_over() -> LeaseLost:
    """The 409 for a request whose lease lapsed and was taken by another request of the same upload."""
    return LeaseLost(
        code="upload_locked", message="This request stalled and another one took the upload over.", status_code=409
    )


class LeaseLost(ServiceError):
    """The lease lapsed under a stalled request: it must stop without touching the upload."""


class UploadLease:
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
            .update(locked_until=now + lease_duration(), lock_token=self.token)
        )
        self.renewed = now
        return bool(taken)

    def renew(self) -> None:
        """Extend the lease; LeaseLost when it lapsed and another request took the upload over
        (this one was stalled longer than the lease, e.g. on a connection that went silent)."""
        now = timezone.now()
        if now - self.renewed >= lease_duration() / 4:
            held = Upload.objects.filter(pk=self.upload.pk, lock_token=self.token).update(
                locked_until=now + lease_duration()
            )
            if not held:
                raise lease_taken_over()
            self.renewed = now

    def held(self) -> bool:
        """Whether this request still holds the upload. Called inside a transaction: the row stays
        locked until it ends (on SQLite its write transaction serialises writers), so no other
        request takes the upload over between this answer and what the caller does with it."""
        return Upload.objects.select_for_update().filter(pk=self.upload.pk, lock_token=self.token).exists()

    def release(self) -> None:
        if self.released:
            return
        Upload.objects.filter(pk=self.upload.pk, lock_token=self.token).update(locked_until=None, lock_token=None)

    def __enter__(self) -> UploadLease:
        if not self.acquire():
            raise _locked()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
