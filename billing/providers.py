"""The two billing providers behind one interface: Stripe, and the local billing mode.

A provider only talks to the outside (or, locally, stands in for it) and reports back a
``SubscriptionState``; billing.services applies that state with the same code for both, so the
Stripe path is the local path with another provider, not a fork of the logic.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.urls import reverse

from accounts.models import Workspace
from billing import stripe_client
from billing.models import Provider, Subscription
from billing.plans import price_cents_for_gb

# Local subscriptions renew every 30 days, like a monthly Stripe price.
LOCAL_PERIOD = timedelta(days=30)


@dataclass(frozen=True)
class SubscriptionState:
    """What a provider says a subscription is now (Stripe's object, reduced to what we use)."""

    status: str
    quantity_gb: int | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    subscription_id: str = ""
    item_id: str = ""
    customer_id: str = ""


@dataclass(frozen=True)
class InvoiceState:
    status: str
    amount_due_cents: int
    amount_paid_cents: int
    currency: str
    created_at: datetime
    plan_gb: int | None = None
    stripe_invoice_id: str = ""
    number: str = ""
    description: str = ""
    period_start: datetime | None = None
    period_end: datetime | None = None
    hosted_invoice_url: str = ""
    pdf_url: str = ""
    subscription_id: str = ""
    customer_id: str = ""
    paid_at: datetime | None = None


@dataclass(frozen=True)
class PurchaseResult:
    """Either a checkout page the customer must visit, or a subscription that is live already."""

    checkout_url: str = ""
    checkout_session_id: str = ""
    state: SubscriptionState | None = None
    invoice: InvoiceState | None = None


@dataclass(frozen=True)
class ChangeResult:
    state: SubscriptionState
    invoice: InvoiceState | None = None


def _ts(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value, tz=UTC) if value else None


def plan_page_url(workspace: Workspace) -> str:
    return settings.SITE_URL + reverse("billing_plan", args=[workspace.pk])


def _stripe_id(value) -> str:
    """An expandable field: either an id or the expanded object."""
    if isinstance(value, dict):
        return value.get("id", "")
    return value or ""


def subscription_state_from_stripe(obj: dict) -> SubscriptionState:
    items = (obj.get("items") or {}).get("data") or []
    item = items[0] if items else {}
    # Since API 2025-03-31 the billing period lives on the subscription item.
    period_end = item.get("current_period_end") or obj.get("current_period_end")
    return SubscriptionState(
        status=obj["status"],
        quantity_gb=item.get("quantity"),
        current_period_end=_ts(period_end),
        cancel_at_period_end=bool(obj.get("cancel_at_period_end")),
        subscription_id=obj["id"],
        item_id=item.get("id", ""),
        customer_id=_stripe_id(obj.get("customer")),
    )


def invoice_state_from_stripe(obj: dict) -> InvoiceState:
    lines = (obj.get("lines") or {}).get("data") or []
    quantity = next((line.get("quantity") for line in lines if line.get("quantity")), None)
    parent = obj.get("parent") or {}
    details = parent.get("subscription_details") or {}
    subscription_id = _stripe_id(details.get("subscription")) or _stripe_id(obj.get("subscription"))
    return InvoiceState(
        status=obj.get("status") or "open",
        amount_due_cents=obj.get("amount_due") or 0,
        amount_paid_cents=obj.get("amount_paid") or 0,
        currency=obj.get("currency") or settings.BILLING_CURRENCY,
        created_at=_ts(obj.get("created")) or datetime.now(tz=UTC),
        plan_gb=quantity,
        stripe_invoice_id=obj["id"],
        number=obj.get("number") or "",
        description=(obj.get("description") or "")[:255],
        period_start=_ts(obj.get("period_start")),
        period_end=_ts(obj.get("period_end")),
        hosted_invoice_url=obj.get("hosted_invoice_url") or "",
        pdf_url=obj.get("invoice_pdf") or "",
        subscription_id=subscription_id,
        customer_id=_stripe_id(obj.get("customer")),
        paid_at=_ts((obj.get("status_transitions") or {}).get("paid_at")),
    )


class StripeProvider:
    name = Provider.STRIPE
    label = "Stripe"

    def _customer_id(self, subscription: Subscription) -> str:
        if not subscription.stripe_customer_id:
            workspace = subscription.workspace
            customer = stripe_client.customer_create(
                email=workspace.owner.email, name=workspace.name, workspace_id=str(workspace.pk)
            )
            subscription.stripe_customer_id = customer["id"]
            subscription.save(update_fields=["stripe_customer_id", "updated_at"])
        return subscription.stripe_customer_id

    def purchase(self, *, subscription: Subscription, gb: int, now: datetime) -> PurchaseResult:
        workspace = subscription.workspace
        page = plan_page_url(workspace)
        session = stripe_client.checkout_session_create(
            customer_id=self._customer_id(subscription),
            workspace_id=str(workspace.pk),
            gb=gb,
            success_url=page + "?checkout=success&session_id={CHECKOUT_SESSION_ID}",
            cancel_url=page + "?checkout=canceled",
        )
        return PurchaseResult(checkout_url=session["url"], checkout_session_id=session["id"])

    def quantity_change(
        self, *, subscription: Subscription, gb: int, proration_behavior: str, now: datetime
    ) -> ChangeResult:
        stripe_client.subscription_item_quantity_update(
            item_id=subscription.stripe_item_id, quantity=gb, proration_behavior=proration_behavior
        )
        # Re-read the whole subscription: the item alone does not carry status or cancellation.
        return ChangeResult(state=self.subscription_read(subscription_id=subscription.stripe_subscription_id))

    def cancel_at_period_end(self, *, subscription: Subscription, cancel: bool, now: datetime) -> SubscriptionState:
        obj = stripe_client.subscription_cancel_at_period_end(
            subscription_id=subscription.stripe_subscription_id, cancel=cancel
        )
        return subscription_state_from_stripe(obj)

    def cancel_now(self, *, subscription: Subscription, now: datetime) -> SubscriptionState:
        obj = stripe_client.subscription_cancel_now(subscription_id=subscription.stripe_subscription_id)
        return subscription_state_from_stripe(obj)

    def portal_url(self, *, subscription: Subscription) -> str:
        session = stripe_client.portal_session_create(
            customer_id=self._customer_id(subscription), return_url=plan_page_url(subscription.workspace)
        )
        return session["url"]

    def subscription_read(self, *, subscription_id: str) -> SubscriptionState:
        return subscription_state_from_stripe(stripe_client.subscription_retrieve(subscription_id=subscription_id))


class LocalProvider:
    """Stands in for Stripe when no keys are configured: everything succeeds at once, no money moves."""

    name = Provider.LOCAL
    label = "Local billing mode: no payment is taken"

    def _invoice(self, *, gb: int, amount: int, now: datetime, end: datetime | None, what: str) -> InvoiceState:
        return InvoiceState(
            status="paid",
            amount_due_cents=amount,
            amount_paid_cents=amount,
            currency=settings.BILLING_CURRENCY,
            created_at=now,
            plan_gb=gb,
            number=f"LOCAL-{now:%Y%m%d}-{secrets.token_hex(3).upper()}",
            description=f"{what} (local billing mode, not charged)",
            period_start=now,
            period_end=end,
            paid_at=now,
        )

    def purchase(self, *, subscription: Subscription, gb: int, now: datetime) -> PurchaseResult:
        end = now + LOCAL_PERIOD
        state = SubscriptionState(status="active", quantity_gb=gb, current_period_end=end, cancel_at_period_end=False)
        invoice = self._invoice(gb=gb, amount=price_cents_for_gb(gb), now=now, end=end, what=f"{gb} GB plan")
        return PurchaseResult(state=state, invoice=invoice)

    def quantity_change(
        self, *, subscription: Subscription, gb: int, proration_behavior: str, now: datetime
    ) -> ChangeResult:
        end = subscription.current_period_end or now + LOCAL_PERIOD
        state = SubscriptionState(
            status="active",
            quantity_gb=gb,
            current_period_end=end,
            cancel_at_period_end=subscription.cancel_at_period_end,
        )
        invoice = None
        old = subscription.quantity_gb or 0
        if proration_behavior == "always_invoice" and gb > old:
            # The prorated difference for the rest of the period, as Stripe would invoice it.
            remaining = max((end - now).total_seconds(), 0) / LOCAL_PERIOD.total_seconds()
            amount = round((price_cents_for_gb(gb) - price_cents_for_gb(old)) * min(remaining, 1.0))
            invoice = self._invoice(gb=gb, amount=amount, now=now, end=end, what=f"Upgrade {old} → {gb} GB")
        return ChangeResult(state=state, invoice=invoice)

    def cancel_at_period_end(self, *, subscription: Subscription, cancel: bool, now: datetime) -> SubscriptionState:
        return SubscriptionState(
            status=subscription.status,
            quantity_gb=subscription.quantity_gb,
            current_period_end=subscription.current_period_end,
            cancel_at_period_end=cancel,
        )

    def cancel_now(self, *, subscription: Subscription, now: datetime) -> SubscriptionState:
        return SubscriptionState(
            status="canceled", quantity_gb=None, current_period_end=now, cancel_at_period_end=False
        )

    def portal_url(self, *, subscription: Subscription) -> str:
        # No payment methods to manage locally: the plan page lists the local invoices.
        return plan_page_url(subscription.workspace)

    def renew(self, *, subscription: Subscription, now: datetime) -> ChangeResult:
        """The end of a local period: renew with an invoice, or end a cancelled subscription."""
        if subscription.cancel_at_period_end:
            return ChangeResult(state=self.cancel_now(subscription=subscription, now=now))
        gb = subscription.quantity_gb or 0
        start = subscription.current_period_end or now
        end = start + LOCAL_PERIOD
        state = SubscriptionState(status="active", quantity_gb=gb, current_period_end=end, cancel_at_period_end=False)
        invoice = self._invoice(gb=gb, amount=price_cents_for_gb(gb), now=now, end=end, what=f"{gb} GB plan renewal")
        return ChangeResult(state=state, invoice=invoice)


BillingProvider = StripeProvider | LocalProvider


def configured_mode() -> str:
    return Provider.STRIPE if settings.STRIPE_SECRET_KEY else Provider.LOCAL


def provider_for(subscription: Subscription | None = None) -> BillingProvider:
    """The provider of a live subscription, else the configured one (Stripe when keys are set)."""
    if subscription is not None and subscription.is_paid_plan:
        name = subscription.provider
    else:
        name = configured_mode()
    return StripeProvider() if name == Provider.STRIPE else LocalProvider()
