"""Invoices and the billing portal of a workspace (owners and admins only)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.selectors import workspace_get_for_user
from billing.models import Invoice
from billing.selectors import invoices_for_workspace
from billing.services import MANAGER_ROLES, billing_portal_url
from cloudstorage.errors import ServiceError


class InvoiceOut(serializers.ModelSerializer):
    class Meta:
        model = Invoice
        fields = [
            "id",
            "provider",
            "number",
            "status",
            "description",
            "plan_gb",
            "amount_due_cents",
            "amount_paid_cents",
            "currency",
            "period_start",
            "period_end",
            "hosted_invoice_url",
            "pdf_url",
            "created_at",
            "paid_at",
        ]


@extend_schema(responses={200: InvoiceOut(many=True)}, summary="The workspace's invoices, newest first")
@api_view(["GET"])
def invoice_list(request: Request, workspace_id) -> Response:
    workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
    if workspace.role not in MANAGER_ROLES:
        raise ServiceError(code="forbidden", message="Only owners and admins can see invoices.", status_code=403)
    return Response(InvoiceOut(invoices_for_workspace(workspace=workspace), many=True).data)


@extend_schema(
    request=None,
    responses={200: inline_serializer("PortalOut", {"url": serializers.URLField()})},
    summary="A link to Stripe's Customer Portal (payment methods, invoices)",
)
@api_view(["POST"])
def portal(request: Request, workspace_id) -> Response:
    workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
    return Response({"url": billing_portal_url(workspace=workspace, actor_role=workspace.role)})
