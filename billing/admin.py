from django.contrib import admin

from billing.models import Invoice, StripeEvent, Subscription, WorkspacePlan


class SubscriptionInline(admin.StackedInline):
    model = Subscription
    extra = 0
    can_delete = False
    readonly_fields = ["stripe_customer_id", "stripe_subscription_id", "stripe_item_id", "created_at", "updated_at"]


@admin.register(WorkspacePlan)
class WorkspacePlanAdmin(admin.ModelAdmin):
    """Plans are changed through billing (so Stripe and the disks follow), not edited here."""

    list_display = ["name", "owner", "plan_gb", "category", "used_bytes", "read_only", "billing_status"]
    list_filter = ["plan_gb", "read_only", "subscription__status", "subscription__provider"]
    search_fields = ["name", "owner__email"]
    readonly_fields = ["name", "owner", "kind", "plan_gb", "used_bytes", "read_only", "created_at"]
    fields = readonly_fields
    inlines = [SubscriptionInline]

    @admin.display(description="billing")
    def billing_status(self, obj) -> str:
        subscription = getattr(obj, "subscription", None)
        return f"{subscription.provider} · {subscription.status}" if subscription else "free"

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = [
        "workspace",
        "provider",
        "status",
        "quantity_gb",
        "current_period_end",
        "cancel_at_period_end",
        "grace_until",
        "billing_read_only",
    ]
    list_filter = ["provider", "status", "cancel_at_period_end", "billing_read_only"]
    search_fields = ["workspace__name", "stripe_customer_id", "stripe_subscription_id"]
    raw_id_fields = ["workspace"]
    readonly_fields = ["created_at", "updated_at"]


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    list_display = [
        "number",
        "workspace",
        "provider",
        "status",
        "amount_due_cents",
        "currency",
        "plan_gb",
        "created_at",
    ]
    list_filter = ["provider", "status", "currency"]
    search_fields = ["number", "stripe_invoice_id", "workspace__name"]
    raw_id_fields = ["workspace"]
    date_hierarchy = "created_at"


@admin.register(StripeEvent)
class StripeEventAdmin(admin.ModelAdmin):
    """Received events, read-only: they are the record of what Stripe told us."""

    list_display = ["event_id", "type", "created", "received_at", "workspace", "outcome"]
    list_filter = ["type", "livemode"]
    search_fields = ["event_id", "type", "outcome"]
    readonly_fields = ["event_id", "type", "created", "livemode", "workspace", "outcome", "payload", "received_at"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
