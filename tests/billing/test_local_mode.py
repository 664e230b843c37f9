"""The local billing mode (no Stripe keys): the same service logic with the local provider."""

from __future__ import annotations

from datetime import timedelta

import stripe
from django.utils import timezone

from billing.models import Invoice, Subscription
from billing.plans import GB
from billing.services import billing_local_renew


class NoNetwork(stripe.HTTPClient):
    """Proves local mode never calls Stripe: any request fails the test."""

    name = "no-network"

    def request(self, *args, **kwargs):
        raise AssertionError("local billing mode must not call Stripe")

    def request_stream(self, *args, **kwargs):
        raise AssertionError("local billing mode must not call Stripe")

    def close(self):
        pass


def test_local_mode_end_to_end(
    api, owner_workspace, local_mode, monkeypatch, django_capture_on_commit_callbacks, relocations
):
    monkeypatch.setattr(stripe, "default_http_client", NoNetwork())
    ws = owner_workspace
    url = f"/api/v1/workspaces/{ws.pk}/plan/"

    plan = api.get(url).json()
    assert plan["mode"] == "local"
    assert "no payment is taken" in plan["mode_label"]
    assert (plan["plan_gb"], plan["category"], plan["price_cents"]) == (1, "A", 0)
    assert plan["price_table"]["price_per_gb_cents"] == 20
    assert plan["price_table"]["categories"][1] == {
        "category": "B",
        "min_gb": 10,
        "max_gb": 24,
        "min_price_cents": 200,
        "max_price_cents": 480,
    }

    # Buying applies at once and records a local invoice.
    with django_capture_on_commit_callbacks(execute=True):
        bought = api.put(url, {"gb": 10}, format="json")
    assert bought.status_code == 200
    assert "checkout_url" not in bought.json()
    assert (bought.json()["plan_gb"], bought.json()["category"], bought.json()["status"]) == (10, "B", "active")
    assert relocations == [{"workspace_id": str(ws.pk)}]
    [first] = api.get(f"/api/v1/workspaces/{ws.pk}/billing/invoices/").json()
    assert (first["provider"], first["status"], first["amount_due_cents"], first["plan_gb"]) == (
        "local",
        "paid",
        200,
        10,
    )
    assert first["number"].startswith("LOCAL-")

    # An increase is immediate, with a prorated local invoice; the category changes to C.
    with django_capture_on_commit_callbacks(execute=True):
        grown = api.put(url, {"gb": 30}, format="json").json()
    assert (grown["plan_gb"], grown["category"]) == (30, "C")
    assert len(relocations) == 2
    invoices = api.get(f"/api/v1/workspaces/{ws.pk}/billing/invoices/").json()
    assert len(invoices) == 2
    assert 0 < invoices[0]["amount_due_cents"] <= 400

    # A decrease below the stored data is refused, one that fits is applied.
    ws.used_bytes = 20 * GB
    ws.save(update_fields=["used_bytes"])
    refused = api.put(url, {"gb": 12}, format="json")
    assert refused.status_code == 409
    assert "Free at least 8.0 GB" in refused.json()["error"]["message"]
    assert api.put(url, {"gb": 20}, format="json").json()["plan_gb"] == 20

    # Renewal at the end of the period records an invoice and moves the period on.
    subscription = Subscription.objects.get(workspace=ws)
    period_end = subscription.current_period_end
    assert billing_local_renew(now=period_end + timedelta(minutes=1)) == 1
    subscription.refresh_from_db()
    assert subscription.current_period_end == period_end + timedelta(days=30)
    assert Invoice.objects.filter(workspace=ws, amount_due_cents=400, description__contains="renewal").exists()

    # Cancel: nothing changes until the period ends, then the free plan.
    ws.used_bytes = 0
    ws.save(update_fields=["used_bytes"])
    cancelled = api.post(f"/api/v1/workspaces/{ws.pk}/plan/cancel/").json()
    assert (cancelled["plan_gb"], cancelled["cancel_at_period_end"]) == (20, True)
    assert billing_local_renew(now=subscription.current_period_end - timedelta(days=1)) == 0
    with django_capture_on_commit_callbacks(execute=True):
        assert billing_local_renew(now=subscription.current_period_end + timedelta(minutes=1)) == 1
    ws.refresh_from_db()
    assert (ws.plan_gb, ws.category) == (1, "A")
    assert api.get(url).json()["status"] == "canceled"

    # The "portal" of local mode is the plan page itself.
    portal = api.post(f"/api/v1/workspaces/{ws.pk}/billing/portal/").json()
    assert portal["url"].endswith(f"/app/workspaces/{ws.pk}/plan/")


def test_local_cancel_of_the_free_plan_is_refused(api, owner_workspace, local_mode):
    response = api.post(f"/api/v1/workspaces/{owner_workspace.pk}/plan/cancel/")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "no_subscription"


def test_renewal_skips_subscriptions_whose_period_is_not_over(api, owner_workspace, local_mode):
    api.put(f"/api/v1/workspaces/{owner_workspace.pk}/plan/", {"gb": 10}, format="json")
    assert billing_local_renew(now=timezone.now()) == 0
    assert Invoice.objects.filter(workspace=owner_workspace).count() == 1
