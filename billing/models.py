"""Subscriptions, invoices and received Stripe events, one workspace at a time."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import Workspace


class Provider(models.TextChoices):
    LOCAL = "local", "Local billing mode (no payment taken)"
    STRIPE = "stripe", "Stripe"


class Subscription(models.Model):
    """A workspace's billing state: its provider ids, what it pays for, and any grace period.

    The workspace's ``plan_gb`` stays the single source of the quota; this row says why it is what
    it is. ``status`` uses Stripe's subscription statuses, plus ``free`` for no subscription.
    """

    class Status(models.TextChoices):
        FREE = "free"
        INCOMPLETE = "incomplete"
        INCOMPLETE_EXPIRED = "incomplete_expired"
        TRIALING = "trialing"
        ACTIVE = "active"
        PAST_DUE = "past_due"
        UNPAID = "unpaid"
        CANCELED = "canceled"
        PAUSED = "paused"

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="subscription")
    provider = models.CharField(max_length=10, choices=Provider.choices, default=Provider.LOCAL)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.FREE)
    quantity_gb = models.PositiveSmallIntegerField(null=True, blank=True, help_text="GB paid for.")
    current_period_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    stripe_customer_id = models.CharField(max_length=255, blank=True, db_index=True)
    stripe_subscription_id = models.CharField(max_length=255, blank=True)
    stripe_item_id = models.CharField(max_length=255, blank=True)
    # Grace period after a failed payment; the workspace turns read-only when it runs out.
    payment_failed_at = models.DateTimeField(null=True, blank=True)
    grace_until = models.DateTimeField(null=True, blank=True)
    # True when *billing* made the workspace read-only, so only billing lifts it again.
    billing_read_only = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["stripe_subscription_id"],
                condition=~Q(stripe_subscription_id=""),
                name="billing_one_row_per_stripe_subscription",
            ),
            models.CheckConstraint(
                condition=Q(payment_failed_at__isnull=True, grace_until__isnull=True)
                | Q(payment_failed_at__isnull=False, grace_until__isnull=False),
                name="billing_grace_has_start_and_end",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.workspace} · {self.provider} · {self.status}"

    PAYING_STATUSES = (Status.ACTIVE, Status.TRIALING, Status.PAST_DUE, Status.UNPAID)

    @property
    def is_paid_plan(self) -> bool:
        """A live subscription whose quantity can be changed (rather than bought anew)."""
        return self.status in self.PAYING_STATUSES and bool(self.quantity_gb)


class Invoice(models.Model):
    """An invoice from Stripe (mirrored by webhooks) or one recorded by the local billing mode."""

    class Status(models.TextChoices):
        DRAFT = "draft"
        OPEN = "open"
        PAID = "paid"
        UNCOLLECTIBLE = "uncollectible"
        VOID = "void"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="invoices")
    provider = models.CharField(max_length=10, choices=Provider.choices)
    stripe_invoice_id = models.CharField(max_length=255, blank=True)
    number = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices)
    description = models.CharField(max_length=255, blank=True)
    plan_gb = models.PositiveSmallIntegerField(null=True, blank=True)
    amount_due_cents = models.BigIntegerField(default=0)
    amount_paid_cents = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3)
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    hosted_invoice_url = models.URLField(max_length=1000, blank=True)
    pdf_url = models.URLField(max_length=1000, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["stripe_invoice_id"],
                condition=~Q(stripe_invoice_id=""),
                name="billing_one_row_per_stripe_invoice",
            ),
            models.CheckConstraint(condition=Q(amount_paid_cents__gte=0), name="billing_invoice_paid_not_negative"),
        ]
        indexes = [models.Index(fields=["workspace", "-created_at"], name="billing_invoice_ws_created")]

    def __str__(self) -> str:
        return self.number or str(self.pk)


class StripeEvent(models.Model):
    """A Stripe webhook event, stored in the same transaction as its effects: exactly once."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    created = models.DateTimeField(help_text="When Stripe created the event.")
    livemode = models.BooleanField(default=False)
    workspace = models.ForeignKey(Workspace, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    outcome = models.CharField(max_length=255, blank=True)
    payload = models.JSONField()
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class WorkspacePlan(Workspace):
    """The admin's view of every workspace's plan (a proxy: no table of its own)."""

    class Meta:
        proxy = True
        verbose_name = "workspace plan"
