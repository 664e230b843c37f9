"""Search a workspace's live files and folders by name, description, tag and type."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from cloudstorage.api import cursor_page
from cloudstorage.errors import ServiceError
from cloudstorage.pagination import TieBreakingCursorPagination
from files.access import node_paths_for_user, workspace_get_for_user
from files.api.nodes import NODE_EXAMPLE
from files.api.serializers import NodeOut, tags_by_node
from files.selectors import nodes_search, search_kind_valid, search_kinds


class SearchPagination(TieBreakingCursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    ordering = ("name_key", "id")

    def get_ordering(self, request, queryset, view):
        # ?ordering=-modified: the dashboard's "Recent" view, newest change first.
        if request.query_params.get("ordering") == "-modified":
            return ("-modified_at", "-id")
        return self.ordering


@extend_schema(
    parameters=[
        OpenApiParameter("q", str, description="Text in the name, description or a tag (case-insensitive)."),
        OpenApiParameter(
            "type",
            str,
            description=", ".join(search_kinds()) + ", or an exact MIME type (text/plain); anything else is 400.",
        ),
        OpenApiParameter("tag", str, description="Only items with this tag (case-insensitive)."),
        OpenApiParameter("ordering", str, enum=["name", "-modified"], description="By name (default) or newest first."),
    ],
    responses={200: cursor_page("SearchPage", NodeOut)},
    summary="Search the workspace (members only; items in the trash are left out)",
    examples=[
        OpenApiExample("hits", value={"next": None, "previous": None, "results": [NODE_EXAMPLE]}, response_only=True)
    ],
)
@api_view(["GET"])
def workspace_search(request: Request, workspace_id) -> Response:
    workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
    params = request.query_params
    kind = params.get("type", "").strip()
    if not search_kind_valid(kind):
        accepted = search_kinds()
        raise ServiceError(
            code="invalid",
            message=f"type must be one of {', '.join(accepted)}, or a MIME type such as text/plain.",
            status_code=400,
            details={"type": kind[:100], "accepted": accepted},
        )
    results = nodes_search(
        workspace=workspace,
        q=params.get("q", "").strip()[:200],
        kind=kind,
        tag=params.get("tag", "").strip()[:64],
    )
    paginator = SearchPagination()
    page = paginator.paginate_queryset(results, request)
    context = {
        "user": request.user,
        # Search is for members only (workspace_get_for_user): they see paths from the root.
        "paths": node_paths_for_user(user=request.user, nodes=page, member=True),
        "tags": tags_by_node([node.pk for node in page]),
        "permission": workspace.permission,
    }
    return paginator.get_paginated_response(NodeOut(page, many=True, context=context).data)
