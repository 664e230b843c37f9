"""Workspaces, their members and invitations."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Invitation, Membership
from accounts.selectors import WORKSPACES, invitations_open_for, membership_get, workspace_get_for_user
from accounts.services import (
    invitation_accept,
    invitation_create,
    invitation_revoke,
    membership_change_role,
    membership_remove,
    workspace_create_team,
    workspace_rename,
)
from cloudstorage.api_fields import StrictCharField


class WorkspaceOut(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    kind = serializers.CharField()
    role = serializers.CharField()
    root = serializers.UUIDField(source="root_id")
    plan_gb = serializers.IntegerField()
    quota_bytes = serializers.IntegerField()
    used_bytes = serializers.IntegerField()
    category = serializers.CharField()
    read_only = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class WorkspaceIn(serializers.Serializer):
    name = StrictCharField(max_length=100)


class MemberOut(serializers.Serializer):
    # A member is addressed by their user's id (/members/{id}/): the membership's own row id is a
    # sequential integer, and every id the API shows is a UUID.
    id = serializers.UUIDField(source="user_id", help_text="The member's user id; address them by it.")
    user_id = serializers.UUIDField()
    email = serializers.EmailField(source="user.email")
    role = serializers.ChoiceField(choices=Membership.Role.choices)
    created_at = serializers.DateTimeField()


class RoleIn(serializers.Serializer):
    role = serializers.ChoiceField(choices=Membership.Role.choices)


class InvitationIn(serializers.Serializer):
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=Membership.Role.choices, default=Membership.Role.MEMBER)


class InvitationOut(serializers.ModelSerializer):
    class Meta:
        model = Invitation
        fields = ["id", "email", "role", "created_at", "expires_at"]


class AcceptIn(serializers.Serializer):
    token = StrictCharField()


@extend_schema(
    methods=["GET"],
    responses={200: WorkspaceOut(many=True)},
    summary="The caller's workspaces",
    examples=[
        OpenApiExample(
            "personal",
            response_only=True,
            value=[
                {
                    "id": "4f7c…",
                    "name": "Personal",
                    "kind": "personal",
                    "role": "owner",
                    "root": "9a1e…",
                    "plan_gb": 1,
                    "quota_bytes": 1073741824,
                    "used_bytes": 0,
                    "category": "A",
                    "read_only": False,
                    "created_at": "2026-11-23T09:00:00Z",
                }
            ],
        )
    ],
)
@extend_schema(methods=["POST"], request=WorkspaceIn, responses={201: WorkspaceOut}, summary="Create a team workspace")
@api_view(["GET", "POST"])
def workspace_collection(request: Request) -> Response:
    if request.method == "POST":
        data = WorkspaceIn(data=request.data)
        data.is_valid(raise_exception=True)
        created = workspace_create_team(owner=request.user, name=data.validated_data["name"])
        workspace = workspace_get_for_user(user=request.user, workspace_id=created.pk)
        return Response(WorkspaceOut(workspace).data, status=status.HTTP_201_CREATED)
    return Response(WorkspaceOut(WORKSPACES.all(user=request.user), many=True).data)


@extend_schema(methods=["GET"], responses={200: WorkspaceOut}, summary="One workspace")
@extend_schema(methods=["PATCH"], request=WorkspaceIn, responses={200: WorkspaceOut}, summary="Rename a workspace")
@api_view(["GET", "PATCH"])
def workspace_detail(request: Request, workspace_id) -> Response:
    workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
    if request.method == "PATCH":
        data = WorkspaceIn(data=request.data)
        data.is_valid(raise_exception=True)
        workspace_rename(workspace=workspace, actor_role=workspace.role, name=data.validated_data["name"])
    return Response(WorkspaceOut(workspace).data)


@extend_schema(responses={200: MemberOut(many=True)}, summary="Members of a workspace")
@api_view(["GET"])
def member_list(request: Request, workspace_id) -> Response:
    workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
    members = Membership.objects.filter(workspace=workspace).select_related("user")
    return Response(MemberOut(members, many=True).data)


@extend_schema(methods=["PATCH"], request=RoleIn, responses={200: MemberOut}, summary="Change a member's role")
@extend_schema(methods=["DELETE"], request=None, responses={204: None}, summary="Remove a member (or leave)")
@api_view(["PATCH", "DELETE"])
def member_detail(request: Request, workspace_id, member_id) -> Response:
    workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
    membership = membership_get(workspace=workspace, member_id=member_id)
    if request.method == "DELETE":
        membership_remove(membership=membership, actor=request.user, actor_role=workspace.role)
        return Response(status=status.HTTP_204_NO_CONTENT)
    data = RoleIn(data=request.data)
    data.is_valid(raise_exception=True)
    membership_change_role(
        membership=membership, actor=request.user, actor_role=workspace.role, role=data.validated_data["role"]
    )
    return Response(MemberOut(membership).data)


@extend_schema(methods=["GET"], responses={200: InvitationOut(many=True)}, summary="Open invitations")
@extend_schema(methods=["POST"], request=InvitationIn, responses={201: InvitationOut}, summary="Invite by e-mail")
@api_view(["GET", "POST"])
def invitation_collection(request: Request, workspace_id) -> Response:
    workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
    if request.method == "POST":
        data = InvitationIn(data=request.data)
        data.is_valid(raise_exception=True)
        issued = invitation_create(
            workspace=workspace,
            inviter=request.user,
            inviter_role=workspace.role,
            email=data.validated_data["email"],
            role=data.validated_data["role"],
        )
        return Response(InvitationOut(issued.invitation).data, status=status.HTTP_201_CREATED)
    return Response(InvitationOut(invitations_open_for(workspace=workspace), many=True).data)


@extend_schema(request=None, responses={204: None}, summary="Withdraw an invitation")
@api_view(["DELETE"])
def invitation_delete(request: Request, workspace_id, invitation_id) -> Response:
    workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
    invitation = Invitation.objects.filter(workspace=workspace, pk=invitation_id, accepted_at__isnull=True).first()
    if invitation is None:
        raise Http404
    invitation_revoke(invitation=invitation, actor_role=workspace.role)
    return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(request=AcceptIn, responses={201: MemberOut}, summary="Accept an invitation with its token")
@api_view(["POST"])
def invitation_accept_api(request: Request) -> Response:
    data = AcceptIn(data=request.data)
    data.is_valid(raise_exception=True)
    membership = invitation_accept(token=data.validated_data["token"], user=request.user)
    return Response(MemberOut(membership).data, status=status.HTTP_201_CREATED)
