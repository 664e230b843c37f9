"""Previews and thumbnails as HTTP responses, for the dashboard and for public link pages.

A preview renders the bytes in the site's own page (<img>, <video>, <audio>, <iframe> for PDF,
text as text/plain); video and audio answer Range requests, so a player seeks without downloading
the whole file. Anything else gets no preview, so an uploaded HTML or SVG file never runs script
in the site's origin. Who may see the node is decided by the caller (files.access).
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

from disks.store import StoreError, manifest_open
from files.api.content import RangeNotSatisfiable, byte_range
from files.models import Node
from files.thumbnails import thumbnail_open

logger = logging.getLogger(__name__)

MEDIA_TYPES = {
    "image/png": "image",
    "image/jpeg": "image",
    "image/gif": "image",
    "image/webp": "image",
    "image/avif": "image",
    "image/bmp": "image",
    "application/pdf": "pdf",
    "video/mp4": "video",
    "video/webm": "video",
    "video/ogg": "video",
    "audio/mpeg": "audio",
    "audio/ogg": "audio",
    "audio/wav": "audio",
    "audio/x-wav": "audio",
    "audio/webm": "audio",
    "audio/mp4": "audio",
    "audio/flac": "audio",
}
TEXT_TYPES = {"application/json", "application/xml", "application/javascript"}
TEXT_PREVIEW_LIMIT = 512 * 1024
# Even if a type slipped through, the content runs in an opaque origin without scripts.
PREVIEW_POLICY = "sandbox; default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'"


def preview_kind(mime_type: str) -> str | None:
    """image, pdf, video, audio or text; None when the type has no preview."""
    mime = (mime_type or "").split(";")[0].strip().lower()
    if mime in MEDIA_TYPES:
        return MEDIA_TYPES[mime]
    if mime.startswith("text/") or mime in TEXT_TYPES:
        return "text"
    return None


def _headers(response: HttpResponse, *, cache: str) -> HttpResponse:
    response["Content-Disposition"] = "inline"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = PREVIEW_POLICY
    response["Cache-Control"] = cache
    return response


def preview_response(request: HttpRequest, node: Node) -> HttpResponse:
    """The node's current content for a preview, with Range for media; 415 without a preview."""
    version = node.current_version
    kind = preview_kind(version.mime_type)
    if kind is None:
        return HttpResponse("No preview for this type of file.", status=415, content_type="text/plain")
    if kind == "text":
        content_type, span = "text/plain; charset=utf-8", (0, min(version.size, TEXT_PREVIEW_LIMIT))
        status = 200
    else:
        content_type = version.mime_type.split(";")[0].strip().lower()
        try:
            span = byte_range(request.headers.get("Range", ""), version.size)
        except RangeNotSatisfiable:
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{version.size}"
            return response
        status = 206 if span else 200
        span = span or (0, version.size)
    start, end = span
    try:
        body = iter(()) if request.method == "HEAD" else manifest_open(manifest=version.manifest, start=start, end=end)
    except StoreError:
        logger.exception("preview of %s could not be read", node.pk)
        return HttpResponse("This file cannot be read right now.", status=503, content_type="text/plain")
    response = StreamingHttpResponse(body, status=status, content_type=content_type)
    response["Content-Length"] = str(end - start)
    if kind != "text":
        response["Accept-Ranges"] = "bytes"
        if status == 206:
            response["Content-Range"] = f"bytes {start}-{end - 1}/{version.size}"
    return _headers(response, cache="private, max-age=60")


def thumbnail_response(node: Node) -> HttpResponse:
    """The node's current thumbnail (JPEG); 404 while there is none (the page shows an icon)."""
    found = thumbnail_open(version=node.current_version) if node.current_version_id else None
    if found is None:
        return HttpResponse(status=404)
    body, size = found
    response = StreamingHttpResponse(body, content_type="image/jpeg")
    response["Content-Length"] = str(size)
    # A new version has a new thumbnail under the same address: the ETag tells them apart.
    response["ETag"] = f'"{node.current_version_id}"'
    return _headers(response, cache="private, max-age=300")
