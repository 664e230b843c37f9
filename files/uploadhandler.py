"""Multipart uploads streamed straight into the chunk store.

Django's default upload handlers keep a file in memory or spool it to a temporary file before a
view sees it. Here the multipart parser pushes each file's bytes, as they arrive, into a
:class:`files.content.ContentSink` (chunked, encrypted, replicated, quota reserved on the way), so a
request of any size needs a few MiB of memory and no temporary file. What the parser hands the view
is a :class:`StoredUpload` per file: content that is durable but not yet visible anywhere; the view
commits each one to its place (the ``relative_path`` fields may come before or after the files), and
whatever is left uncommitted when the request ends is discarded (reservation and manifest released).

The API (:class:`StreamingMultiPartParser`) and the public file-request page both parse with
:func:`multipart_parse`, on python-multipart: it hands over each part's bytes as offsets into the
block read, so they reach the chunk store without a copy (Django's parser spent 1.5 ms of CPU per MB
slicing and re-joining every block; multipart uploads were ~13% slower than a raw PUT). A body is
refused whole (400, nothing kept) when it ends before its closing boundary.

The target folder is checked while parsing (the bytes must go to that workspace's store), so the
parser needs the caller: the authenticated DRF user, or during DRF's CSRF check of a session
request (which reads ``request.POST``) the session user that check is about to accept.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent, TooManyFilesSent
from django.http import QueryDict
from django.http.multipartparser import MultiPartParser as DjangoMultiPartParser
from django.utils.datastructures import MultiValueDict
from django.utils.encoding import force_str
from django.utils.http import parse_header_parameters
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser
from rest_framework.parsers import BaseParser, DataAndFiles

from cloudstorage.errors import ServiceError
from files.content import ContentSink, StoredContent

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
    # Files this request may carry (a public upload link's own bound); None: DATA_UPLOAD_MAX_NUMBER_FILES.
    max_files: int | None = None

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


class _Form:
    """The parts of one ``multipart/form-data`` body, pushed block by block through python-multipart
    (it hands each part's bytes over as offsets into the block received, so a file's bytes reach the
    chunk store without the copies Django's parser makes: 1.5 ms of CPU per MB there, 0.2 here).

    Fields are kept (decoded as Django decodes them, within DATA_UPLOAD_MAX_MEMORY_SIZE and
    DATA_UPLOAD_MAX_NUMBER_FIELDS); each ``file`` part goes into the batch's sink as it arrives, up
    to DATA_UPLOAD_MAX_NUMBER_FILES; python-multipart bounds a part's headers (8 lines of 4 KiB). A part without a Content-Disposition name is skipped, as Django
    does; a file part with an empty file name is a field, as in Django."""

    def __init__(self, batch: UploadBatch, encoding: str):
        self.batch = batch
        self.encoding = encoding
        self.data = QueryDict(mutable=True, encoding=encoding)
        self.files = MultiValueDict()
        self.ended = False
        self.fields = 0
        self.field_bytes = 0
        self.file_count = 0
        self._headers: list[tuple[bytearray, bytearray]] = []
        self._kind = None  # "field", "file" or None (skipped)
        self._name = ""
        self._file_name = ""
        self._value = bytearray()
        self._received = 0

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self._part_begin,
            "on_header_begin": self._header_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def _part_begin(self) -> None:
        self._headers, self._kind = [], None

    def _header_begin(self) -> None:
        self._headers.append((bytearray(), bytearray()))

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._headers[-1][0].extend(data[start:end])

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._headers[-1][1].extend(data[start:end])

    def _header(self, wanted: str) -> tuple[str, dict] | None:
        for name, value in self._headers:
            if bytes(name).strip().lower() != wanted.encode():
                continue
            try:  # as Django reads a part's header line: UTF-8, a bad one ignored
                return parse_header_parameters(bytes(value).decode().strip())
            except ValueError:
                return None
        return None

    def _headers_finished(self) -> None:
        disposition = self._header("content-disposition")
        name = (disposition[1].get("name") or "").strip() if disposition else ""
        if not name:
            return  # skipped, as Django skips a part it cannot name
        encoding = self._header("content-transfer-encoding")
        if encoding and encoding[0].lower() not in ("binary", "7bit", "8bit"):
            # RFC 7578 forbids it; browsers and HTTP clients never send one.
            raise _malformed(f"Content-Transfer-Encoding {encoding[0]} is not supported.")
        self._name = force_str(name, self.encoding, errors="replace")
        file_name = disposition[1].get("filename")
        if not file_name:
            self.fields += 1
            if (
                settings.DATA_UPLOAD_MAX_NUMBER_FIELDS is not None
                and self.fields > settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
            ):
                raise TooManyFieldsSent(
                    "The number of GET/POST parameters exceeded settings.DATA_UPLOAD_MAX_NUMBER_FIELDS."
                )
            self._kind, self._value = "field", bytearray()
            self._field_grow(len(self._name) + 2)  # as Django counts a field: its name and "&="
            return
        self.file_count += 1
        if (
            settings.DATA_UPLOAD_MAX_NUMBER_FILES is not None
            and self.file_count > settings.DATA_UPLOAD_MAX_NUMBER_FILES
        ):
            raise TooManyFilesSent("The number of files exceeded settings.DATA_UPLOAD_MAX_NUMBER_FILES.")
        if self.batch.max_files is not None and self.file_count > self.batch.max_files:
            # Refused before the file's bytes are stored; what came before is discarded.
            raise ServiceError(
                code="too_many_files",
                message=f"At most {self.batch.max_files} files can be sent at once; send the rest separately.",
                status_code=400,
                details={"max_files": self.batch.max_files},
            )
        if self._name != "file":
            raise ServiceError(
                code="invalid_field", message=f'Files go in the "file" field (got "{self._name}").', status_code=400
            )
        self._kind, self._file_name, self._received = "file", force_str(file_name, self.encoding, errors="replace"), 0
        self.batch.open()

    def _field_grow(self, size: int) -> None:
        self.field_bytes += size
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and self.field_bytes > limit:
            raise RequestDataTooBig("Request body exceeded settings.DATA_UPLOAD_MAX_MEMORY_SIZE.")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._kind == "file":
            self._received += end - start
            self.batch.consumed += end - start
            with memoryview(data) as view:
                self.batch.sink.write(view[start:end])
        elif self._kind == "field":
            self._field_grow(end - start)
            self._value.extend(data[start:end])

    def _part_end(self) -> None:
        if self._kind == "file":
            sink, self.batch.sink = self.batch.sink, None
            upload = StoredUpload(name=self._file_name, content=sink.finish(), size=self._received)
            self.batch.uploads.append(upload)
            self.files.appendlist(self._name, upload)
        elif self._kind == "field":
            self.data.appendlist(self._name, force_str(bytes(self._value), self.encoding, errors="replace"))
        self._kind = None

    def _end(self) -> None:
        self.ended = True


def _boundary(media_type: str) -> bytes:
    """The boundary of a ``multipart/form-data`` Content-Type, checked as Django checks it."""
    try:
        media_type.encode("ascii")
    except UnicodeEncodeError:
        raise _malformed("the Content-Type is not ASCII.") from None
    _, options = parse_header_parameters(media_type)
    boundary = options.get("boundary")
    if not boundary or not DjangoMultiPartParser.boundary_re.fullmatch(boundary):
        raise _malformed(f"Invalid boundary in multipart: {boundary or 'none'}")
    return boundary.encode("ascii")


PREAMBLE_MAX = 64 * 1024


def _skip_preamble(received: bytearray, boundary: bytes) -> bytes | None:
    """The body from its first boundary on; None while that has not arrived yet. A preamble before
    it (RFC 2046 allows one; no browser sends it) is dropped, as Django's parser drops it."""
    delimiter = b"--" + boundary
    if received.startswith(delimiter):
        return bytes(received)
    at = received.find(b"\r\n" + delimiter)
    if at >= 0:
        return bytes(received[at + 2 :])
    if len(received) > PREAMBLE_MAX:
        raise _malformed("no boundary in the first 64 KiB of the body.")
    return None


def _malformed(why: str) -> ServiceError:
    return ServiceError(code="parse_error", message=f"Multipart form parse error - {why}", status_code=400)


def multipart_parse(*, content_type: str, length: int, stream, batch: UploadBatch, encoding: str):
    """The fields (a QueryDict) and files (a MultiValueDict of :class:`StoredUpload`) of a
    ``multipart/form-data`` body read from ``stream``; each ``file`` part is stored as it arrives.
    A 400 ServiceError for a malformed body, with everything stored so far discarded."""
    form = _Form(batch, encoding)
    try:
        boundary = _boundary(content_type)
        if stream is None or length == 0:
            return form.data, form.files
        parser = MultipartParser(boundary, form.callbacks())
        preamble = bytearray()  # python-multipart wants the body to start at the first boundary
        while block := stream.read(UPLOAD_BLOCK):
            if preamble is not None:
                preamble += block
                block = _skip_preamble(preamble, boundary)
                if block is None:
                    continue
                preamble = None
            parser.write(block)
        if preamble is not None:
            raise _malformed("the body has no boundary.")
        parser.finalize()
        if not form.ended:
            raise _malformed("the body ended before its closing boundary.")
    except MultipartParseError as error:
        batch.discard_uncommitted()
        raise _malformed(str(error)) from None
    except SuspiciousOperation as error:
        # Too many files or fields (DATA_UPLOAD_MAX_NUMBER_FILES / _FIELDS), or too much field
        # data (DATA_UPLOAD_MAX_MEMORY_SIZE): say so clearly.
        batch.discard_uncommitted()
        raise ServiceError(code="too_many_parts", message=str(error), status_code=400) from None
    except BaseException:
        batch.discard_uncommitted()
        raise
    form.data._mutable = False
    return form.data, form.files


def request_length(meta) -> int:
    try:
        return int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


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
        length = request_length(request.META)
        batch = UploadBatch(resolve_workspace=lambda: view.upload_workspace(user=user), body_length=length)
        view.upload_batch = batch
        data, files = multipart_parse(
            content_type=media_type or "",
            length=length,
            stream=stream,
            batch=batch,
            encoding=context.get("encoding") or settings.DEFAULT_CHARSET,
        )
        return DataAndFiles(data, files)
