"""Quota: the check and the increment are one conditional UPDATE, so concurrent uploads never overshoot.

``Workspace.used_bytes`` counts the logical bytes of every version of every file, the trash
included, plus the reservations of uploads in flight; an upload trims its reservation to the exact
size when it finishes and gives it all back when it fails.
"""

from __future__ import annotations

from django.db.models import BigIntegerField, F
from django.db.models.functions import Cast

from accounts.models import Workspace
from billing.plans import GB
from cloudstorage.errors import ServiceError

# Streams of unknown length reserve ahead in steps of this size, then trim.
RESERVE_STEP = 64 * 1024 * 1024


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
    """Quota for one upload: reserved up front when the size is known, else ahead in steps.

    ``grow`` is called with the bytes received so far; ``settle(size)`` trims to the final size
    (call it in the transaction that makes the version visible); ``cancel`` gives everything back.
    """

    def __init__(self, *, workspace: Workspace, expected: int | None = None):
        self.workspace = workspace
        self.reserved = 0
        self.expected = expected
        if expected is not None:
            quota_reserve(workspace=workspace, nbytes=expected)
            self.reserved = expected

    @classmethod
    def adopt(cls, *, workspace: Workspace, reserved: int) -> Reservation:
        """A reservation for ``reserved`` bytes already added to the usage (by a resumable upload
        at its creation), taken over without reserving them again."""
        reservation = cls(workspace=workspace)
        reservation.reserved = reserved
        reservation.expected = reserved
        return reservation

    def grow(self, received: int) -> None:
        if received <= self.reserved:
            return
        if self.expected is not None:
            raise ServiceError(
                code="size_mismatch", message="More bytes arrived than the declared size.", status_code=400
            )
        step = max(RESERVE_STEP, received - self.reserved)
        free = self.workspace.quota_bytes - self._used()
        # Near the limit, reserve exactly what is needed rather than refusing a step that would not fit.
        step = min(step, max(free, received - self.reserved))
        quota_reserve(workspace=self.workspace, nbytes=step)
        self.reserved += step

    def _used(self) -> int:
        return Workspace.objects.values_list("used_bytes", flat=True).get(pk=self.workspace.pk)

    def settle(self, size: int) -> None:
        if size > self.reserved:
            quota_reserve(workspace=self.workspace, nbytes=size - self.reserved)
        elif size < self.reserved:
            quota_release(workspace=self.workspace, nbytes=self.reserved - size)
        self.reserved = 0

    def cancel(self) -> None:
        quota_release(workspace=self.workspace, nbytes=self.reserved)
        self.reserved = 0
