"""A file's bytes: streamed download (Range, ETag, Last-Modified, Content-Disposition) and raw upload
of a new version."""

from __future__ import annotations

import json
import re

from django.http import HttpResponse, HttpResponseNotModified, StreamingHttpResponse
from django.utils.http import http_date, parse_http_date_safe
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.decorators import api_view, parser_classes
from rest_framework.request import Request
from rest_framework.response import Response

from cloudstorage.api import error_body
from cloudstorage.csp import USER_CONTENT_POLICY
from cloudstorage.errors import ServiceError
from disks.store import StoreError, manifest_open
from files.access import node_get_for_user, node_paths_for_user, permission_after_write
from files.api.serializers import NodeOut
from files.api.uploads import IF_MATCH_PARAMETERS, RawBodyParser, request_body
from files.models import FileVersion, Node
from files.names import content_disposition
from files.preconditions import Precondition
from files.uploads import file_upload_version

RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeNotSatisfiable(Exception):
    def __init__(self, size: int):
        self.size = size


def byte_range(header: str, size: int) -> tuple[int, int] | None:
    """``(start, end_exclusive)`` of a single ``bytes=`` range, None to send everything (absent or a
    multi-range, which RFC 9110 lets us ignore); ServiceError 416 when it lies past the end."""
    if not header:
        return None
    match = RANGE_RE.match(header.strip())
    if match is None:
        return None  # several ranges or another unit: answer with the whole content
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":  # the last N bytes
        length = int(last)
        if length == 0 or size == 0:  # RFC 9110: no byte of an empty content can be selected
            raise RangeNotSatisfiable(size)
        return max(size - length, 0), size
    start = int(first)
    end = min(int(last) + 1, size) if last != "" else size
    if last != "" and int(last) < start:
        return None  # syntactically invalid: ignored
    if start >= size:
        raise RangeNotSatisfiable(size)
    return start, end


def _version_of(node: Node, request: Request) -> FileVersion:
    raw = request.query_params.get("version")
    if raw in (None, ""):
        version = node.current_version
        if version is None:
            raise ServiceError(code="no_content", message="This file has no content yet.", status_code=404)
        return version
    # isascii: "²".isdigit() is true but int("²") fails; the bound keeps it within the column.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        raise ServiceError(code="invalid", message="version is a version number.", status_code=400)
    version = FileVersion.objects.filter(node=node, number=int(raw)).select_related("manifest").first()
    if version is None:
        raise ServiceError(code="not_found", message=f"This file has no version {raw}.", status_code=404)
    return version


def _etag_matches(header: str, etag: str) -> bool:
    candidates = [tag.strip() for tag in header.split(",")]
    return "*" in candidates or etag in candidates or f"W/{etag}" in candidates


def download(request: Request, node: Node) -> HttpResponse:
    """The streamed response for a file's (version's) content, honouring conditional and Range headers."""
    if not node.is_file:
        raise ServiceError(code="not_a_file", message="A folder is downloaded as a zip (…/zip).", status_code=400)
    version = _version_of(node, request)
    size = version.size
    etag = f'"{version.sha256}"'
    last_modified = http_date(version.created_at.timestamp())
    headers = {
        "ETag": etag,
        "Last-Modified": last_modified,
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, no-cache",
    }
    meta = request._request.META
    if_none_match = meta.get("HTTP_IF_NONE_MATCH", "")
    if if_none_match:
        not_modified = _etag_matches(if_none_match, etag)
    else:
        since = parse_http_date_safe(meta.get("HTTP_IF_MODIFIED_SINCE", ""))
        not_modified = since is not None and int(version.created_at.timestamp()) <= since
    if not_modified:
        # RFC 9110 §15.4.5: a 304 has no content, so no Content-Type of its own (HttpResponse's default
        # would be text/html), and §8.6: a Content-Length only if it is the 200's (CommonMiddleware
        # would add 0, which tells a cache the file is empty).
        response = HttpResponseNotModified()
        response["Content-Length"] = str(size)
        for key, value in headers.items():
            response[key] = value
        return response
    wanted = meta.get("HTTP_RANGE", "")
    if_range = meta.get("HTTP_IF_RANGE", "")
    if wanted and if_range and if_range.strip() != etag:
        since = parse_http_date_safe(if_range)
        if since is None or int(version.created_at.timestamp()) > since:
            wanted = ""  # the client's copy is stale: send the whole current content
    try:
        span = byte_range(wanted, size)
    except RangeNotSatisfiable:
        response = HttpResponse(
            status=416,
            content_type="application/json",
            content=json.dumps(
                error_body(
                    "range_not_satisfiable", f"The range is outside the content (0–{size} bytes).", {"size": size}
                )
            ),
        )
        response["Content-Range"] = f"bytes */{size}"
        return response
    start, end = span if span else (0, size)
    try:
        body = manifest_open(manifest=version.manifest, start=start, end=end) if request.method != "HEAD" else iter(())
    except StoreError as error:  # ChunkLostError included
        raise ServiceError(code="content_unavailable", message=str(error), status_code=503) from error
    response = StreamingHttpResponse(
        body, status=206 if span else 200, content_type=version.mime_type or "application/octet-stream"
    )
    response["Content-Length"] = str(end - start)
    if span:
        response["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    response["Content-Disposition"] = content_disposition(node.name)
    # User content is never a page of this site, even if a browser is talked into rendering it.
    response["Content-Security-Policy"] = USER_CONTENT_POLICY
    for key, value in headers.items():
        response[key] = value
    return response


@extend_schema(
    methods=["GET"],
    parameters=[
        OpenApiParameter("version", int, description="A version number (default: the current version)."),
        OpenApiParameter("Range", str, OpenApiParameter.HEADER, description="One range: bytes=0-1023, bytes=-500"),
        OpenApiParameter("If-None-Match", str, OpenApiParameter.HEADER, description='"<sha256>" → 304 if unchanged'),
    ],
    responses={
        (200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY, description="The whole content."),
        (206, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY, description="The requested range."),
        304: OpenApiResponse(description="Not modified (If-None-Match / If-Modified-Since)."),
        416: OpenApiResponse(description="Range past the end; Content-Range: bytes */size."),
    },
    summary="Download a file, streamed (Range, ETag, Content-Disposition)",
)
@extend_schema(
    methods=["PUT"],
    request={"application/octet-stream": OpenApiTypes.BINARY},
    parameters=IF_MATCH_PARAMETERS,
    responses={200: NodeOut, 412: OpenApiResponse(description="If-Match / If-None-Match failed; nothing stored.")},
    summary="Upload a new version of a file (raw streaming body)",
    examples=[OpenApiExample("new version", value={"id": "5b0e…", "version": 4}, response_only=True)],
)
@api_view(["GET", "HEAD", "PUT"])
@parser_classes([RawBodyParser])
def node_content(request: Request, node_id):
    if request.method in ("GET", "HEAD"):
        node = node_get_for_user(user=request.user, node_id=node_id)
        if node.is_file and node.current_version_id:
            node.current_version = (
                FileVersion.objects.select_related("manifest").filter(pk=node.current_version_id).first()
            )
        return download(request, node)
    node = node_get_for_user(user=request.user, node_id=node_id, need="edit")
    if not node.is_file:
        raise ServiceError(code="not_a_file", message="Only a file gets new content.", status_code=400)
    stream, size = request_body(request)
    version = file_upload_version(
        user=request.user,
        node=node,
        stream=stream,
        size=size,
        precondition=Precondition.from_headers(request.META),
        activity_verb="upload",
    )
    written = permission_after_write(node=version.node, through=node)
    path = version.node_path
    paths = node_paths_for_user(user=request.user, nodes=[written], member=node.member, full_paths={written.pk: path})
    return Response(NodeOut(written, context={"user": request.user, "paths": paths}).data)
