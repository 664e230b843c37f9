"""GET /workspaces/{id}/changes/?cursor=&limit=&wait= : the change feed for sync clients (files/changes.py)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from cloudstorage.errors import ServiceError
from files.access import workspace_get_for_user
from files.changes import MAX_WAIT, changes_list, cursor_parse, latest_cursor
from files.models import Change

MAX_LIMIT = 1000


class ChangeOut(serializers.ModelSerializer):
    position = serializers.CharField(source="id", help_text="This entry's cursor.")
    node = serializers.UUIDField(source="node_id")
    type = serializers.CharField(source="node_type")
    parent = serializers.UUIDField(source="parent_id", allow_null=True)
    at = serializers.DateTimeField(source="created_at")

    class Meta:
        model = Change
        fields = [
            "position",
            "kind",
            "node",
            "type",
            "parent",
            "name",
            "path",
            "from_path",
            "size",
            "sha256",
            "version",
            "at",
        ]


class ChangesOut(serializers.Serializer):
    changes = ChangeOut(many=True)
    cursor = serializers.CharField(help_text="Send it back as ?cursor= for what comes next.")
    has_more = serializers.BooleanField(help_text="True: ask again at once, there is another page.")
    backoff = serializers.IntegerField(
        required=False, help_text="Only when the server could not wait: seconds to wait before asking again."
    )


def _int_param(request: Request, name: str, *, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise ServiceError(code="invalid", message=f"{name} is a whole number from {low} to {high}.", status_code=400)
    return int(raw)


@extend_schema(
    summary="The change feed of a workspace (sync clients)",
    description="Every create, update (new content), move, rename, metadata (tags or description; read the node "
    "for the new values), trash, restore and purge after `cursor`, oldest first. Without `cursor`: no changes and "
    "the current cursor; take it *before* listing the tree, then follow the feed from it. `has_more`: ask again at once. `wait` (1–60 s): when nothing is new yet, answer as soon as "
    "something changes (long-poll); a busy server may answer at once with `backoff` seconds to wait. A cursor "
    "older than the kept history (CLOUDSTORAGE_CHANGES_DAYS) is 410 cursor_expired: list the tree again; one past "
    "the newest change (never handed out) is 400 invalid_cursor. Trash and "
    "purge entries are for a subtree's root: everything under it went too. Members of the workspace only.",
    parameters=[
        OpenApiParameter("cursor", str, description="From the previous answer (absent: start now)."),
        OpenApiParameter("limit", int, description=f"1–{MAX_LIMIT}, default 500."),
        OpenApiParameter("wait", int, description=f"Long-poll up to this many seconds (0–{MAX_WAIT})."),
    ],
    responses={
        200: ChangesOut,
        400: OpenApiResponse(description="invalid_cursor: not a position this feed returned."),
        410: OpenApiResponse(description="cursor_expired: list the workspace again."),
    },
    examples=[
        OpenApiExample(
            "page",
            value={
                "changes": [
                    {
                        "position": "1042",
                        "kind": "rename",
                        "node": "5b0e0f53-3c1a-4c5e-9a53-2f7c1f1e8a10",
                        "type": "file",
                        "parent": "9a1e2b44-7d1f-4f0a-8c55-0e1b2c3d4e5f",
                        "name": "final.pdf",
                        "path": "/Projects/final.pdf",
                        "from_path": "/Projects/draft.pdf",
                        "size": 48213,
                        "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                        "version": 3,
                        "at": "2026-11-23T10:30:00Z",
                    }
                ],
                "cursor": "1042",
                "has_more": False,
            },
            response_only=True,
        )
    ],
)
@api_view(["GET"])
def workspace_changes(request: Request, workspace_id) -> Response:
    workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
    cursor = cursor_parse(request.query_params.get("cursor"))
    limit = _int_param(request, "limit", default=500, low=1, high=MAX_LIMIT)
    wait = _int_param(request, "wait", default=0, low=0, high=MAX_WAIT)
    if cursor is None:
        return Response({"changes": [], "cursor": str(latest_cursor(workspace_id=workspace.pk)), "has_more": False})
    page = changes_list(workspace_id=workspace.pk, cursor=cursor, limit=limit, wait=wait)
    body = {"changes": ChangeOut(page.changes, many=True).data, "cursor": str(page.cursor), "has_more": page.has_more}
    if page.backoff is not None:
        body["backoff"] = page.backoff
    return Response(body)
