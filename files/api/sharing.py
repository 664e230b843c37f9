"""Shares: GET/POST /nodes/{id}/shares/, PATCH/DELETE /shares/{id}/, GET /shared-with-me/."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from files.access import node_get_for_user, share_get_for_user
from files.models import Share
from files.sharing import share_create, share_revoke, share_update, shares_for_node, shares_with_user


class ShareOut(serializers.Serializer):
    id = serializers.UUIDField()
    node = serializers.UUIDField(source="node_id")
    user_id = serializers.UUIDField(source="user.id")
    email = serializers.EmailField(source="user.email")
    permission = serializers.CharField()
    created_by = serializers.EmailField(source="created_by.email", default=None)
    created_at = serializers.DateTimeField()
    inherited = serializers.SerializerMethodField(help_text="True when the share is on a folder above this node.")
    active = serializers.BooleanField(
        default=True,
        help_text="False while the share's creator may no longer edit the item: it gives no access then "
        "(it works again if they regain edit), but can still be revoked.",
    )

    def get_inherited(self, share: Share) -> bool:
        node_id = self.context.get("node_id")
        return node_id is not None and share.node_id != node_id


class ShareIn(serializers.Serializer):
    email = serializers.EmailField()
    permission = serializers.ChoiceField(choices=Share.Permission.choices, default=Share.Permission.VIEW)


class ShareChange(serializers.Serializer):
    permission = serializers.ChoiceField(choices=Share.Permission.choices)


class SharedNodeOut(serializers.Serializer):
    id = serializers.UUIDField()
    type = serializers.CharField(source="kind")
    name = serializers.CharField()
    size = serializers.IntegerField()
    mime_type = serializers.CharField()
    modified_at = serializers.DateTimeField()


class SharedWithMeOut(serializers.Serializer):
    share = serializers.UUIDField(source="id")
    permission = serializers.CharField()
    shared_by = serializers.EmailField(source="created_by.email", default=None)
    shared_at = serializers.DateTimeField(source="created_at")
    created_at = serializers.DateTimeField()
    workspace = serializers.SerializerMethodField()
    node = SharedNodeOut()

    def get_workspace(self, share: Share) -> dict:
        return {"id": str(share.workspace_id), "name": share.workspace.name}


@extend_schema(methods=["GET"], responses={200: ShareOut(many=True)}, summary="Who this file or folder is shared with")
@extend_schema(
    methods=["POST"],
    request=ShareIn,
    responses={201: ShareOut, 200: ShareOut},
    summary="Share with a user by e-mail (again: change the permission)",
)
@api_view(["GET", "POST"])
def node_shares(request: Request, node_id) -> Response:
    node = node_get_for_user(user=request.user, node_id=node_id, need="view")
    if request.method == "POST":
        data = ShareIn(data=request.data)
        data.is_valid(raise_exception=True)
        share, created = share_create(actor=request.user, node=node, **data.validated_data)
        return Response(
            ShareOut(share, context={"node_id": node.pk}).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )
    return Response(ShareOut(shares_for_node(node=node), many=True, context={"node_id": node.pk}).data)


@extend_schema(methods=["PATCH"], request=ShareChange, responses={200: ShareOut}, summary="Change a share's permission")
@extend_schema(methods=["DELETE"], request=None, responses={204: None}, summary="Revoke a share")
@api_view(["PATCH", "DELETE"])
def share_detail(request: Request, share_id) -> Response:
    share = share_get_for_user(user=request.user, share_id=share_id)
    if request.method == "DELETE":
        if not share_revoke(actor=request.user, share=share):
            raise Http404  # removed by a concurrent DELETE since share_get_for_user read it
        return Response(status=status.HTTP_204_NO_CONTENT)
    data = ShareChange(data=request.data)
    data.is_valid(raise_exception=True)
    share = share_update(actor=request.user, share=share, permission=data.validated_data["permission"])
    return Response(ShareOut(share).data)


@extend_schema(responses={200: SharedWithMeOut(many=True)}, summary="What others shared with the caller")
@api_view(["GET"])
def shared_with_me(request: Request) -> Response:
    return Response(SharedWithMeOut(shares_with_user(user=request.user), many=True).data)
