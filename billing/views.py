"""Browser pages for a workspace's plan: the size slider, checkout, change, cancel, invoices."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.selectors import workspace_get_for_user
from billing.plans import price_cents_for_gb
from billing.selectors import invoices_for_workspace, plan_summary
from billing.services import MANAGER_ROLES, billing_portal_url, checkout_session_sync, plan_cancel, plan_change
from cloudstorage.errors import ServiceError


@login_required
def plan_page(request: HttpRequest, workspace_id) -> HttpResponse:
    workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
    checkout = request.GET.get("checkout")
    if checkout == "success":
        try:
            checkout_session_sync(workspace=workspace, session_id=request.GET.get("session_id", ""))
        except ServiceError as exc:
            # The webhook applies the purchase anyway; the customer only waits a little longer.
            messages.info(request, f"Payment received; the plan updates in a moment ({exc.message}).")
        else:
            messages.success(request, "Thank you! Your payment went through.")
        workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
    elif checkout == "canceled":
        messages.info(request, "Checkout cancelled: nothing was charged and the plan is unchanged.")
    can_manage = workspace.role in MANAGER_ROLES
    plan = plan_summary(workspace=workspace)
    start_gb = workspace.plan_gb if workspace.plan_gb >= plan["price_table"]["min_gb"] else 10
    return render(
        request,
        "billing/plan.html",
        {
            "workspace": workspace,
            "plan": plan,
            "can_manage": can_manage,
            "start_gb": start_gb,
            "start_price_cents": price_cents_for_gb(start_gb),
            "invoices": invoices_for_workspace(workspace=workspace)[:50] if can_manage else [],
        },
    )


@login_required
@require_POST
def plan_change_view(request: HttpRequest, workspace_id) -> HttpResponse:
    workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
    try:
        gb = int(request.POST.get("gb", ""))
    except ValueError:
        gb = None
    try:
        change = plan_change(workspace=workspace, actor_role=workspace.role, gb=gb)
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("billing_plan", workspace_id=workspace.pk)
    if change.checkout_url:
        return redirect(change.checkout_url)
    messages.success(request, f"The plan is now {change.workspace.plan_gb} GB.")
    return redirect("billing_plan", workspace_id=workspace.pk)


@login_required
@require_POST
def plan_cancel_page(request: HttpRequest, workspace_id) -> HttpResponse:
    workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
    try:
        change = plan_cancel(workspace=workspace, actor_role=workspace.role)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        if change.subscription.cancel_at_period_end:
            messages.success(request, "Cancelled: the workspace returns to the free plan at the end of the period.")
        else:
            messages.success(request, "Cancelled: the workspace is on the free plan now.")
    return redirect("billing_plan", workspace_id=workspace.pk)


@login_required
@require_POST
def portal_page(request: HttpRequest, workspace_id) -> HttpResponse:
    workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
    try:
        url = billing_portal_url(workspace=workspace, actor_role=workspace.role)
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("billing_plan", workspace_id=workspace.pk)
    return redirect(url)
