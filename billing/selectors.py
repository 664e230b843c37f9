"""Billing reads: a workspace's plan with prices, the price table, invoices."""

from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet

from accounts.models import Workspace
from billing.models import Invoice, Provider, Subscription
from billing.plans import CATEGORY_RANGES, FREE_GB, MAX_PAID_GB, MIN_PAID_GB, price_cents_for_gb
from billing.providers import LocalProvider, StripeProvider, configured_mode, provider_for
from disks.categories import category_for_gb


def subscription_for(*, workspace: Workspace) -> Subscription:
    """The workspace's billing row, or an unsaved free one (a read never writes)."""
    subscription = Subscription.objects.filter(workspace=workspace).first()
    return subscription or Subscription(workspace=workspace, provider=configured_mode())


def price_table() -> dict:
    """Sizes, the price per GB and each category's range, for the slider and API clients."""
    return {
        "currency": settings.BILLING_CURRENCY,
        "price_per_gb_cents": settings.BILLING_PRICE_PER_GB_CENTS,
        "free_gb": FREE_GB,
        "min_gb": MIN_PAID_GB,
        "max_gb": MAX_PAID_GB,
        "step_gb": 1,
        "categories": [
            {
                "category": category,
                "min_gb": low,
                "max_gb": high,
                "min_price_cents": price_cents_for_gb(low),
                "max_price_cents": price_cents_for_gb(high),
            }
            for category, low, high in CATEGORY_RANGES
        ],
    }


def plan_quote(*, gb: int) -> dict:
    return {"gb": gb, "category": category_for_gb(gb), "price_cents": price_cents_for_gb(gb)}


def plan_summary(*, workspace: Workspace) -> dict:
    """The current plan, its price and billing state, and the price table."""
    subscription = subscription_for(workspace=workspace)
    provider = provider_for(subscription)
    mode = configured_mode()
    return {
        "workspace": workspace.pk,
        "mode": mode,
        "mode_label": (LocalProvider.label if mode == Provider.LOCAL else StripeProvider.label),
        "provider": provider.name,
        "plan_gb": workspace.plan_gb,
        "quota_bytes": workspace.quota_bytes,
        "used_bytes": workspace.used_bytes,
        "category": workspace.category,
        "price_cents": price_cents_for_gb(workspace.plan_gb),
        "currency": settings.BILLING_CURRENCY,
        "status": subscription.status,
        "cancel_at_period_end": subscription.cancel_at_period_end,
        "current_period_end": subscription.current_period_end,
        "payment_failed_at": subscription.payment_failed_at,
        "grace_until": subscription.grace_until,
        "read_only": workspace.read_only,
        "price_table": price_table(),
    }


def invoices_for_workspace(*, workspace: Workspace) -> QuerySet[Invoice]:
    return Invoice.objects.filter(workspace=workspace).order_by("-created_at")
