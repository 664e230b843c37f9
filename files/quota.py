"""Quota: the check and the increment are one conditional UPDATE, so concurrent uploads never overshoot.

``Workspace.used_bytes`` counts the logical bytes of every version of every file, the trash
included, plus the reservations of uploads in flight; an upload trims its reservation to the exact
size when it finishes and gives it all back when it fails. Each reservation is also a QuotaHold row,
so one whose process died is found and given back by a beat job instead of leaking.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import BigIntegerField, F, Sum
from django.db.models.functions import Cast
from django.utils import timezone

from accounts.locks import workspace_lock
from accounts.models import Workspace
from billing.plans import GB
from cloudstorage.errors import ServiceError
from files.models import FileVersion, QuotaHold, Upload

logger = logging.getLogger(__name__)

# Streams of unknown length reserve ahead in steps of this size, then trim.
RESERVE_STEP = 64 * 1024 * 1024
# An upload that cannot bring more than this many bytes (its declared size, or the rest of a small
# multipart body) holds no quota while it is stored: its bytes are taken by the conditional UPDATE
# in the transaction that makes it visible (Reservation.settle), so concurrent uploads still cannot
# overshoot, and a declared size is also checked before a byte is stored. A hold of its own would
# cost a transaction and two rows per small file; what a refused one leaves on the disks (at most
# this much) is collected with its pending manifest.
TAKE_AT_COMMIT = 1024 * 1024
# A database integer's largest value (64 bits, signed). A declared size past it (a Content-Length or
# an Upload-Length of 10**26) can be no file's, and reached the reserving UPDATE, which overflowed
# (SQLite: OverflowError; PostgreSQL: bigint out of range): a 500 instead of a refusal.
MAX_SIZE = 2**63 - 1


def _human(nbytes: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if abs(nbytes) < 1024 or unit == "GB":
            return f"{nbytes:.0f} {unit}" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return str(nbytes)


def quota_error(*, workspace: Workspace, nbytes: int) -> ServiceError:
    workspace.refresh_from_db(fields=["used_bytes", "plan_gb", "read_only"])
    free = max(workspace.quota_bytes - workspace.used_bytes, 0)
    return ServiceError(
        code="quota_exceeded",
        message=f"Not enough space: this needs {_human(nbytes)} and {_human(free)} is free. "
        "Free some space (empty the trash, delete old versions) or choose a bigger plan.",
        status_code=413,
        details={"needed_bytes": nbytes, "free_bytes": free, "quota_bytes": workspace.quota_bytes},
    )


def size_too_large(*, nbytes: int) -> ServiceError:
    """The 413 for a declared size no file can have (see MAX_SIZE)."""
    return ServiceError(
        code="too_large",
        message=f"A size of {nbytes} bytes is more than any file can have.",
        status_code=413,
        details={"needed_bytes": nbytes, "max_bytes": MAX_SIZE},
    )


def writable_check(*, workspace: Workspace) -> None:
    if workspace.read_only:
        raise ServiceError(
            code="workspace_read_only",
            message="This workspace is read-only until its payment is settled or its plan fits its usage; "
            "downloads still work.",
            status_code=403,
        )


def quota_reserve(*, workspace: Workspace, nbytes: int) -> None:
    """Add ``nbytes`` to the workspace's usage if it fits its quota and it is writable; else refuse."""
    if nbytes <= 0:
        return
    if nbytes > MAX_SIZE:
        raise size_too_large(nbytes=nbytes)
    done = Workspace.objects.filter(
        pk=workspace.pk, read_only=False, used_bytes__lte=Cast("plan_gb", BigIntegerField()) * GB - nbytes
    ).update(used_bytes=F("used_bytes") + nbytes)
    if not done:
        workspace.refresh_from_db(fields=["read_only"])
        writable_check(workspace=workspace)
        raise quota_error(workspace=workspace, nbytes=nbytes)


def quota_release(*, workspace: Workspace, nbytes: int) -> None:
    """Give back ``nbytes`` of usage (a purge, a thinned version, a failed upload's reservation)."""
    if nbytes > 0:
        Workspace.objects.filter(pk=workspace.pk).update(used_bytes=F("used_bytes") - nbytes)


class Reservation:
    """Quota for one upload: reserved up front when the size is known, else ahead in steps; or, for
    an upload that cannot bring more than TAKE_AT_COMMIT bytes, taken only by ``settle``.

    What is reserved lives in a :class:`QuotaHold` row (the database is the truth, not this object),
    so a process that dies mid-upload leaks nothing: ``quota_holds_reclaim`` gives back holds left
    untouched for CLOUDSTORAGE_QUOTA_HOLD_STALE seconds. ``grow`` is called with the bytes received
    so far (and keeps the hold fresh); ``trim`` lowers it; ``settle(size)`` turns it into the final
    size (call it in the transaction that makes the version visible); ``cancel`` gives it all back.
    """

    TOUCH_EVERY = 60.0

    def __init__(self, *, workspace: Workspace, expected: int | None = None, bound: int | None = None):
        """``expected``: the exact size, when declared; ``bound``: else the most bytes the upload
        can bring (the rest of a request body), if known."""
        self.workspace = workspace
        self.reserved = 0
        self.expected = expected
        self.hold_id: int | None = None
        self.external = False  # the bytes are tracked elsewhere (a resumable upload's own row)
        self._touched = time.monotonic()
        most = expected if expected is not None else bound
        # Up to this many bytes are taken by settle(), none held before (see TAKE_AT_COMMIT).
        self.take_at_commit = most if most is not None and most <= TAKE_AT_COMMIT else None
        if self.take_at_commit is not None:
            writable_check(workspace=workspace)
            # A declared size that cannot fit is refused now (the usage read with the workspace).
            if expected is not None and workspace.used_bytes + expected > workspace.quota_bytes:
                raise quota_error(workspace=workspace, nbytes=expected)
        elif expected is not None:
            self.add(expected)
        elif bound:
            # Near the limit a bound that does not fit is no refusal: the file may be smaller.
            try:
                self.add(bound)
            except ServiceError as error:
                if error.code != "quota_exceeded":
                    raise

    @classmethod
    def adopt(cls, *, workspace: Workspace, reserved: int) -> Reservation:
        """A reservation for ``reserved`` bytes already added to the usage (by a resumable upload
        at its creation), taken over without reserving them again."""
        reservation = cls(workspace=workspace)
        reservation.reserved = reserved
        reservation.expected = reserved
        reservation.external = True
        return reservation

    def add(self, nbytes: int) -> None:
        """Reserve ``nbytes`` more (413 quota_exceeded / 403 read-only when they do not fit)."""
        if nbytes <= 0:
            return
        with transaction.atomic():
            quota_reserve(workspace=self.workspace, nbytes=nbytes)
            if self.external:
                pass
            elif self.hold_id is None:
                self.hold_id = QuotaHold.objects.create(workspace=self.workspace, bytes=nbytes).pk
            elif not QuotaHold.objects.filter(pk=self.hold_id).update(
                bytes=F("bytes") + nbytes, touched_at=timezone.now()
            ):
                raise ServiceError(
                    code="upload_expired",
                    message="This upload was idle for too long and its reserved space was given back; start it again.",
                    status_code=409,
                )
        self.reserved += nbytes
        self._touched = time.monotonic()

    def hold_now(self, size: int) -> None:
        """Hold the ``size`` bytes of a stored content that would take its quota at its commit: for
        a batch of contents committed one transaction each, which must be refused before the first
        commits if they do not all fit."""
        if self.take_at_commit is not None:
            self.take_at_commit = None
            self.add(size)

    def trim(self, to: int) -> None:
        """Give back what is reserved beyond ``to`` bytes."""
        extra = self.reserved - to
        if extra <= 0:
            return
        with transaction.atomic():
            if self.external or QuotaHold.objects.filter(pk=self.hold_id).update(bytes=F("bytes") - extra):
                quota_release(workspace=self.workspace, nbytes=extra)
        self.reserved = to

    def grow(self, received: int) -> None:
        if self.take_at_commit is not None:
            if received <= self.take_at_commit:
                return
            if self.expected is None:
                # More than the bound said (it came from a header): held from here on, as any other.
                self.take_at_commit = None
        if self.expected is not None:
            if received > self.expected:
                raise ServiceError(
                    code="size_mismatch", message="More bytes arrived than the declared size.", status_code=400
                )
            self._touch()
            return
        if received <= self.reserved:
            self._touch()
            return
        step = max(RESERVE_STEP, received - self.reserved)
        free = self.workspace.quota_bytes - self._used()
        # Near the limit, reserve exactly what is needed rather than refusing a step that would not fit.
        step = min(step, max(free, received - self.reserved))
        self.add(step)

    def _touch(self) -> None:
        if self.hold_id is None or time.monotonic() - self._touched < self.TOUCH_EVERY:
            return
        QuotaHold.objects.filter(pk=self.hold_id).update(touched_at=timezone.now())
        self._touched = time.monotonic()

    def _used(self) -> int:
        return Workspace.objects.values_list("used_bytes", flat=True).get(pk=self.workspace.pk)

    def _take_hold(self) -> int | None:
        """Delete the hold row; the bytes it held, or None when there is none (reclaimed, or never made).

        One DELETE: only this object changes the row's bytes (``add`` and ``trim`` keep them equal to
        ``reserved``); the reclaimer only deletes it, under the row's lock, so when both race exactly
        one of them deletes the row and gives its bytes back."""
        if self.hold_id is None:
            return None
        deleted = QuotaHold.objects.filter(pk=self.hold_id).delete()[0]
        self.hold_id = None
        return self.reserved if deleted else None

    def settle(self, size: int) -> None:
        """The upload's bytes become ``size`` bytes of stored content (inside the caller's transaction).

        No savepoint of its own: an error here fails the caller's transaction as a whole, which is
        what every caller does with it (two statements fewer per upload)."""
        with transaction.atomic(savepoint=False):
            if self.external:
                held = self.reserved
            else:
                # None: reclaimed while idle (or nothing was ever reserved): reserve afresh; may refuse.
                held = self._take_hold() or 0
            if size > held:
                quota_reserve(workspace=self.workspace, nbytes=size - held)
            elif size < held:
                quota_release(workspace=self.workspace, nbytes=held - size)
        self.reserved = 0

    def cancel(self) -> None:
        """Give everything back (idempotent)."""
        if self.external:
            quota_release(workspace=self.workspace, nbytes=self.reserved)
        else:
            with transaction.atomic():
                held = self._take_hold()
                if held:
                    quota_release(workspace=self.workspace, nbytes=held)
        self.reserved = 0


def quota_holds_reclaim(*, now: datetime | None = None) -> int:
    """Give back the quota of uploads that died mid-way (holds untouched for
    CLOUDSTORAGE_QUOTA_HOLD_STALE seconds). Safe to run concurrently: each hold is taken under its
    row lock, so its bytes are released once. Returns how many holds were reclaimed."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.CLOUDSTORAGE_QUOTA_HOLD_STALE)
    reclaimed = 0
    for hold_id, workspace_id in QuotaHold.objects.filter(touched_at__lt=cutoff).values_list("pk", "workspace_id"):
        with transaction.atomic():
            # The workspace first (accounts.locks): an upload's commit deletes its hold under it. A
            # hold whose row is locked now is in use (an upload cancelling or trimming it locks the
            # hold, then the workspace: waiting for it here, holding the workspace, would deadlock):
            # skipped, and reclaimed by a later run if it stays idle.
            workspace_lock(workspace_id)
            hold = (
                QuotaHold.objects.select_for_update(skip_locked=True).filter(pk=hold_id, touched_at__lt=cutoff).first()
            )
            if hold is None:
                continue
            hold.delete()
            quota_release(workspace=hold.workspace, nbytes=hold.bytes)
            reclaimed += 1
    return reclaimed


def _counted(*, workspace_ids: list) -> dict:
    """{workspace id: the bytes its used_bytes should hold}: every version's size (the trash's
    included) and the quota held by uploads in flight (QuotaHold rows, resumable uploads)."""
    counted = dict.fromkeys(workspace_ids, 0)
    for model, field in ((FileVersion, "size"), (QuotaHold, "bytes"), (Upload, "reserved_bytes")):
        rows = (
            model.objects.filter(workspace_id__in=workspace_ids)
            .order_by()
            .values("workspace_id")
            .annotate(total=Sum(field))
            .values_list("workspace_id", "total")
        )
        for workspace_id, total in rows:
            counted[workspace_id] += total or 0
    return counted


def workspace_usage_recount(*, workspace_id) -> int:
    """Set a workspace's ``used_bytes`` to what it counts (see :func:`_counted`); returns the
    correction made (0: none). Safe while the workspace is in use: it holds the workspace row's
    lock, and every writer of ``used_bytes`` changes the counted rows in the transaction that
    updates the row, so a concurrent one either committed before this read or applies its delta
    after this commit."""
    with transaction.atomic():
        used = (
            Workspace.objects.select_for_update().filter(pk=workspace_id).values_list("used_bytes", flat=True).first()
        )
        if used is None:
            return 0
        total = _counted(workspace_ids=[workspace_id])[workspace_id]
        if total != used:
            Workspace.objects.filter(pk=workspace_id).update(used_bytes=total)
    return total - used


def workspaces_usage_recount(*, batch: int = 500) -> int:
    """Nightly: correct every workspace whose ``used_bytes`` drifted from what it counts (a bug's
    leftover would otherwise be charged, or given away, for good). Candidates are found with a few
    grouped sums per batch, unlocked; each is then recounted under its lock. Returns how many
    workspaces were corrected."""
    corrected = 0
    last = None
    while True:
        page = Workspace.objects.order_by("pk")
        if last is not None:
            page = page.filter(pk__gt=last)
        rows = list(page.values_list("pk", "used_bytes")[:batch])
        if not rows:
            return corrected
        last = rows[-1][0]
        used = dict(rows)
        counted = _counted(workspace_ids=list(used))
        for workspace_id, total in counted.items():
            if total == used[workspace_id]:
                continue
            drift = workspace_usage_recount(workspace_id=workspace_id)
            if drift:
                corrected += 1
                logger.warning("workspace %s: used_bytes corrected by %+d bytes", workspace_id, drift)
