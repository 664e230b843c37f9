"""Public links: GET/POST /nodes/{id}/links/, DELETE /links/{id}/, the workspace inventory
GET /workspaces/{id}/links/ and the link policy GET/PUT /workspaces/{id}/link-policy/."""

from __future__ import annotations

from dataclasses import asdict

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from cloudstorage.api import cursor_page
from cloudstorage.api_fields import StrictBooleanField, StrictCharField, StrictIntegerField
from files.access import link_get_for_user, links_mark_creator_access, node_get_for_user, workspace_get_for_user
from files.activity import node_path
from files.api.activity import NewestFirst
from files.links import (
    MAX_DOWNLOADS,
    MAX_EXPIRY_DAYS,
    link_create,
    link_policy_get,
    link_policy_update,
    link_revoke,
    link_state,
    link_url,
    links_for_node,
    links_for_workspace,
)
from files.models import PublicLink


class LinkOut(serializers.Serializer):
    id = serializers.UUIDField()
    url = serializers.SerializerMethodField()
    token = serializers.CharField()
    node = serializers.UUIDField(source="node_id")
    name = serializers.CharField(source="node.name")
    permission = serializers.CharField()
    has_password = serializers.SerializerMethodField()
    expires_at = serializers.DateTimeField(allow_null=True)
    max_downloads = serializers.IntegerField(allow_null=True)
    download_count = serializers.IntegerField()
    created_by = serializers.EmailField(source="created_by.email", default=None)
    created_at = serializers.DateTimeField()
    revoked_at = serializers.DateTimeField(allow_null=True)
    last_accessed_at = serializers.DateTimeField(allow_null=True)
    state = serializers.SerializerMethodField(
        help_text="active, revoked, expired, exhausted, in_trash or creator_lost_access (its creator may no "
        "longer edit the item; works again if they may)"
    )

    def get_url(self, link: PublicLink) -> str:
        return link_url(link=link)

    def get_has_password(self, link: PublicLink) -> bool:
        return bool(link.password_hash)

    def get_state(self, link: PublicLink) -> str:
        return link_state(link=link)


class InventoryLinkOut(LinkOut):
    path = serializers.SerializerMethodField()

    def get_path(self, link: PublicLink) -> str:
        return node_path(node=link.node)


class LinkIn(serializers.Serializer):
    permission = serializers.ChoiceField(choices=PublicLink.Permission.choices, default=PublicLink.Permission.VIEW)
    password = StrictCharField(required=False, allow_null=True, allow_blank=True, trim_whitespace=False)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    max_downloads = StrictIntegerField(required=False, allow_null=True, min_value=1, max_value=MAX_DOWNLOADS)


class PolicyIn(serializers.Serializer):
    default_expiry_days = StrictIntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_EXPIRY_DAYS, default=None
    )
    max_expiry_days = StrictIntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_EXPIRY_DAYS, default=None
    )
    password_required = StrictBooleanField(required=False, default=False)
    default_max_downloads = StrictIntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_DOWNLOADS, default=None
    )


class PolicyOut(serializers.Serializer):
    default_expiry_days = serializers.IntegerField(allow_null=True)
    max_expiry_days = serializers.IntegerField(allow_null=True)
    password_required = serializers.BooleanField()
    default_max_downloads = serializers.IntegerField(allow_null=True)
    operator_max_expiry_days = serializers.IntegerField(allow_null=True)
    operator_password_required = serializers.BooleanField()


class InventoryPages(NewestFirst):
    ordering = ("-created_at", "-id")


@extend_schema(methods=["GET"], responses={200: LinkOut(many=True)}, summary="Public links of a file or folder")
@extend_schema(methods=["POST"], request=LinkIn, responses={201: LinkOut}, summary="Create a public link")
@api_view(["GET", "POST"])
def node_links(request: Request, node_id) -> Response:
    node = node_get_for_user(user=request.user, node_id=node_id, need="edit")
    if request.method == "POST":
        data = LinkIn(data=request.data)
        data.is_valid(raise_exception=True)
        link = link_create(actor=request.user, node=node, **data.validated_data)
        return Response(LinkOut(link).data, status=status.HTTP_201_CREATED)
    links = links_mark_creator_access(links=list(links_for_node(node=node)))
    return Response(LinkOut(links, many=True).data)


@extend_schema(methods=["GET"], responses={200: LinkOut}, summary="One public link")
@extend_schema(methods=["DELETE"], request=None, responses={204: None}, summary="Revoke a public link")
@api_view(["GET", "DELETE"])
def link_detail(request: Request, link_id) -> Response:
    link = link_get_for_user(user=request.user, link_id=link_id)
    if request.method == "DELETE":
        # A revoked link stays listed (GET shows its state) but is gone as far as DELETE goes: a
        # second DELETE is a 404, as for a share.
        if not link_revoke(actor=request.user, link=link):
            raise Http404
        return Response(status=status.HTTP_204_NO_CONTENT)
    return Response(LinkOut(link).data)


@extend_schema(
    summary="Every public link of a workspace, with last access (owners and admins)",
    parameters=[OpenApiParameter("include_revoked", bool, description="Also list revoked links")],
    responses={200: cursor_page("InventoryLinkPage", InventoryLinkOut)},
)
@api_view(["GET"])
def workspace_links(request: Request, workspace_id) -> Response:
    workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id, need="manage")
    include_revoked = request.query_params.get("include_revoked", "").lower() in {"1", "true", "yes"}
    paginator = InventoryPages()
    page = paginator.paginate_queryset(
        links_for_workspace(workspace=workspace, include_revoked=include_revoked), request
    )
    links_mark_creator_access(links=page)
    return paginator.get_paginated_response(InventoryLinkOut(page, many=True).data)


@extend_schema(methods=["GET"], responses={200: PolicyOut}, summary="The link policy in force in a workspace")
@extend_schema(
    methods=["PUT"],
    request=PolicyIn,
    responses={200: PolicyOut},
    summary="Set a workspace's link policy (owners, admins)",
)
@api_view(["GET", "PUT"])
def link_policy(request: Request, workspace_id) -> Response:
    if request.method == "PUT":
        workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id, need="manage")
        data = PolicyIn(data=request.data)
        data.is_valid(raise_exception=True)
        policy = link_policy_update(actor=request.user, workspace=workspace, **data.validated_data)
        return Response(PolicyOut(asdict(policy)).data)
    workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id, need="view")
    return Response(PolicyOut(asdict(link_policy_get(workspace_id=workspace.pk))).data)
