from django.urls import path

from billing.api import invoices, plan

urlpatterns = [
    path("workspaces/<uuid:workspace_id>/plan/", plan.plan_detail, name="api_plan"),
    path("workspaces/<uuid:workspace_id>/plan/cancel/", plan.plan_cancel_view, name="api_plan_cancel"),
    path("workspaces/<uuid:workspace_id>/billing/invoices/", invoices.invoice_list, name="api_invoices"),
    path("workspaces/<uuid:workspace_id>/billing/portal/", invoices.portal, name="api_billing_portal"),
]
