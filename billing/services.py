"""Billing writes: plan changes, checkout, cancellation, webhooks, grace periods.

One set of rules for both providers (billing.providers): a provider does the outside part and
reports a ``SubscriptionState``; ``_state_apply`` turns it into the workspace's plan for either.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.models import Membership, Workspace
from billing import stripe_client
from billing.models import Invoice, Provider, StripeEvent, Subscription
from billing.plans import FREE_GB, GB, MAX_PAID_GB, MIN_PAID_GB, is_valid_plan_gb
from billing.providers import (
    InvoiceState,
    LocalProvider,
    StripeProvider,
    SubscriptionState,
    invoice_state_from_stripe,
    plan_page_url,
    provider_for,
)
from cloudstorage.errors import ServiceError
from cloudstorage.text import mail_subject
from disks import tasks as disk_tasks

logger = logging.getLogger(__name__)

MANAGER_ROLES = (Membership.Role.OWNER, Membership.Role.ADMIN)
# An increase is invoiced and charged at once; a decrease leaves a credit for the next invoice.
PRORATION_INCREASE = "always_invoice"
PRORATION_DECREASE = "create_prorations"
Status = Subscription.Status


@dataclass(frozen=True)
class PlanChange:
    """The outcome of a plan change: applied to ``workspace`` or waiting at ``checkout_url``."""

    workspace: Workspace
    subscription: Subscription
    checkout_url: str = ""
    checkout_session_id: str = ""


# --- helpers ------------------------------------------------------------------------------------


def _require_manager(actor_role: str | None, what: str) -> None:
    if actor_role not in MANAGER_ROLES:
        raise ServiceError(code="forbidden", message=f"Only owners and admins can {what}.", status_code=403)


def _validated_gb(gb) -> int:
    if isinstance(gb, bool) or not isinstance(gb, int) or not is_valid_plan_gb(gb):
        raise ServiceError(
            code="invalid_plan",
            message=f"A plan is {FREE_GB} GB (free) or a whole number of GB from {MIN_PAID_GB} to {MAX_PAID_GB}.",
            details={"gb": gb},
        )
    return gb


def _human(n: int) -> str:
    for unit, size in (("GB", GB), ("MB", 1024**2), ("KB", 1024)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def _fit_or_refuse(workspace: Workspace, gb: int) -> None:
    quota = gb * GB
    if workspace.used_bytes > quota:
        to_free = workspace.used_bytes - quota
        raise ServiceError(
            code="plan_too_small",
            message=(
                f"This workspace uses {_human(workspace.used_bytes)}, more than a {gb} GB plan holds. "
                f"Free at least {_human(to_free)} ({to_free} bytes) first, or pick a larger size."
            ),
            status_code=409,
            details={"used_bytes": workspace.used_bytes, "quota_bytes": quota, "bytes_to_free": to_free},
        )


def _locked(workspace_id) -> tuple[Workspace, Subscription]:
    """The workspace and its subscription row, locked for the rest of the transaction."""
    workspace = Workspace.objects.select_for_update(of=("self",)).select_related("owner").get(pk=workspace_id)
    Subscription.objects.get_or_create(workspace=workspace)
    subscription = Subscription.objects.select_for_update().get(workspace=workspace)
    subscription.workspace = workspace
    return workspace, subscription


def _managers_emails(workspace: Workspace) -> list[str]:
    return list(
        Membership.objects.filter(workspace=workspace, role__in=MANAGER_ROLES).values_list("user__email", flat=True)
    )


def _mail(workspace: Workspace, *, subject: str, template: str, context: dict) -> None:
    recipients = _managers_emails(workspace)
    if not recipients:
        return
    body = render_to_string(template, {"workspace": workspace, "plan_url": plan_page_url(workspace), **context})
    full_subject = mail_subject(f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}{subject}")
    transaction.on_commit(
        lambda: send_mail(subject=full_subject, message=body, from_email=None, recipient_list=recipients)
    )


def _relocate_queue(workspace: Workspace) -> None:
    workspace_id = str(workspace.pk)
    # The chunk mover (disks) runs after commit, so it sees the new category; the workspace stays
    # usable while it moves.
    transaction.on_commit(lambda: disk_tasks.workspace_relocate.delay(workspace_id=workspace_id))


def _plan_set(workspace: Workspace, gb: int) -> None:
    if workspace.plan_gb == gb:
        return
    old_category = workspace.category
    workspace.plan_gb = gb
    workspace.save(update_fields=["plan_gb"])
    logger.info("workspace %s plan is now %s GB", workspace.pk, gb)
    if workspace.category != old_category:
        _relocate_queue(workspace)


def _read_only_reconcile(subscription: Subscription, workspace: Workspace) -> bool:
    """Lift billing's read-only lock once nothing is owed and the data fits the plan."""
    if not subscription.billing_read_only or subscription.payment_failed_at is not None:
        return False
    if workspace.used_bytes > workspace.quota_bytes:
        return False
    workspace.read_only = False
    workspace.save(update_fields=["read_only"])
    subscription.billing_read_only = False
    subscription.save(update_fields=["billing_read_only", "updated_at"])
    _mail(workspace, subject=f"{workspace.name} is writable again", template="emails/billing_restored.txt", context={})
    return True


def _payment_failed(subscription: Subscription, workspace: Workspace, now: datetime) -> None:
    if subscription.payment_failed_at is not None:
        return  # a retry failing again does not restart the grace period
    subscription.payment_failed_at = now
    subscription.grace_until = now + timedelta(days=settings.BILLING_GRACE_DAYS)
    subscription.save(update_fields=["payment_failed_at", "grace_until", "updated_at"])
    _mail(
        workspace,
        subject=f"Payment failed for {workspace.name}",
        template="emails/billing_payment_failed.txt",
        context={"grace_until": subscription.grace_until},
    )


def _payment_settled(subscription: Subscription, workspace: Workspace) -> None:
    if subscription.payment_failed_at is not None:
        subscription.payment_failed_at = None
        subscription.grace_until = None
        subscription.save(update_fields=["payment_failed_at", "grace_until", "updated_at"])
    _read_only_reconcile(subscription, workspace)


def _state_apply(*, subscription: Subscription, workspace: Workspace, state: SubscriptionState, provider: str) -> str:
    """Make the subscription row and the workspace's plan match what the provider reports."""
    if (
        state.subscription_id
        and subscription.stripe_subscription_id not in ("", state.subscription_id)
        and subscription.is_paid_plan
    ):
        # An event about an older subscription of this workspace must not undo the live one.
        if state.status in Subscription.PAYING_STATUSES:
            # Two live subscriptions (e.g. two checkouts finished at once): an operator must refund one.
            logger.error(
                "workspace %s has a second live subscription %s besides %s; cancel one in Stripe",
                workspace.pk,
                state.subscription_id,
                subscription.stripe_subscription_id,
            )
            return "ignored: a SECOND live subscription for this workspace (operator: cancel one)"
        return "ignored: not the workspace's current subscription"
    subscription.provider = provider
    subscription.status = state.status
    subscription.current_period_end = state.current_period_end
    subscription.cancel_at_period_end = state.cancel_at_period_end
    if state.subscription_id:
        subscription.stripe_subscription_id = state.subscription_id
        subscription.stripe_item_id = state.item_id
    if state.customer_id:
        subscription.stripe_customer_id = state.customer_id
    outcome = f"status {state.status}"
    if state.status in Subscription.PAYING_STATUSES:
        if state.quantity_gb is not None and is_valid_plan_gb(state.quantity_gb) and state.quantity_gb != FREE_GB:
            subscription.quantity_gb = state.quantity_gb
            _plan_set(workspace, state.quantity_gb)
            outcome += f", plan {state.quantity_gb} GB"
        else:
            logger.error("subscription %s has quantity %s, not a plan size", state.subscription_id, state.quantity_gb)
            outcome += f", quantity {state.quantity_gb} is not a plan size (plan kept)"
    elif state.status in (Status.CANCELED, Status.INCOMPLETE_EXPIRED, Status.PAUSED):
        subscription.quantity_gb = None
        subscription.cancel_at_period_end = False
        # Nothing more will be collected, so there is nothing left to wait for.
        subscription.payment_failed_at = None
        subscription.grace_until = None
        _plan_set(workspace, FREE_GB)
        outcome += ", back to the free plan"
    subscription.save(
        update_fields=[
            "provider",
            "status",
            "quantity_gb",
            "current_period_end",
            "cancel_at_period_end",
            "stripe_subscription_id",
            "stripe_item_id",
            "stripe_customer_id",
            "payment_failed_at",
            "grace_until",
            "updated_at",
        ]
    )
    _read_only_reconcile(subscription, workspace)
    return outcome


def _invoice_record(*, workspace: Workspace, state: InvoiceState | None, provider: str) -> Invoice | None:
    if state is None:
        return None
    fields = {
        "workspace": workspace,
        "provider": provider,
        "number": state.number,
        "status": state.status,
        "description": state.description,
        "plan_gb": state.plan_gb,
        "amount_due_cents": state.amount_due_cents,
        "amount_paid_cents": state.amount_paid_cents,
        "currency": state.currency,
        "period_start": state.period_start,
        "period_end": state.period_end,
        "hosted_invoice_url": state.hosted_invoice_url,
        "pdf_url": state.pdf_url,
        "created_at": state.created_at,
        "paid_at": (state.paid_at or timezone.now()) if state.status == Invoice.Status.PAID else None,
    }
    if not state.stripe_invoice_id:
        return Invoice.objects.create(**fields)
    invoice, created = Invoice.objects.get_or_create(stripe_invoice_id=state.stripe_invoice_id, defaults=fields)
    if not created:
        if invoice.paid_at:
            fields["paid_at"] = invoice.paid_at
        for name, value in fields.items():
            setattr(invoice, name, value)
        invoice.save(update_fields=[*fields])
    return invoice


# --- plan changes -------------------------------------------------------------------------------


def plan_change(*, workspace: Workspace, actor_role: str | None, gb, now: datetime | None = None) -> PlanChange:
    """Change a workspace's plan size.

    From the free plan a purchase starts (Stripe: a Checkout Session to visit; local: applied at
    once). A paid plan changes its quantity at once, with prorations. A smaller size must fit the
    data already stored. ``gb == 1`` cancels the paid plan at the end of its period.
    """
    _require_manager(actor_role, "change the plan")
    gb = _validated_gb(gb)
    now = now or timezone.now()
    with transaction.atomic():
        workspace, subscription = _locked(workspace.pk)
        provider = provider_for(subscription)
        # A purchase from the free plan must fit too: a workspace back on it (a cancelled paid plan
        # keeps its files) may store far more than 1 GB, so "smaller than the current plan" is
        # not the only way to pick a plan below the usage.
        if gb < workspace.plan_gb or (gb != FREE_GB and not subscription.is_paid_plan):
            _fit_or_refuse(workspace, gb)
        if gb == FREE_GB:
            if subscription.is_paid_plan:
                _cancel(subscription=subscription, workspace=workspace, provider=provider, now=now)
            return PlanChange(workspace=workspace, subscription=subscription)

        if not subscription.is_paid_plan:
            result = provider.purchase(subscription=subscription, gb=gb, now=now)
            if result.checkout_url:
                return PlanChange(
                    workspace=workspace,
                    subscription=subscription,
                    checkout_url=result.checkout_url,
                    checkout_session_id=result.checkout_session_id,
                )
            _state_apply(subscription=subscription, workspace=workspace, state=result.state, provider=provider.name)
            _invoice_record(workspace=workspace, state=result.invoice, provider=provider.name)
            return PlanChange(workspace=workspace, subscription=subscription)

        current = subscription.quantity_gb or workspace.plan_gb
        if gb > current and subscription.payment_failed_at is not None:
            raise ServiceError(
                code="payment_overdue",
                message="A payment of this workspace failed: settle it (billing portal) before increasing the plan.",
                status_code=409,
            )
        if gb != current:
            behavior = PRORATION_INCREASE if gb > current else PRORATION_DECREASE
            result = provider.quantity_change(subscription=subscription, gb=gb, proration_behavior=behavior, now=now)
            _state_apply(subscription=subscription, workspace=workspace, state=result.state, provider=provider.name)
            _invoice_record(workspace=workspace, state=result.invoice, provider=provider.name)
        if subscription.cancel_at_period_end:
            # Choosing a paid size again means keeping the subscription.
            state = provider.cancel_at_period_end(subscription=subscription, cancel=False, now=now)
            _state_apply(subscription=subscription, workspace=workspace, state=state, provider=provider.name)
        return PlanChange(workspace=workspace, subscription=subscription)


def _cancel(*, subscription: Subscription, workspace: Workspace, provider, now: datetime) -> None:
    if subscription.payment_failed_at is not None:
        # Nothing paid for the current period: end it now, which also ends the grace period.
        state = provider.cancel_now(subscription=subscription, now=now)
    else:
        state = provider.cancel_at_period_end(subscription=subscription, cancel=True, now=now)
    _state_apply(subscription=subscription, workspace=workspace, state=state, provider=provider.name)


def plan_cancel(*, workspace: Workspace, actor_role: str | None, now: datetime | None = None) -> PlanChange:
    """Return to the free plan at the end of the paid period (at once while a payment is overdue).

    Unlike a smaller size, cancelling is never refused for the data stored: a customer can always
    stop paying. If the files then exceed the free plan, uploads are refused until they fit.
    """
    _require_manager(actor_role, "cancel the plan")
    now = now or timezone.now()
    with transaction.atomic():
        workspace, subscription = _locked(workspace.pk)
        if not subscription.is_paid_plan:
            raise ServiceError(code="no_subscription", message="This workspace is on the free plan already.")
        _cancel(subscription=subscription, workspace=workspace, provider=provider_for(subscription), now=now)
        return PlanChange(workspace=workspace, subscription=subscription)


def billing_portal_url(*, workspace: Workspace, actor_role: str | None) -> str:
    """Stripe's Customer Portal (payment methods, invoices); the plan page in local mode."""
    _require_manager(actor_role, "manage billing")
    with transaction.atomic():
        workspace, subscription = _locked(workspace.pk)
        return provider_for(subscription).portal_url(subscription=subscription)


def checkout_session_sync(*, workspace: Workspace, session_id: str) -> str:
    """Apply a finished checkout when the customer returns, without waiting for the webhook."""
    if not session_id or not session_id.startswith("cs_"):
        return "ignored: no session"
    session = stripe_client.checkout_session_retrieve(session_id=session_id)
    if session.get("client_reference_id") != str(workspace.pk):
        return "ignored: another workspace's session"
    fetched = _checkout_fetch(session)
    with transaction.atomic():
        return _fetched_apply("checkout.session.completed", fetched, timezone.now())


# --- Stripe webhooks ----------------------------------------------------------------------------

# Invoice events that only mirror the invoice (and the subscription it belongs to).
INVOICE_EVENTS = (
    "invoice.paid",
    "invoice.payment_failed",
    "invoice.payment_succeeded",
    "invoice.finalized",
    "invoice.voided",
    "invoice.marked_uncollectible",
)


@dataclass
class _Fetched:
    """What a webhook handler read from Stripe before the transaction (no HTTP under a DB lock)."""

    workspace_id: object = None
    state: SubscriptionState | None = None
    invoice: InvoiceState | None = None
    skip: str = ""


def _workspace_id_for(*, subscription_id: str = "", customer_id: str = "", metadata: dict | None = None):
    if subscription_id:
        row = Subscription.objects.filter(stripe_subscription_id=subscription_id).values("workspace_id").first()
        if row:
            return row["workspace_id"]
    workspace_id = (metadata or {}).get("workspace_id")
    if workspace_id:
        try:
            if Workspace.objects.filter(pk=workspace_id).exists():
                return workspace_id
        except (ValueError, ValidationError):
            logger.warning("Stripe metadata names a malformed workspace id %r", workspace_id)
    if customer_id:
        row = Subscription.objects.filter(stripe_customer_id=customer_id).values("workspace_id").first()
        if row:
            return row["workspace_id"]
    return None


def _checkout_fetch(session: dict) -> _Fetched:
    if session.get("mode") != "subscription" or session.get("status") != "complete":
        return _Fetched(skip="ignored: checkout not complete")
    subscription_id = session.get("subscription")
    if isinstance(subscription_id, dict):
        subscription_id = subscription_id.get("id")
    if not subscription_id:
        return _Fetched(skip="ignored: no subscription")
    state = StripeProvider().subscription_read(subscription_id=subscription_id)
    metadata = {"workspace_id": session.get("client_reference_id")} if session.get("client_reference_id") else None
    workspace_id = _workspace_id_for(
        metadata=metadata or session.get("metadata"),
        subscription_id=state.subscription_id,
        customer_id=state.customer_id,
    )
    return _Fetched(workspace_id=workspace_id, state=state)


def _fetch(event: dict) -> _Fetched:
    """Read the event's objects as they are *now*: events arrive out of order, so the current
    object is the truth, not the event's snapshot."""
    kind = event["type"]
    obj = event["data"]["object"]
    try:
        if kind == "checkout.session.completed":
            return _checkout_fetch(stripe_client.checkout_session_retrieve(session_id=obj["id"]))
        if kind.startswith("customer.subscription."):
            state = StripeProvider().subscription_read(subscription_id=obj["id"])
            workspace_id = _workspace_id_for(
                subscription_id=state.subscription_id, customer_id=state.customer_id, metadata=obj.get("metadata")
            )
            return _Fetched(workspace_id=workspace_id, state=state)
        if kind in INVOICE_EVENTS:
            invoice = invoice_state_from_stripe(stripe_client.invoice_retrieve(invoice_id=obj["id"]))
            state = None
            if invoice.subscription_id:
                state = StripeProvider().subscription_read(subscription_id=invoice.subscription_id)
            workspace_id = _workspace_id_for(subscription_id=invoice.subscription_id, customer_id=invoice.customer_id)
            return _Fetched(workspace_id=workspace_id, state=state, invoice=invoice)
    except stripe_client.StripeObjectMissing:
        # Deleted at Stripe (or from another account): nothing to apply, and retrying won't help.
        return _Fetched(skip="ignored: object no longer exists at Stripe")
    return _Fetched(skip="ignored: not handled")


def _still_owed(subscription: Subscription, state: SubscriptionState | None) -> bool:
    """Whether the workspace's subscription is still past_due or unpaid at Stripe.

    A paid invoice settles a failed payment only when nothing else is owed: Stripe delivers
    events out of order (a failed delivery is retried for days) and a customer may pay any open
    invoice, so "this invoice is paid" does not mean "the one that failed is". Stripe's own
    subscription status, fetched just now, does: it stays past_due/unpaid until the failed
    invoice is paid. A state of another (older) subscription says nothing about the current one,
    so then the status last recorded for the current one decides.
    """
    if state is not None and state.subscription_id == subscription.stripe_subscription_id:
        status = state.status
    else:
        status = subscription.status
    return status in (Status.PAST_DUE, Status.UNPAID)


def _fetched_apply(kind: str, fetched: _Fetched, now: datetime) -> tuple[str, object]:
    if fetched.skip:
        return fetched.skip, None
    if fetched.workspace_id is None:
        return "ignored: unknown workspace", None
    workspace, subscription = _locked(fetched.workspace_id)
    parts = []
    if fetched.invoice is not None:
        invoice = fetched.invoice
        _invoice_record(workspace=workspace, state=invoice, provider=Provider.STRIPE)
        parts.append(f"invoice {invoice.status}")
        if invoice.status == Invoice.Status.PAID:
            if _still_owed(subscription, fetched.state):
                parts.append("another invoice still owed")
            else:
                _payment_settled(subscription, workspace)
        elif kind == "invoice.payment_failed" and invoice.status in (Invoice.Status.OPEN, Invoice.Status.UNCOLLECTIBLE):
            _payment_failed(subscription, workspace, now)
            parts.append("grace period running")
    if fetched.state is not None:
        parts.append(
            _state_apply(subscription=subscription, workspace=workspace, state=fetched.state, provider=Provider.STRIPE)
        )
    return "; ".join(parts), workspace.pk


def stripe_webhook_receive(*, payload: bytes, signature: str, now: datetime | None = None) -> StripeEvent | None:
    """Verify and process one Stripe event exactly once; None when it was processed before."""
    try:
        event = stripe_client.webhook_event_construct(payload=payload, signature=signature or "")
    except stripe_client.WebhookError:
        logger.warning("refused a Stripe webhook with a bad or stale signature")
        raise ServiceError(code="bad_signature", message="The webhook signature is missing, wrong or too old.")
    if not isinstance(event.get("id"), str) or not isinstance(event.get("data"), dict) or "type" not in event:
        raise ServiceError(code="invalid", message="This is not a Stripe event.")
    now = now or timezone.now()
    if StripeEvent.objects.filter(event_id=event["id"]).exists():
        return None
    fetched = _fetch(event)
    with transaction.atomic():
        try:
            # The event row commits together with its effects, so a replay finds it and a crash
            # half-way leaves neither (Stripe then retries).
            with transaction.atomic():
                record = StripeEvent.objects.create(
                    event_id=event["id"],
                    type=event["type"],
                    created=datetime.fromtimestamp(event.get("created") or now.timestamp(), tz=UTC),
                    livemode=bool(event.get("livemode")),
                    payload=event,
                    received_at=now,
                )
        except IntegrityError:
            return None  # a concurrent delivery of the same event won
        outcome, workspace_id = _fetched_apply(event["type"], fetched, now)
        record.outcome = outcome[:255]
        record.workspace_id = workspace_id
        record.save(update_fields=["outcome", "workspace"])
    return record


# --- periodic jobs ------------------------------------------------------------------------------


def billing_grace_enforce(*, now: datetime | None = None) -> dict[str, int]:
    """Make workspaces whose grace period ran out read-only, and release those that settled."""
    now = now or timezone.now()
    locked = released = 0
    due = Subscription.objects.filter(grace_until__lte=now, billing_read_only=False).values_list(
        "workspace_id", flat=True
    )
    for workspace_id in list(due):
        with transaction.atomic():
            workspace, subscription = _locked(workspace_id)
            if subscription.grace_until is None or subscription.grace_until > now or subscription.billing_read_only:
                continue
            workspace.read_only = True
            workspace.save(update_fields=["read_only"])
            subscription.billing_read_only = True
            subscription.save(update_fields=["billing_read_only", "updated_at"])
            _mail(
                workspace,
                subject=f"{workspace.name} is now read-only",
                template="emails/billing_read_only.txt",
                context={"failed_at": subscription.payment_failed_at},
            )
            locked += 1
    settled = Subscription.objects.filter(billing_read_only=True, payment_failed_at__isnull=True)
    for workspace_id in list(settled.values_list("workspace_id", flat=True)):
        with transaction.atomic():
            workspace, subscription = _locked(workspace_id)
            released += _read_only_reconcile(subscription, workspace)
    return {"read_only": locked, "released": released}


def billing_local_renew(*, now: datetime | None = None) -> int:
    """Local billing mode: at the end of a period renew (with a local invoice) or end a cancelled plan."""
    now = now or timezone.now()
    due = Subscription.objects.filter(
        provider=Provider.LOCAL, status=Status.ACTIVE, current_period_end__lte=now
    ).values_list("workspace_id", flat=True)
    count = 0
    provider = LocalProvider()
    for workspace_id in list(due):
        with transaction.atomic():
            workspace, subscription = _locked(workspace_id)
            if subscription.current_period_end is None or subscription.current_period_end > now:
                continue
            result = provider.renew(subscription=subscription, now=now)
            _state_apply(subscription=subscription, workspace=workspace, state=result.state, provider=provider.name)
            _invoice_record(workspace=workspace, state=result.invoice, provider=provider.name)
            count += 1
    return count
