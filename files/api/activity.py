"""The activity log of a workspace (who did what, when), for its owners and admins."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from cloudstorage.api import cursor_page
from cloudstorage.pagination import TieBreakingCursorPagination
from files.access import workspace_get_for_user
from files.models import Activity


class NewestFirst(TieBreakingCursorPagination):
    """Cursor pagination, newest first; ``ordering`` is set per list (a time, then the id that
    breaks its ties)."""

    page_size = 100
    max_page_size = 500
    page_size_query_param = "page_size"
    ordering = ("-created_at", "-id")


class ActivityOut(serializers.ModelSerializer):
    actor = serializers.EmailField(source="actor.email", default=None)
    node = serializers.UUIDField(source="node_id", allow_null=True)

    class Meta:
        model = Activity
        fields = ["id", "created_at", "actor", "verb", "node", "path", "details"]


class ActivityPages(NewestFirst):
    ordering = "-id"


@extend_schema(
    summary="Activity of a workspace (owners and admins)",
    parameters=[OpenApiParameter("verb", str, description="Only entries with this verb, e.g. share, delete, purge")],
    responses={200: cursor_page("ActivityPage", ActivityOut)},
)
@api_view(["GET"])
def workspace_activity(request: Request, workspace_id) -> Response:
    workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id, need="manage")
    entries = Activity.objects.filter(workspace=workspace).select_related("actor")
    verb = request.query_params.get("verb")
    if verb:
        entries = entries.filter(verb=verb)
    paginator = ActivityPages()
    page = paginator.paginate_queryset(entries, request)
    return paginator.get_paginated_response(ActivityOut(page, many=True).data)
