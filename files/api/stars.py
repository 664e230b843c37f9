"""Stars: PUT/DELETE /api/v1/nodes/{id}/star/ and GET /api/v1/starred/ (the caller's own)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from files.access import node_get_for_user, node_paths_for_user
from files.api.serializers import NodeOut, tags_by_node
from files.stars import star_set, starred_for_user


@extend_schema(request=None, responses={204: None}, summary="Star (PUT) or unstar (DELETE) a file or folder")
@api_view(["PUT", "DELETE"])
def node_star(request: Request, node_id) -> Response:
    node = node_get_for_user(user=request.user, node_id=node_id)
    star_set(user=request.user, node=node, starred=request.method == "PUT")
    return Response(status=204)


@extend_schema(responses={200: NodeOut(many=True)}, summary="The caller's starred files and folders")
@api_view(["GET"])
def starred_list(request: Request) -> Response:
    nodes = starred_for_user(user=request.user)
    paths: dict = {}
    for workspace_id in {node.workspace_id for node in nodes}:
        group = [node for node in nodes if node.workspace_id == workspace_id]
        paths.update(node_paths_for_user(user=request.user, nodes=group))
    context = {"user": request.user, "paths": paths, "tags": tags_by_node([node.pk for node in nodes])}
    return Response(NodeOut(nodes, many=True, context=context).data)
