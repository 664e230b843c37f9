"""The plan of a workspace: read it, change it, cancel it."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, PolymorphicProxySerializer, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.selectors import workspace_get_for_user
from billing.selectors import plan_summary
from billing.services import plan_cancel, plan_change
from cloudstorage.api_fields import StrictIntegerField


class CategoryRangeOut(serializers.Serializer):
    category = serializers.CharField()
    min_gb = serializers.IntegerField()
    max_gb = serializers.IntegerField()
    min_price_cents = serializers.IntegerField()
    max_price_cents = serializers.IntegerField()


class PriceTableOut(serializers.Serializer):
    currency = serializers.CharField()
    price_per_gb_cents = serializers.IntegerField()
    free_gb = serializers.IntegerField()
    min_gb = serializers.IntegerField()
    max_gb = serializers.IntegerField()
    step_gb = serializers.IntegerField()
    categories = CategoryRangeOut(many=True)


class PlanOut(serializers.Serializer):
    workspace = serializers.UUIDField()
    mode = serializers.CharField(help_text="stripe, or local (no keys configured: no payment is taken)")
    mode_label = serializers.CharField()
    provider = serializers.CharField()
    plan_gb = serializers.IntegerField()
    quota_bytes = serializers.IntegerField()
    used_bytes = serializers.IntegerField()
    category = serializers.CharField()
    price_cents = serializers.IntegerField(help_text="Monthly price of the current plan.")
    currency = serializers.CharField()
    status = serializers.CharField()
    cancel_at_period_end = serializers.BooleanField()
    current_period_end = serializers.DateTimeField(allow_null=True)
    payment_failed_at = serializers.DateTimeField(allow_null=True)
    grace_until = serializers.DateTimeField(allow_null=True)
    read_only = serializers.BooleanField()
    price_table = PriceTableOut()


class PlanIn(serializers.Serializer):
    gb = StrictIntegerField(help_text="1 (free) or 10–100")


CheckoutOut = inline_serializer(
    "CheckoutOut", {"checkout_url": serializers.URLField(), "checkout_session_id": serializers.CharField()}
)


def _plan_body(workspace) -> dict:
    return PlanOut(plan_summary(workspace=workspace)).data


@extend_schema(methods=["GET"], responses={200: PlanOut}, summary="The workspace's plan, its price and the price table")
@extend_schema(
    methods=["PUT"],
    request=PlanIn,
    responses={
        200: PolymorphicProxySerializer(
            "PlanChangeOut", serializers=[PlanOut, CheckoutOut], resource_type_field_name=None
        )
    },
    summary="Change the plan; answers the applied plan, or a Stripe Checkout URL when payment is needed first",
    examples=[OpenApiExample("30 GB", value={"gb": 30}, request_only=True)],
)
@api_view(["GET", "PUT"])
def plan_detail(request: Request, workspace_id) -> Response:
    workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
    if request.method == "PUT":
        data = PlanIn(data=request.data)
        data.is_valid(raise_exception=True)
        change = plan_change(workspace=workspace, actor_role=workspace.role, gb=data.validated_data["gb"])
        if change.checkout_url:
            return Response(
                {"checkout_url": change.checkout_url, "checkout_session_id": change.checkout_session_id}, status=200
            )
        workspace = change.workspace
    return Response(_plan_body(workspace))


@extend_schema(request=None, responses={200: PlanOut}, summary="Cancel: back to the free plan at the period's end")
@api_view(["POST"])
def plan_cancel_view(request: Request, workspace_id) -> Response:
    workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
    change = plan_cancel(workspace=workspace, actor_role=workspace.role)
    return Response(_plan_body(change.workspace))
