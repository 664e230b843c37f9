"""The trash: GET/DELETE /workspaces/{id}/trash/ (list, empty), POST /trash/{node_id}/restore/,
DELETE /trash/{node_id}/ (delete forever)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from cloudstorage.api import cursor_page
from files.access import node_get_for_user, workspace_get_for_user
from files.activity import node_path
from files.api.activity import NewestFirst
from files.models import Node
from files.trash import node_purge, trash_empty, trash_list, trash_path, trash_restore, trash_retention


class TrashItemOut(serializers.Serializer):
    id = serializers.UUIDField()
    type = serializers.CharField(source="kind")
    name = serializers.CharField()
    original_path = serializers.CharField(help_text="The folder the item was in: /folder")
    path = serializers.SerializerMethodField(help_text="Where the item was: /folder/name")
    size = serializers.IntegerField(source="trashed_bytes", help_text="Bytes of every version inside; freed by a purge")
    deleted_at = serializers.DateTimeField()
    deleted_by = serializers.EmailField(source="deleted_by.email", default=None)
    purge_at = serializers.SerializerMethodField()

    def get_path(self, node: Node) -> str:
        return trash_path(node=node)

    def get_purge_at(self, node: Node) -> str:
        return serializers.DateTimeField().to_representation(node.deleted_at + trash_retention())


class RestoredOut(serializers.Serializer):
    id = serializers.UUIDField()
    type = serializers.CharField(source="kind")
    name = serializers.CharField()
    parent = serializers.UUIDField(source="parent_id")
    path = serializers.SerializerMethodField()

    def get_path(self, node: Node) -> str:
        return node_path(node=node)


class TrashPages(NewestFirst):
    ordering = ("-deleted_at", "-id")


@extend_schema(
    methods=["GET"], responses={200: cursor_page("TrashPage", TrashItemOut)}, summary="The trash of a workspace"
)
@extend_schema(
    methods=["DELETE"],
    request=None,
    responses={200: inline_serializer("TrashEmptied", {"purged": serializers.IntegerField()})},
    summary="Empty the trash (owners and admins)",
)
@api_view(["GET", "DELETE"])
def workspace_trash(request: Request, workspace_id) -> Response:
    if request.method == "DELETE":
        workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id, need="manage")
        return Response({"purged": trash_empty(user=request.user, workspace=workspace)})
    workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id, need="view")
    paginator = TrashPages()
    page = paginator.paginate_queryset(trash_list(workspace=workspace), request)
    return paginator.get_paginated_response(TrashItemOut(page, many=True).data)


@extend_schema(request=None, responses={200: RestoredOut}, summary="Restore to the original path")
@api_view(["POST"])
def trash_restore_view(request: Request, node_id) -> Response:
    node = node_get_for_user(user=request.user, node_id=node_id, need="edit", trashed=True)
    return Response(RestoredOut(trash_restore(user=request.user, node=node)).data)


@extend_schema(request=None, responses={204: None}, summary="Delete forever")
@api_view(["DELETE"])
def trash_delete(request: Request, node_id) -> Response:
    node = node_get_for_user(user=request.user, node_id=node_id, need="edit", trashed=True)
    node_purge(user=request.user, node=node)
    return Response(status=status.HTTP_204_NO_CONTENT)
