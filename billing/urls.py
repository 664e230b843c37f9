"""Browser pages, included under /app/."""

from django.urls import path

from billing import views

urlpatterns = [
    path("workspaces/<uuid:workspace_id>/plan/", views.plan_page, name="billing_plan"),
    path("workspaces/<uuid:workspace_id>/plan/change/", views.plan_change_view, name="billing_plan_change"),
    path("workspaces/<uuid:workspace_id>/plan/cancel/", views.plan_cancel_page, name="billing_plan_cancel"),
    path("workspaces/<uuid:workspace_id>/billing/portal/", views.portal_page, name="billing_portal"),
]
