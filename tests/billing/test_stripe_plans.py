"""Plan changes in Stripe mode, driving the real stripe SDK against FakeStripe."""

from __future__ import annotations

from billing.models import Subscription
from billing.plans import GB
from tests.billing.conftest import PRICE_ID
from tests.billing.helpers import buy, stripe_cancels


def test_buy_10_gb_checkout_then_webhook_gives_10_gb_category_b(
    api, owner_workspace, fake_stripe, webhook, django_capture_on_commit_callbacks, relocations
):
    ws = owner_workspace
    response = api.put(f"/api/v1/workspaces/{ws.pk}/plan/", {"gb": 10}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["checkout_url"].startswith("https://checkout.stripe.com/c/pay/cs_test_")
    [customer] = fake_stripe.requests_to("POST", "/v1/customers")
    assert customer.params["metadata[workspace_id]"] == str(ws.pk)
    [checkout] = fake_stripe.requests_to("POST", "/v1/checkout/sessions")
    assert checkout.params["mode"] == "subscription"
    assert checkout.params["line_items[0][price]"] == PRICE_ID
    assert checkout.params["line_items[0][quantity]"] == "10"
    assert checkout.params["client_reference_id"] == str(ws.pk)
    assert checkout.params["customer"] == next(iter(fake_stripe.customers))
    ws.refresh_from_db()
    assert ws.plan_gb == 1, "nothing changes before the payment"

    session = fake_stripe.checkout_complete(body["checkout_session_id"])
    with django_capture_on_commit_callbacks(execute=True):
        assert webhook("checkout.session.completed", session).status_code == 200

    ws.refresh_from_db()
    assert ws.plan_gb == 10
    assert ws.quota_bytes == 10 * GB
    assert ws.category == "B"
    assert relocations == [{"workspace_id": str(ws.pk)}]
    subscription = Subscription.objects.get(workspace=ws)
    assert subscription.status == "active"
    assert subscription.quantity_gb == 10
    assert subscription.stripe_subscription_id == session["subscription"]
    plan = api.get(f"/api/v1/workspaces/{ws.pk}/plan/").json()
    assert (plan["plan_gb"], plan["category"], plan["price_cents"], plan["mode"]) == (10, "B", 200, "stripe")


def test_increase_10_to_30_is_immediate_with_always_invoice_and_moves_to_category_c(
    api, owner_workspace, fake_stripe, webhook, django_capture_on_commit_callbacks, relocations
):
    ws = owner_workspace
    subscription = buy(api, ws, fake_stripe, webhook, django_capture_on_commit_callbacks, 10)
    relocations.clear()

    with django_capture_on_commit_callbacks(execute=True):
        response = api.put(f"/api/v1/workspaces/{ws.pk}/plan/", {"gb": 30}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["plan_gb"] == 30
    assert response.json()["category"] == "C"
    [update] = fake_stripe.requests_to("POST", "/v1/subscription_items/")
    assert update.path == f"/v1/subscription_items/{subscription.stripe_item_id}"
    assert update.params == {"quantity": "30", "proration_behavior": "always_invoice"}
    ws.refresh_from_db()
    assert (ws.plan_gb, ws.category) == (30, "C")
    assert relocations == [{"workspace_id": str(ws.pk)}]


def test_change_within_a_category_queues_no_move(
    api, owner_workspace, fake_stripe, webhook, django_capture_on_commit_callbacks, relocations
):
    ws = owner_workspace
    buy(api, ws, fake_stripe, webhook, django_capture_on_commit_callbacks, 10)
    relocations.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert api.put(f"/api/v1/workspaces/{ws.pk}/plan/", {"gb": 20}, format="json").status_code == 200
    assert relocations == []


def test_decrease_30_to_12_is_refused_while_20_gb_are_used(
    api, owner_workspace, fake_stripe, webhook, django_capture_on_commit_callbacks
):
    ws = owner_workspace
    buy(api, ws, fake_stripe, webhook, django_capture_on_commit_callbacks, 30)
    ws.used_bytes = 20 * GB
    ws.save(update_fields=["used_bytes"])

    response = api.put(f"/api/v1/workspaces/{ws.pk}/plan/", {"gb": 12}, format="json")

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "plan_too_small"
    assert "Free at least 8.0 GB" in error["message"]
    assert error["details"]["bytes_to_free"] == 8 * GB
    assert fake_stripe.requests_to("POST", "/v1/subscription_items/") == []
    ws.refresh_from_db()
    assert ws.plan_gb == 30


def test_decrease_that_fits_applies_at_once_with_create_prorations(
    api, owner_workspace, fake_stripe, webhook, django_capture_on_commit_callbacks, relocations
):
    ws = owner_workspace
    buy(api, ws, fake_stripe, webhook, django_capture_on_commit_callbacks, 30)
    ws.used_bytes = 20 * GB
    ws.save(update_fields=["used_bytes"])
    relocations.clear()

    with django_capture_on_commit_callbacks(execute=True):
        response = api.put(f"/api/v1/workspaces/{ws.pk}/plan/", {"gb": 20}, format="json")

    assert response.status_code == 200
    [update] = fake_stripe.requests_to("POST", "/v1/subscription_items/")
    assert update.params == {"quantity": "20", "proration_behavior": "create_prorations"}
    ws.refresh_from_db()
    assert (ws.plan_gb, ws.category) == (20, "B")
    assert relocations == [{"workspace_id": str(ws.pk)}]


def test_cancel_keeps_the_plan_until_the_period_ends_then_returns_to_free(
    api, owner_workspace, fake_stripe, webhook, django_capture_on_commit_callbacks, relocations
):
    ws = owner_workspace
    subscription = buy(api, ws, fake_stripe, webhook, django_capture_on_commit_callbacks, 10)

    response = api.post(f"/api/v1/workspaces/{ws.pk}/plan/cancel/")

    assert response.status_code == 200
    assert response.json()["cancel_at_period_end"] is True
    assert response.json()["plan_gb"] == 10
    [update] = fake_stripe.requests_to("POST", f"/v1/subscriptions/{subscription.stripe_subscription_id}")
    assert update.params == {"cancel_at_period_end": "true"}

    # At the period's end Stripe deletes the subscription and tells us so.
    relocations.clear()
    assert stripe_cancels(fake_stripe, webhook, django_capture_on_commit_callbacks, subscription).status_code == 200
    ws.refresh_from_db()
    assert (ws.plan_gb, ws.category) == (1, "A")
    assert relocations == [{"workspace_id": str(ws.pk)}]
    assert Subscription.objects.get(workspace=ws).status == "canceled"


def test_choosing_the_same_size_after_cancelling_resumes_the_subscription(
    api, owner_workspace, fake_stripe, webhook, django_capture_on_commit_callbacks
):
    ws = owner_workspace
    subscription = buy(api, ws, fake_stripe, webhook, django_capture_on_commit_callbacks, 10)
    api.post(f"/api/v1/workspaces/{ws.pk}/plan/cancel/")

    response = api.put(f"/api/v1/workspaces/{ws.pk}/plan/", {"gb": 10}, format="json")

    assert response.json()["cancel_at_period_end"] is False
    last = fake_stripe.requests_to("POST", f"/v1/subscriptions/{subscription.stripe_subscription_id}")[-1]
    assert last.params == {"cancel_at_period_end": "false"}


def test_buying_again_after_cancellation_starts_a_new_checkout(
    api, owner_workspace, fake_stripe, webhook, django_capture_on_commit_callbacks
):
    ws = owner_workspace
    subscription = buy(api, ws, fake_stripe, webhook, django_capture_on_commit_callbacks, 10)
    stripe_cancels(fake_stripe, webhook, django_capture_on_commit_callbacks, subscription)

    response = api.put(f"/api/v1/workspaces/{ws.pk}/plan/", {"gb": 50}, format="json")

    assert "checkout_url" in response.json()
    assert len(fake_stripe.requests_to("POST", "/v1/customers")) == 1, "the customer is reused"
    assert fake_stripe.requests_to("POST", "/v1/checkout/sessions")[-1].params["line_items[0][quantity]"] == "50"


def test_buying_again_after_cancellation_is_refused_below_the_data_stored(
    api, owner_workspace, fake_stripe, webhook, django_capture_on_commit_callbacks
):
    ws = owner_workspace
    subscription = buy(api, ws, fake_stripe, webhook, django_capture_on_commit_callbacks, 50)
    ws.used_bytes = 40 * GB
    ws.save(update_fields=["used_bytes"])
    stripe_cancels(fake_stripe, webhook, django_capture_on_commit_callbacks, subscription)
    ws.refresh_from_db()
    assert ws.plan_gb == 1  # back on the free plan, with its 40 GB of files
    checkouts = len(fake_stripe.requests_to("POST", "/v1/checkout/sessions"))

    response = api.put(f"/api/v1/workspaces/{ws.pk}/plan/", {"gb": 10}, format="json")

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "plan_too_small"
    assert error["details"]["bytes_to_free"] == 30 * GB
    assert len(fake_stripe.requests_to("POST", "/v1/checkout/sessions")) == checkouts, "no checkout to pay"
    ws.refresh_from_db()
    assert ws.plan_gb == 1
    assert "checkout_url" in api.put(f"/api/v1/workspaces/{ws.pk}/plan/", {"gb": 40}, format="json").json()


def test_portal_link_comes_from_stripe_for_the_workspace_customer(
    api, owner_workspace, fake_stripe, webhook, django_capture_on_commit_callbacks
):
    ws = owner_workspace
    subscription = buy(api, ws, fake_stripe, webhook, django_capture_on_commit_callbacks, 10)

    response = api.post(f"/api/v1/workspaces/{ws.pk}/billing/portal/")

    assert response.status_code == 200
    assert response.json()["url"].startswith("https://billing.stripe.com/p/session/")
    [portal] = fake_stripe.requests_to("POST", "/v1/billing_portal/sessions")
    assert portal.params["customer"] == subscription.stripe_customer_id
    assert portal.params["return_url"].endswith(f"/app/workspaces/{ws.pk}/plan/")


def test_stripe_outage_is_a_clear_502_and_changes_nothing(
    api, owner_workspace, fake_stripe, webhook, django_capture_on_commit_callbacks
):
    ws = owner_workspace
    subscription = buy(api, ws, fake_stripe, webhook, django_capture_on_commit_callbacks, 10)
    fake_stripe.subscriptions.clear()  # Stripe no longer knows the item: it answers 404

    response = api.put(f"/api/v1/workspaces/{ws.pk}/plan/", {"gb": 30}, format="json")

    assert response.status_code == 502
    assert response.json()["error"]["code"] == "payment_provider_refused"
    ws.refresh_from_db()
    assert ws.plan_gb == 10
    assert Subscription.objects.get(workspace=ws).quantity_gb == subscription.quantity_gb


def test_cancel_is_allowed_even_when_the_files_exceed_the_free_plan(
    api, owner_workspace, fake_stripe, webhook, django_capture_on_commit_callbacks
):
    ws = owner_workspace
    buy(api, ws, fake_stripe, webhook, django_capture_on_commit_callbacks, 10)
    ws.used_bytes = 5 * GB
    ws.save(update_fields=["used_bytes"])

    assert api.put(f"/api/v1/workspaces/{ws.pk}/plan/", {"gb": 1}, format="json").status_code == 409
    response = api.post(f"/api/v1/workspaces/{ws.pk}/plan/cancel/")

    assert response.status_code == 200
    assert (response.json()["plan_gb"], response.json()["cancel_at_period_end"]) == (10, True)
