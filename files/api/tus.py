"""tus 1.0.0 resumable uploads: ``/api/v1/uploads/`` (core, creation, creation-with-upload,
creation-defer-length, termination, checksum, expiration). The protocol lives here; the rules in
files/resumable.py and (PATCH) files/upload_writing.py. Bodies are read in blocks straight from the
request, never buffered whole.
"""

from __future__ import annotations

import base64
import binascii

from django.http import HttpResponse, JsonResponse
from django.urls import reverse
from django.utils.http import http_date
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from cloudstorage.api import error_body
from cloudstorage.errors import ServiceError
from files.models import Upload
from files.preconditions import Precondition
from files.resumable import (
    free_bytes,
    personal_workspace_of,
    upload_create,
    upload_expire,
    upload_get_for_user,
    upload_is_expired,
    upload_terminate,
)
from files.upload_writing import CHECKSUM_ALGORITHMS, checksum_parse, upload_write

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,creation-with-upload,creation-defer-length,termination,checksum,expiration"
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"


class TusPermission(BasePermission):
    """OPTIONS (discovery) is open to anyone; everything else needs a token or a session."""

    def has_permission(self, request, view) -> bool:
        return request.method == "OPTIONS" or bool(request.user and request.user.is_authenticated)


def _header_int(request: Request, name: str, *, required: bool = False) -> int | None:
    raw = request.headers.get(name)
    if raw is None or raw == "":
        if required:
            raise ServiceError(code="invalid", message=f"The {name} header is required.")
        return None
    if not raw.isdigit():
        raise ServiceError(code="invalid", message=f"{name} must be a non-negative integer.")
    return int(raw)


def metadata_parse(raw: str | None) -> dict[str, str]:
    """``Upload-Metadata: key base64,key2 base64,flag`` as a dict of decoded strings."""
    result: dict[str, str] = {}
    for pair in (raw or "").split(","):
        pair = pair.strip()
        if not pair:
            continue
        key, _, encoded = pair.partition(" ")
        try:
            value = base64.b64decode(encoded.strip(), validate=True).decode("utf-8") if encoded.strip() else ""
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise ServiceError(
                code="invalid", message=f"Upload-Metadata: the value of {key!r} is not base64 UTF-8."
            ) from None
        result[key] = value
    return result


def metadata_format(metadata: dict[str, str]) -> str:
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}" if value else key for key, value in metadata.items()
    )


def _body_reader(request: Request):
    """(read, content_length): Django's bounded stream, or the raw input of a chunked request."""
    django_request = request._request
    raw = request.META.get("CONTENT_LENGTH")
    if raw:
        if not raw.isdigit():
            raise ServiceError(code="invalid", message="Bad Content-Length.")
        return django_request.read, int(raw)
    if request.META.get("wsgi.input_terminated"):
        # Chunked transfer encoding (gunicorn): the server ends the input at the last chunk.
        return request.META["wsgi.input"].read, None
    return (lambda n: b""), 0


def _offset_body(request: Request) -> bool:
    return request.content_type.split(";")[0].strip().lower() == OFFSET_CONTENT_TYPE


class TusView(APIView):
    permission_classes = [TusPermission]
    parser_classes: list = []  # DRF must never parse (and buffer) a body here

    def dispatch(self, request, *args, **kwargs):
        # tus: clients whose environment cannot send PATCH or DELETE POST with this header instead.
        override = request.META.get("HTTP_X_HTTP_METHOD_OVERRIDE", "").upper()
        if request.method == "POST" and override in ("PATCH", "DELETE", "HEAD"):
            request.method = override
        return super().dispatch(request, *args, **kwargs)

    def get_throttles(self):
        # Creation is throttled like any write; the PATCHes and HEADs of an upload already created
        # are bounded by its reserved length, and a fast client with small PATCHes must not hit 429.
        if self.request.method in ("PATCH", "HEAD", "OPTIONS"):
            return []
        return super().get_throttles()

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.method != "OPTIONS" and request.headers.get("Tus-Resumable") != TUS_VERSION:
            raise ServiceError(
                code="tus_version_unsupported",
                message=f"Only tus {TUS_VERSION} is supported (send Tus-Resumable: {TUS_VERSION}).",
                status_code=412,
            )

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Tus-Resumable"] = TUS_VERSION
        if response.status_code == 412:
            response["Tus-Version"] = TUS_VERSION
        if response.status_code == 460:
            response.reason_phrase = "Checksum Mismatch"
        if request.method == "HEAD" and not getattr(response, "streaming", False):
            response.content = b""
        return response

    def options(self, request, *args, **kwargs):
        response = HttpResponse(status=204)
        response["Tus-Version"] = TUS_VERSION
        response["Tus-Extension"] = TUS_EXTENSIONS
        response["Tus-Checksum-Algorithm"] = ",".join(CHECKSUM_ALGORITHMS)
        free = free_bytes(workspace=personal_workspace_of(user=request.user))
        if free is not None:
            response["Tus-Max-Size"] = str(free)
        return response


def _upload_headers(response: HttpResponse, upload: Upload) -> HttpResponse:
    response["Upload-Offset"] = str(upload.offset)
    if upload.state == Upload.State.ACTIVE:
        response["Upload-Expires"] = http_date(upload.expires_at.timestamp())
    return response


def _location(upload: Upload) -> str:
    # Root-relative: right behind any proxy, whatever scheme and host it was reached by.
    return reverse("tus_upload", kwargs={"upload_id": upload.pk})


class UploadCollection(TusView):
    @extend_schema(
        request=None,
        responses={201: None},
        parameters=[
            OpenApiParameter("Tus-Resumable", str, OpenApiParameter.HEADER, required=True),
            OpenApiParameter("Upload-Length", int, OpenApiParameter.HEADER),
            OpenApiParameter("Upload-Defer-Length", int, OpenApiParameter.HEADER),
            OpenApiParameter(
                "Upload-Metadata",
                str,
                OpenApiParameter.HEADER,
                description="`filename`, `parent` (folder id; the personal root when omitted), "
                "optional `relative_path` (folders to create), each base64.",
            ),
        ],
        summary="Create a resumable upload (tus 1.0)",
    )
    def post(self, request: Request) -> HttpResponse:
        length = _header_int(request, "Upload-Length")
        deferred = request.headers.get("Upload-Defer-Length")
        if deferred is not None and deferred != "1":
            raise ServiceError(code="invalid", message="Upload-Defer-Length must be 1.")
        if (length is None) == (deferred is None):
            raise ServiceError(code="invalid", message="Send exactly one of Upload-Length and Upload-Defer-Length.")
        metadata = metadata_parse(request.headers.get("Upload-Metadata"))
        upload = upload_create(
            user=request.user,
            filename=metadata.get("filename") or metadata.get("name") or "",
            parent_id=metadata.get("parent") or None,
            relative_path=metadata.get("relative_path") or metadata.get("relativePath") or "",
            length=length,
            metadata=metadata,
            # If-Match / If-None-Match on the creation request (or as metadata keys of those names,
            # for clients that cannot set headers): checked now and when the upload completes.
            precondition=Precondition.from_headers(request.META) or Precondition.from_metadata(metadata),
        )
        response = HttpResponse(status=201)
        response["Location"] = _location(upload)
        if _offset_body(request):
            # creation-with-upload: the first bytes ride along with the creation request.
            read, content_length = _body_reader(request)
            if content_length != 0:
                try:
                    upload = upload_write(
                        upload=upload,
                        offset=0,
                        read=read,
                        content_length=content_length,
                        checksum=checksum_parse(request.headers.get("Upload-Checksum")),
                    )
                except ServiceError as error:
                    # Created all the same: the client resumes from the Location it is given here.
                    failed = JsonResponse(
                        error_body(error.code, error.message, error.details), status=error.status_code
                    )
                    failed["Location"] = response["Location"]
                    return _upload_headers(failed, upload)
        free = free_bytes(workspace=upload.workspace)
        response["Tus-Max-Size"] = str(free + upload.reserved_bytes)
        return _upload_headers(response, upload)


class UploadDetail(TusView):
    def _get(self, request: Request, upload_id) -> Upload:
        upload = upload_get_for_user(user=request.user, upload_id=upload_id)
        if upload_is_expired(upload=upload):
            upload_expire(upload=upload)
            raise ServiceError(code="upload_expired", message="This upload has expired.", status_code=410)
        if upload.state == Upload.State.FAILED:
            raise ServiceError(code="upload_failed", message=f"This upload failed: {upload.error}", status_code=410)
        return upload

    @extend_schema(request=None, responses={200: None}, summary="Where a resumable upload stands (tus HEAD)")
    def head(self, request: Request, upload_id) -> HttpResponse:
        upload = self._get(request, upload_id)
        response = HttpResponse(status=200)
        response["Cache-Control"] = "no-store"
        if upload.length is None:
            response["Upload-Defer-Length"] = "1"
        else:
            response["Upload-Length"] = str(upload.length)
        if upload.metadata:
            response["Upload-Metadata"] = metadata_format(upload.metadata)
        return _upload_headers(response, upload)

    @extend_schema(request=None, responses={204: None}, summary="Append bytes at Upload-Offset (tus PATCH)")
    def patch(self, request: Request, upload_id) -> HttpResponse:
        if not _offset_body(request):
            raise ServiceError(
                code="unsupported_media_type",
                message=f"PATCH needs Content-Type: {OFFSET_CONTENT_TYPE}.",
                status_code=415,
            )
        offset = _header_int(request, "Upload-Offset", required=True)
        upload = self._get(request, upload_id)
        read, content_length = _body_reader(request)
        upload = upload_write(
            upload=upload,
            offset=offset,
            read=read,
            content_length=content_length,
            checksum=checksum_parse(request.headers.get("Upload-Checksum")),
            length=_header_int(request, "Upload-Length"),
        )
        return _upload_headers(HttpResponse(status=204), upload)

    @extend_schema(request=None, responses={204: None}, summary="Cancel a resumable upload (tus termination)")
    def delete(self, request: Request, upload_id) -> HttpResponse:
        upload = upload_get_for_user(user=request.user, upload_id=upload_id)
        upload_terminate(upload=upload)
        return HttpResponse(status=204)


upload_collection = UploadCollection.as_view()
upload_detail = UploadDetail.as_view()
