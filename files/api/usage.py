"""Storage analytics of a workspace (members)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from files.access import workspace_get_for_user
from files.api.serializers import FileTypesOut, UsageOut
from files.selectors import workspace_usage, workspace_usage_by_type


@extend_schema(
    responses={200: UsageOut},
    summary="Used / quota / free, and bytes in current files, older versions and the trash",
    examples=[
        OpenApiExample(
            "usage",
            response_only=True,
            value={
                "used_bytes": 5368709120,
                "quota_bytes": 10737418240,
                "free_bytes": 5368709120,
                "percent_used": 50.0,
                "current_bytes": 4294967296,
                "versions_bytes": 805306368,
                "trash_bytes": 268435456,
                "logical_bytes": 5368709120,
                "stored_bytes": 3221225472,
                "dedup_saved_bytes": 2147483648,
                "files": 1204,
                "folders": 87,
                "versions": 1650,
                "trashed_versions": 12,
            },
        )
    ],
)
@api_view(["GET"])
def usage(request: Request, workspace_id) -> Response:
    workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
    return Response(UsageOut(workspace_usage(workspace=workspace)).data)


@extend_schema(
    responses={200: FileTypesOut},
    summary="Bytes and counts of current files by type and by MIME type",
    examples=[
        OpenApiExample(
            "types",
            response_only=True,
            value={
                "types": [{"type": "image", "count": 812, "bytes": 2147483648}],
                "mime_types": [{"mime_type": "image/jpeg", "count": 790, "bytes": 2040109465}],
            },
        )
    ],
)
@api_view(["GET"])
def usage_file_types(request: Request, workspace_id) -> Response:
    workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
    return Response(FileTypesOut(workspace_usage_by_type(workspace=workspace)).data)
