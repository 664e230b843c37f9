"""Content on its way in: bytes streamed into the chunk store while their quota is reserved.

An upload streams through the chunk store with bounded memory while its quota is reserved; what
comes out is a :class:`StoredContent`, durable (every chunk has its write quorum) but attached to no
file yet: files.versions makes it visible. A content that is never committed is discarded (its
reservation cancelled, its manifest released; a pending manifest is collected by the store's GC).
Knows nothing of nodes, so every other write module can use it.
"""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import filetype

from accounts.models import Workspace
from cloudstorage.errors import ServiceError
from disks.store import (
    Manifest,
    StorageFullError,
    StoreError,
    manifest_release,
    manifest_writer,
    stream_blocks,
)
from files.quota import Reservation, writable_check

logger = logging.getLogger(__name__)


SNIFF_BYTES = 8192


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


def contents_hold(contents: list[StoredContent]) -> None:
    """For a batch of contents committed one transaction each: hold now what small ones would take
    at their commit (files.quota.TAKE_AT_COMMIT), so a batch that does not fit is refused before the
    first is kept. A single content takes its quota at its own commit."""
    if len(contents) > 1:
        for content in contents:
            content.reservation.hold_now(content.manifest.size)


def store_error(error: StoreError) -> ServiceError:
    """The API's answer to the chunk store refusing an upload: 507 when full, else 503."""
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
    each grab a big step near the limit; else in steps. An upload that cannot bring more than
    ``files.quota.TAKE_AT_COMMIT`` bytes holds nothing: its quota is taken when it is committed.
    ``finish`` trims the reservation to the exact size, so a multi-file request never holds more
    than it will keep.
    """

    def __init__(self, *, workspace: Workspace, size: int | None = None, size_bound: int | None = None):
        writable_check(workspace=workspace)
        self.size = size
        self.received = 0
        self.head = bytearray()
        self.reservation = Reservation(workspace=workspace, expected=size, bound=size_bound)
        try:
            self.writer = manifest_writer(workspace=workspace)
        except StoreError as error:
            self.reservation.cancel()
            raise store_error(error) from error
        except BaseException:
            self.reservation.cancel()
            raise

    @contextmanager
    def _aborting(self) -> Iterator[None]:
        """Any error drops what was written and gives the reservation back; the store's errors
        become the API's."""
        try:
            yield
        except StoreError as error:
            self.abort()
            raise store_error(error) from error
        except BaseException:
            self.abort()
            raise

    def write(self, block: bytes) -> None:
        with self._aborting():
            self.received += len(block)
            self.reservation.grow(self.received)
            if len(self.head) < SNIFF_BYTES:
                self.head += block[: SNIFF_BYTES - len(self.head)]
            self.writer.write(block)

    def finish(self) -> StoredContent:
        with self._aborting():
            if self.size is not None and self.received != self.size:
                raise ServiceError(
                    code="size_mismatch",
                    message=f"The upload ended after {self.received} of {self.size} declared bytes.",
                    status_code=400,
                )
            manifest = self.writer.finish()
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
        for block in stream_blocks(stream):
            sink.write(block)
    except BaseException:
        sink.abort()
        raise
    return sink.finish()
