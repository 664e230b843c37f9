"""Uploads: multipart (many files, folder trees) and raw streaming PUT of one file by name.

Neither path ever holds a whole file: multipart parts are stored as they arrive by
:mod:`files.uploadhandler`; a raw body is read from the WSGI stream in blocks.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import api_view, parser_classes
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response

from cloudstorage.errors import ServiceError
from files.access import node_get_for_user, node_paths_for_user, permission_after_write
from files.api.serializers import NodeOut, tags_by_node
from files.names import name_clean, relative_path_split
from files.preconditions import Precondition
from files.uploads import file_upload, uploads_commit

IF_MATCH_PARAMETERS = [
    OpenApiParameter(
        "If-Match", str, OpenApiParameter.HEADER, description='"<sha256>" (or *): write only if the file is unchanged'
    ),
    OpenApiParameter("If-None-Match", str, OpenApiParameter.HEADER, description="*: only create, never replace"),
]


class RawBodyParser(BaseParser):
    """Declares that any media type is accepted as the raw file body; the view reads the stream
    itself and never touches ``request.data``, so DRF never buffers it."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):  # pragma: no cover - never called
        raise ServiceError(code="invalid", message="The body is the file's content.", status_code=400)


def request_body(request: Request) -> tuple[object, int | None]:
    """The raw body as a readable stream, and its size when the client declared one.

    Django limits its stream to Content-Length and reads nothing without one; a chunked body (no
    Content-Length, a server such as gunicorn that terminates the input) is read from wsgi.input.
    """
    django_request = request._request
    meta = django_request.META
    length = meta.get("CONTENT_LENGTH")
    if length not in (None, ""):
        try:
            size = int(length)
        except ValueError:
            size = -1
        if size < 0:
            raise ServiceError(code="invalid", message="Bad Content-Length.", status_code=400)
        return django_request, size
    if meta.get("wsgi.input_terminated"):
        return meta["wsgi.input"], None
    return django_request, 0


def multipart_upload(*, request: Request, parent) -> dict:
    """Commit what the streaming parser stored to ``parent`` (or to ``parent/relative_path``)."""
    uploads = list(request.FILES.getlist("file"))
    paths = request.data.getlist("relative_path") if hasattr(request.data, "getlist") else []
    if not uploads:
        raise ServiceError(code="no_files", message='Send one or more files in the "file" field.', status_code=400)
    if paths and len(paths) != len(uploads):
        raise ServiceError(
            code="invalid",
            message=f"Send one relative_path per file ({len(uploads)} files, {len(paths)} paths).",
            status_code=400,
        )
    targets = [relative_path_split(path) for path in paths] if paths else [[name_clean(up.name)] for up in uploads]
    for upload in uploads:
        upload.committed = True  # ownership passes to uploads_commit (it commits or discards each)
    versions = uploads_commit(
        user=request.user,
        parent=parent,
        items=[(parts, up.content) for up, parts in zip(uploads, targets, strict=True)],
        activity_verb="upload",
    )
    nodes = [version.node for version in versions]
    # Each version carries the path computed for its change-feed entry: no query for them here.
    paths = {version.node.pk: version.node_path for version in versions}
    for node in nodes:
        permission_after_write(node=node, through=parent)
    # Only a file that existed before (a new version) can carry tags.
    context = {
        "user": request.user,
        "paths": node_paths_for_user(user=request.user, nodes=nodes, member=parent.member, full_paths=paths),
        "tags": tags_by_node([node.pk for node in nodes if node.version > 1]),
    }
    created = sum(1 for version in versions if version.number == 1)
    return {
        "created": created,
        "versioned": len(versions) - created,
        "nodes": NodeOut(nodes, many=True, context=context).data,
    }


@extend_schema(
    request={"application/octet-stream": OpenApiTypes.BINARY},
    parameters=[
        OpenApiParameter("name", str, OpenApiParameter.PATH, description="The file's name in the folder."),
        *IF_MATCH_PARAMETERS,
    ],
    responses={201: NodeOut, 200: NodeOut, 412: OpenApiResponse(description="If-Match / If-None-Match failed.")},
    summary="Upload one file by name, streaming the raw body (new file: 201, new version: 200)",
    description="The body is the file's bytes (any Content-Type). With Content-Length the quota is checked before "
    "a byte is stored (413 quota_exceeded); chunked bodies are checked as they stream. "
    '`If-Match: "<sha256>"` replaces the file only while it still has that content, `If-None-Match: *` only '
    "creates (412 precondition_failed otherwise, before and after the body is stored).",
    examples=[
        OpenApiExample("created", value={"id": "5b0e…", "type": "file", "name": "notes.txt"}, response_only=True)
    ],
)
@api_view(["PUT"])
@parser_classes([RawBodyParser])
def child_put(request: Request, node_id, name: str) -> Response:
    parent = node_get_for_user(user=request.user, node_id=node_id, need="edit")
    stream, size = request_body(request)
    version = file_upload(
        user=request.user,
        parent=parent,
        name=name,
        stream=stream,
        size=size,
        precondition=Precondition.from_headers(request.META),
        activity_verb="upload",
    )
    node = permission_after_write(node=version.node, through=parent)
    path = version.node_path
    created = version.number == 1  # a file's first version: the node was made by this request, so it has no tags
    context = {
        "user": request.user,
        "paths": node_paths_for_user(user=request.user, nodes=[node], member=parent.member, full_paths={node.pk: path}),
        "tags": {} if created else tags_by_node([node.pk]),
    }
    return Response(
        NodeOut(node, context=context).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
    )
