"""Multipart uploads streamed straight into the chunk store.

Django's default upload handlers keep a file in memory or spool it to a temporary file before a
view sees it. Here the multipart parser pushes each file's bytes, as they arrive, into a
:class:`files.services.ContentSink` (chunked, encrypted, replicated, quota reserved on the way), so a
request of any size needs a few MiB of memory and no temporary file. What the parser hands the view
is a :class:`StoredUpload` per file: content that is durable but not yet visible anywhere; the view
commits each one to its place (the ``relative_path`` fields may come before or after the files), and
whatever is left uncommitted when the request ends is discarded (reservation and manifest released).

The target folder is checked while parsing (the bytes must go to that workspace's store), so the
parser needs the caller: the authenticated DRF user, or during DRF's CSRF check of a session
request (which reads ``request.POST``) the session user that check is about to accept.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.core.exceptions import SuspiciousOperation
from django.core.files.uploadhandler import FileUploadHandler, StopFutureHandlers
from django.http.multipartparser import MultiPartParser as DjangoMultiPartParser
from django.http.multipartparser import MultiPartParserError
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser, DataAndFiles

from cloudstorage.errors import ServiceError
from files.services import ContentSink, StoredContent

logger = logging.getLogger(__name__)

# Bytes the parser reads at a time (one socket read → one write into the chunker); 1 MiB, the
# largest gunicorn receives at once, so it never re-buffers the rest of a read (see BODY_BLOCK).
UPLOAD_BLOCK = 1024 * 1024


@dataclass
class StoredUpload:
    """One uploaded file: its name as sent and its stored, not yet committed, content."""

    name: str
    content: StoredContent
    size: int
    committed: bool = False

    def close(self) -> None:  # Django closes "files" after a failed parse; nothing is open here.
        pass


@dataclass
class UploadBatch:
    """Everything one request stored; ``discard_uncommitted`` runs when the request ends."""

    resolve_workspace: object  # callable() -> Workspace, checked for the caller's edit permission
    body_length: int = 0
    consumed: int = 0
    uploads: list[StoredUpload] = field(default_factory=list)
    sink: ContentSink | None = None
    workspace: object = None

    def open(self) -> ContentSink:
        if self.workspace is None:
            self.workspace = self.resolve_workspace()
        # Bound: the rest of the body; a file cannot be longer than that.
        bound = max(self.body_length - self.consumed, 0) or None
        self.sink = ContentSink(workspace=self.workspace, size_bound=bound)
        return self.sink

    def discard_uncommitted(self) -> None:
        if self.sink is not None:
            self.sink.abort()
            self.sink = None
        for upload in self.uploads:
            if not upload.committed:
                upload.committed = True  # never twice
                upload.content.discard()


class StreamingUploadHandler(FileUploadHandler):
    chunk_size = UPLOAD_BLOCK

    def __init__(self, batch: UploadBatch):
        super().__init__()
        self.batch = batch

    def new_file(self, field_name, file_name, *args, **kwargs):
        super().new_file(field_name, file_name, *args, **kwargs)
        if field_name != "file":
            raise ServiceError(
                code="invalid_field",
                message=f'Files go in the "file" field (got "{field_name}").',
                status_code=400,
            )
        self.batch.open()
        raise StopFutureHandlers

    def receive_data_chunk(self, raw_data, start):
        self.batch.consumed += len(raw_data)
        self.batch.sink.write(raw_data)
        return None

    def file_complete(self, file_size):
        sink, self.batch.sink = self.batch.sink, None
        upload = StoredUpload(name=self.file_name, content=sink.finish(), size=file_size)
        self.batch.uploads.append(upload)
        return upload

    def upload_interrupted(self):
        if self.batch.sink is not None:
            self.batch.sink.abort()
            self.batch.sink = None


class _RawNameMultiPartParser(DjangoMultiPartParser):
    """Django's parser, but file names are kept as sent so the namespace's rules judge them and a
    bad one gets a clear 400 (Django silently drops ``..`` and strips control characters)."""

    def sanitize_file_name(self, file_name):
        return file_name or None


class StreamingMultiPartParser(BaseParser):
    """A DRF parser for ``multipart/form-data`` that stores files as they stream in.

    The view provides ``upload_workspace(user)`` (the target's workspace, after its access check)
    and keeps the :class:`UploadBatch` in ``view.upload_batch`` to discard what it did not commit.
    """

    media_type = "multipart/form-data"

    def parse(self, stream, media_type=None, parser_context=None):
        context = parser_context or {}
        request, view = context["request"], context["view"]
        user = request.__dict__.get("_user") or getattr(request._request, "user", None)
        meta = request.META.copy()
        meta["CONTENT_TYPE"] = media_type
        try:
            length = int(meta.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        batch = UploadBatch(resolve_workspace=lambda: view.upload_workspace(user=user), body_length=length)
        view.upload_batch = batch
        try:
            data, files = _RawNameMultiPartParser(
                meta, stream, [StreamingUploadHandler(batch)], context.get("encoding") or "utf-8"
            ).parse()
        except MultiPartParserError as error:
            batch.discard_uncommitted()
            raise ParseError(f"Multipart form parse error - {error}")
        except SuspiciousOperation as error:
            # Too many files or fields (DATA_UPLOAD_MAX_NUMBER_FILES / _FIELDS): say so clearly.
            batch.discard_uncommitted()
            raise ServiceError(code="too_many_parts", message=str(error), status_code=400)
        except BaseException:
            batch.discard_uncommitted()
            raise
        return DataAndFiles(data, files)
