"""A node (file or folder): read, rename/move/metadata, delete to the trash, copy, and a folder's children."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, PolymorphicProxySerializer, extend_schema
from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cloudstorage.api import cursor_page
from cloudstorage.errors import ServiceError
from cloudstorage.pagination import TieBreakingCursorPagination
from cloudstorage.parsers import JSONParser
from files.access import node_get_for_user, node_path_for_user, permission_after_write
from files.activity import activity_record
from files.api.serializers import (
    CopyIn,
    FolderCreateIn,
    NodeOut,
    NodeUpdateIn,
    UploadIn,
    UploadOut,
    node_row_out,
)
from files.api.uploads import IF_MATCH_PARAMETERS, multipart_upload
from files.folders import folder_create
from files.nodes import node_copy, node_update, target_folder_get
from files.preconditions import Precondition
from files.selectors import ChildrenSource
from files.trash import node_trash
from files.uploadhandler import StreamingMultiPartParser

NODE_EXAMPLE = {
    "id": "5b0e0f53-3c1a-4c5e-9a53-2f7c1f1e8a10",
    "type": "file",
    "name": "report.pdf",
    "parent": "9a1e2b44-7d1f-4f0a-8c55-0e1b2c3d4e5f",
    "workspace": "4f7c9d2e-1a2b-4c3d-8e9f-0a1b2c3d4e5f",
    "path": "/Projects/report.pdf",
    "size": 48213,
    "mime_type": "application/pdf",
    "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "version": 3,
    "created_at": "2026-11-23T09:00:00Z",
    "modified_at": "2026-11-23T10:30:00Z",
    "tags": ["finance", "q4"],
    "description": "Quarterly report",
    "permission": "manage",
}
FOLDER_EXAMPLE = NODE_EXAMPLE | {
    "type": "folder",
    "name": "Projects",
    "path": "/Projects",
    "size": 0,
    "mime_type": "",
    "sha256": "",
    "version": 0,
    "tags": [],
    "description": "",
}


# What If-Match means on a node's PATCH and DELETE (the API schema's descriptions).
IF_MATCH_NOTE = '`If-Match: "<sha256>"`: only while the file still has that content (412 precondition_failed)'


def node_out(node, *, user, **context) -> dict:
    return NodeOut(node, context={"user": user, **context}).data


@extend_schema(
    methods=["GET"],
    responses={200: NodeOut},
    summary="A file or folder",
    examples=[OpenApiExample("file", value=NODE_EXAMPLE, response_only=True)],
)
@extend_schema(
    methods=["PATCH"],
    request=NodeUpdateIn,
    parameters=IF_MATCH_PARAMETERS,
    responses={200: NodeOut},
    summary="Rename, move (O(1)), set tags and description",
    description="Any subset of the fields. A move goes into another folder of the same workspace; a folder "
    "cannot move into itself or a subfolder. Names are unique among live siblings (case-insensitively): "
    "409 name_conflict. Bad names: 400 invalid_name. Unknown or foreign parent: 400 invalid_parent. "
    + IF_MATCH_NOTE
    + ".",
    examples=[
        OpenApiExample("rename", value={"name": "final report.pdf"}, request_only=True),
        OpenApiExample("move", value={"parent": "9a1e2b44-7d1f-4f0a-8c55-0e1b2c3d4e5f"}, request_only=True),
        OpenApiExample("metadata", value={"tags": ["finance", "q4"], "description": "Quarterly"}, request_only=True),
        OpenApiExample(
            "conflict",
            value={
                "error": {
                    "code": "name_conflict",
                    "message": 'An item named "report.pdf" already exists in this folder.',
                    "details": {"name": "report.pdf", "existing_id": "…"},
                }
            },
            response_only=True,
            status_codes=["409"],
        ),
    ],
)
@extend_schema(
    methods=["DELETE"],
    request=None,
    parameters=IF_MATCH_PARAMETERS,
    responses={204: None},
    summary="Move to the trash",
    description=IF_MATCH_NOTE + ", so a sync client's delete of the version it saw never trashes a newer one.",
)
@api_view(["GET", "PATCH", "DELETE"])
def node_detail(request: Request, node_id) -> Response:
    if request.method == "GET":
        node = node_get_for_user(user=request.user, node_id=node_id)
        return Response(node_out(node, user=request.user))
    node = node_get_for_user(user=request.user, node_id=node_id, need="edit")
    if request.method == "DELETE":
        node_trash(user=request.user, node=node, precondition=Precondition.from_headers(request.META))
        return Response(status=status.HTTP_204_NO_CONTENT)
    data = NodeUpdateIn(data=request.data)
    data.is_valid(raise_exception=True)
    fields = data.validated_data
    parent = target_folder_get(user=request.user, node=node, parent_id=fields["parent"]) if "parent" in fields else None
    node = node_update(
        user=request.user,
        node=node,
        name=fields.get("name"),
        parent=parent,
        tags=fields.get("tags"),
        description=fields.get("description"),
        precondition=Precondition.from_headers(request.META),
    )
    permission_after_write(node=node, through=parent or node)
    return Response(node_out(node, user=request.user))


@extend_schema(
    request=CopyIn,
    responses={201: NodeOut},
    summary="Copy a file or a folder tree (shares stored chunks, costs quota)",
    description="Without `name` a clash gets a ' (copy)' suffix; with `name` a clash is a 409. The copy's bytes "
    "count against the quota (413 quota_exceeded if they do not fit; nothing is copied then).",
    examples=[
        OpenApiExample("copy", value={"parent": "9a1e2b44-7d1f-4f0a-8c55-0e1b2c3d4e5f"}, request_only=True),
        OpenApiExample("copy as", value={"parent": "9a1e…", "name": "report (draft).pdf"}, request_only=True),
    ],
)
@api_view(["POST"])
def node_copy_view(request: Request, node_id) -> Response:
    node = node_get_for_user(user=request.user, node_id=node_id)
    data = CopyIn(data=request.data)
    data.is_valid(raise_exception=True)
    parent = target_folder_get(user=request.user, node=node, parent_id=data.validated_data["parent"])
    copy = node_copy(user=request.user, node=node, parent=parent, name=data.validated_data.get("name"))
    permission_after_write(node=copy, through=parent)
    return Response(node_out(copy, user=request.user), status=status.HTTP_201_CREATED)


class ChildrenPagination(TieBreakingCursorPagination):
    """Cursor pages in the order of one of the listing indexes (parent, live, key)."""

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000
    # name_key is unique among live siblings, so it also breaks ties of size and time.
    ORDERINGS = {
        "name": ("name_key",),
        "-name": ("-name_key",),
        "size": ("size", "name_key"),
        "-size": ("-size", "-name_key"),
        "modified": ("modified_at", "name_key"),
        "-modified": ("-modified_at", "-name_key"),
    }

    def get_ordering(self, request, queryset, view):
        key = request.query_params.get("ordering") or "name"
        if key not in self.ORDERINGS:
            raise ServiceError(
                code="invalid_ordering",
                message=f"ordering is one of {', '.join(self.ORDERINGS)}.",
                status_code=400,
            )
        return self.ORDERINGS[key]


class ChildrenView(APIView):
    """``GET`` lists a folder; ``POST`` creates a folder (JSON) or uploads files (multipart).

    Multipart bodies are parsed by :class:`StreamingMultiPartParser`, which stores each file as it
    arrives and asks :meth:`upload_workspace` where to (after the access check); what the request
    does not commit is discarded when it ends, whatever happens.
    """

    parser_classes = [JSONParser, StreamingMultiPartParser]
    upload_batch = None
    upload_parent = None

    def dispatch(self, request, *args, **kwargs):
        self.upload_batch = None
        self.upload_parent = None
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            if self.upload_batch is not None:
                self.upload_batch.discard_uncommitted()

    def upload_workspace(self, *, user):
        # post() decided access before it touched the body; the parser runs after that, for the same
        # request and user, so the answer is reused rather than asked of the database again.
        parent = self.upload_parent
        if parent is None:
            parent = node_get_for_user(user=user, node_id=self.kwargs["node_id"], need="edit")
        if not parent.is_folder:
            raise ServiceError(
                code="not_a_folder", message="Files can only be uploaded into a folder.", status_code=400
            )
        return parent.workspace

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "ordering",
                str,
                enum=list(ChildrenPagination.ORDERINGS),
                description="name (default), size or modified; a leading - for descending.",
            ),
            OpenApiParameter("page_size", int, description="1–1000, default 100."),
        ],
        responses={200: cursor_page("ChildrenPage", NodeOut)},
        summary="A folder's live children, cursor-paginated",
        examples=[
            OpenApiExample(
                "page",
                value={
                    "next": "https://…/children/?cursor=cD1yZXBvcnQ%3D",
                    "previous": None,
                    "results": [NODE_EXAMPLE],
                },
                response_only=True,
            )
        ],
    )
    def get(self, request: Request, node_id) -> Response:
        folder = node_get_for_user(user=request.user, node_id=node_id)
        if not folder.is_folder:
            raise ServiceError(code="not_a_folder", message="Only a folder has children.", status_code=400)
        paginator = ChildrenPagination()
        rows = paginator.paginate_queryset(ChildrenSource(folder), request, view=self)
        base = node_path_for_user(user=request.user, node=folder).rstrip("/")
        shared = {"parent_id": folder.pk, "workspace_id": folder.workspace_id}
        return paginator.get_paginated_response(
            [
                node_row_out(
                    row | shared,
                    path=f"{base}/{row['name']}",
                    tags=row["tag_names"],
                    permission=folder.permission,
                )
                for row in rows
            ]
        )

    @extend_schema(
        request={"application/json": FolderCreateIn, "multipart/form-data": UploadIn},
        responses={
            201: PolymorphicProxySerializer(
                "ChildCreated", serializers=[NodeOut, UploadOut], resource_type_field_name=None
            )
        },
        summary="Create a folder (JSON) or upload files and folder trees (multipart)",
        description='JSON `{type: "folder", name}` creates a folder (201). Multipart: one or more `file` parts '
        "and optionally one `relative_path` per file, in the same order (`photos/2024/a.jpg`), creating the folders "
        "on the way; a file whose name exists becomes its new version. Files are streamed into the store as they "
        "arrive (never held whole in memory or a temporary file). Answers 201 with the uploaded files.",
        examples=[
            OpenApiExample("new folder", value={"type": "folder", "name": "Projects"}, request_only=True),
            OpenApiExample("folder created", value=FOLDER_EXAMPLE, response_only=True, status_codes=["201"]),
            OpenApiExample(
                "over quota",
                value={
                    "error": {
                        "code": "quota_exceeded",
                        "message": "Not enough space: this needs 2.0 GB and 1.1 GB is free. …",
                        "details": {"needed_bytes": 2147483648, "free_bytes": 1181116006, "quota_bytes": 10737418240},
                    }
                },
                response_only=True,
                status_codes=["413"],
            ),
        ],
    )
    def post(self, request: Request, node_id) -> Response:
        parent = node_get_for_user(user=request.user, node_id=node_id, need="edit")
        self.upload_parent = parent
        if (request.content_type or "").startswith("multipart/"):
            body = multipart_upload(request=request, parent=parent)
            return Response(body, status=status.HTTP_201_CREATED)
        data = FolderCreateIn(data=request.data)
        data.is_valid(raise_exception=True)
        folder = folder_create(user=request.user, parent=parent, name=data.validated_data["name"])
        activity_record(workspace_id=folder.workspace_id, actor=request.user, verb="create_folder", node=folder)
        permission_after_write(node=folder, through=parent)
        return Response(node_out(folder, user=request.user), status=status.HTTP_201_CREATED)
