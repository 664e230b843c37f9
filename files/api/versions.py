"""A file's history: list, rollback (a new version equal to an old one), pin/unpin, delete an old
version; and the workspace's version policy."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from cloudstorage.errors import ServiceError
from files.access import node_get_for_user, workspace_get_for_user
from files.activity import activity_record
from files.api.serializers import NodeOut, VersionOut, VersionPinIn, VersionPolicyIO
from files.models import FileVersion
from files.selectors import versions_of
from files.versions import policy_for, version_delete, version_pin, version_policy_set, version_restore

VERSION_EXAMPLE = {
    "number": 2,
    "size": 48213,
    "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "mime_type": "application/pdf",
    "created_at": "2026-11-23T10:30:00Z",
    "created_by": "ada@example.com",
    "pinned": False,
    "restored_from": None,
    "current": True,
}


def _file(request: Request, node_id, need: str = "view"):
    node = node_get_for_user(user=request.user, node_id=node_id, need=need)
    if not node.is_file:
        raise ServiceError(code="not_a_file", message="Only a file has versions.", status_code=400)
    return node


@extend_schema(
    responses={200: VersionOut(many=True)},
    summary="A file's versions, newest first",
    examples=[OpenApiExample("history", value=[VERSION_EXAMPLE], response_only=True)],
)
@api_view(["GET"])
def version_list(request: Request, node_id) -> Response:
    node = _file(request, node_id)
    return Response(VersionOut(versions_of(node=node), many=True, context={"current_number": node.version}).data)


@extend_schema(
    request=None,
    responses={201: NodeOut},
    summary="Roll back: make a new version with the content of version n",
    description="History is never rewritten: version n stays, and a new version (restored_from = n) becomes current. "
    "It costs quota like any version, but stores no new chunks.",
)
@api_view(["POST"])
def version_restore_view(request: Request, node_id, number: int) -> Response:
    node = _file(request, node_id, need="edit")
    version = version_restore(user=request.user, node=node, number=number)
    activity_record(
        workspace_id=node.workspace_id,
        actor=request.user,
        verb="restore_version",
        node=node,
        details={"from": number, "version": version.number},
    )
    node = node_get_for_user(user=request.user, node_id=node.pk)
    return Response(NodeOut(node, context={"user": request.user}).data, status=status.HTTP_201_CREATED)


@extend_schema(
    methods=["PATCH"],
    request=VersionPinIn,
    responses={200: VersionOut},
    summary="Pin a version (the version policy never removes it) or unpin it",
    examples=[OpenApiExample("pin", value={"pinned": True}, request_only=True)],
)
@extend_schema(
    methods=["DELETE"],
    request=None,
    responses={204: None},
    summary="Delete an old version (not the current one); its bytes leave the quota",
)
@api_view(["PATCH", "DELETE"])
def version_detail(request: Request, node_id, number: int) -> Response:
    node = _file(request, node_id, need="edit")
    if request.method == "DELETE":
        version = FileVersion.objects.filter(node=node, number=number).select_related("workspace", "manifest").first()
        if version is None:
            raise ServiceError(code="not_found", message=f"This file has no version {number}.", status_code=404)
        if version.pk == node.current_version_id:
            raise ServiceError(
                code="current_version",
                message="The current version cannot be deleted; delete the file or restore another version first.",
                status_code=409,
            )
        version_delete(version=version)
        activity_record(
            workspace_id=node.workspace_id,
            actor=request.user,
            verb="delete_version",
            node=node,
            details={"version": number},
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
    data = VersionPinIn(data=request.data)
    data.is_valid(raise_exception=True)
    version = version_pin(user=request.user, node=node, number=number, pinned=data.validated_data["pinned"])
    return Response(VersionOut(version, context={"current_number": node.version}).data)


@extend_schema(methods=["GET"], responses={200: VersionPolicyIO}, summary="The workspace's version policy")
@extend_schema(
    methods=["PUT"],
    request=VersionPolicyIO,
    responses={200: VersionPolicyIO},
    summary="Set the version policy (owners and admins): keep the last N versions, optionally none older than D days",
    description="Pinned versions and current versions are always kept. Applied at once to existing files.",
    examples=[OpenApiExample("keep 10 for 90 days", value={"keep_versions": 10, "keep_days": 90})],
)
@api_view(["GET", "PUT"])
def version_policy(request: Request, workspace_id) -> Response:
    if request.method == "GET":
        workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
        policy = policy_for(workspace_id=workspace.pk)
        return Response(VersionPolicyIO(policy).data)
    workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id, need="manage")
    data = VersionPolicyIO(data=request.data)
    data.is_valid(raise_exception=True)
    policy = version_policy_set(
        workspace=workspace,
        keep_versions=data.validated_data["keep_versions"],
        keep_days=data.validated_data.get("keep_days"),
    )
    return Response(VersionPolicyIO(policy).data)
