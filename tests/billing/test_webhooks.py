"""The Stripe webhook: signatures, exactly-once processing, out-of-order delivery."""

from __future__ import annotations

import time

import pytest

from billing.models import StripeEvent, Subscription
from tests.billing.fake_stripe import event, sign
from tests.billing.helpers import buy

pytestmark = pytest.mark.django_db


def _checkout(api, ws, fake_stripe, gb=10):
    response = api.put(f"/api/v1/workspaces/{ws.pk}/plan/", {"gb": gb}, format="json")
    return fake_stripe.checkout_complete(response.json()["checkout_session_id"])


def test_forged_signature_is_refused_and_changes_nothing(api, owner_workspace, fake_stripe, webhook):
    session = _checkout(api, owner_workspace, fake_stripe)

    response = webhook("checkout.session.completed", session, secret="whsec_attacker")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_signature"
    owner_workspace.refresh_from_db()
    assert owner_workspace.plan_gb == 1
    assert not StripeEvent.objects.exists()


def test_missing_or_garbled_signature_is_refused(client, fake_stripe):
    payload = event("checkout.session.completed", {"id": "cs_test_x", "object": "checkout.session"})
    url = "/billing/stripe/webhook/"
    assert client.post(url, data=payload, content_type="application/json").status_code == 400
    assert (
        client.post(url, data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE="t=1,v1=zz").status_code
        == 400
    )
    assert (
        client.post(url, data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE="nonsense").status_code
        == 400
    )
    assert not StripeEvent.objects.exists()


def test_tampered_payload_with_a_valid_old_signature_is_refused(client, fake_stripe):
    payload = event("invoice.paid", {"id": "in_1", "object": "invoice"})
    header = sign(payload, "whsec_test_secret")
    tampered = payload.replace("invoice.paid", "invoice.payment_failed")
    response = client.post(
        "/billing/stripe/webhook/", data=tampered, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
    )
    assert response.status_code == 400


def test_stale_signature_is_refused(api, owner_workspace, fake_stripe, webhook):
    session = _checkout(api, owner_workspace, fake_stripe)

    response = webhook("checkout.session.completed", session, timestamp=int(time.time()) - 3600)

    assert response.status_code == 400
    owner_workspace.refresh_from_db()
    assert owner_workspace.plan_gb == 1


def test_webhook_needs_no_csrf_token_and_only_accepts_post(client, fake_stripe):
    assert client.get("/billing/stripe/webhook/").status_code == 405
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    payload = event("ping.unknown", {"id": "x", "object": "thing"})
    response = strict.post(
        "/billing/stripe/webhook/",
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(payload, "whsec_test_secret"),
    )
    assert response.status_code == 200
    assert StripeEvent.objects.get().outcome == "ignored: not handled"


def test_replayed_event_id_changes_nothing(
    api, owner_workspace, fake_stripe, webhook, django_capture_on_commit_callbacks
):
    ws = owner_workspace
    subscription = buy(api, ws, fake_stripe, webhook, django_capture_on_commit_callbacks, 10)
    sub = fake_stripe.subscriptions[subscription.stripe_subscription_id]
    sub["status"] = "canceled"
    with django_capture_on_commit_callbacks(execute=True):
        first = webhook("customer.subscription.deleted", sub, event_id="evt_replay_1")
    assert first.status_code == 200
    ws.refresh_from_db()
    assert ws.plan_gb == 1

    # The customer buys again; then the old deletion event is delivered a second time.
    session = _checkout(api, ws, fake_stripe, gb=20)
    with django_capture_on_commit_callbacks(execute=True):
        webhook("checkout.session.completed", session)
    ws.refresh_from_db()
    assert ws.plan_gb == 20
    fetches_before = len(fake_stripe.requests)

    with django_capture_on_commit_callbacks(execute=True):
        replay = webhook("customer.subscription.deleted", sub, event_id="evt_replay_1")

    assert replay.status_code == 200
    assert replay.json()["duplicate"] is True
    ws.refresh_from_db()
    assert ws.plan_gb == 20
    assert StripeEvent.objects.filter(event_id="evt_replay_1").count() == 1
    assert len(fake_stripe.requests) == fetches_before, "a replay is not even looked up"


def test_out_of_order_update_applies_the_current_subscription_not_the_old_snapshot(
    api, owner_workspace, fake_stripe, webhook, django_capture_on_commit_callbacks
):
    ws = owner_workspace
    subscription = buy(api, ws, fake_stripe, webhook, django_capture_on_commit_callbacks, 10)
    with django_capture_on_commit_callbacks(execute=True):
        api.put(f"/api/v1/workspaces/{ws.pk}/plan/", {"gb": 30}, format="json")
    old_snapshot = {**fake_stripe.subscriptions[subscription.stripe_subscription_id]}
    old_snapshot["items"] = {"object": "list", "data": [{"id": subscription.stripe_item_id, "quantity": 10}]}

    with django_capture_on_commit_callbacks(execute=True):
        response = webhook("customer.subscription.updated", old_snapshot)

    assert response.status_code == 200
    ws.refresh_from_db()
    assert ws.plan_gb == 30
    assert fake_stripe.requests[-1].method == "GET"
    assert fake_stripe.requests[-1].path == f"/v1/subscriptions/{subscription.stripe_subscription_id}"


def test_subscription_created_before_checkout_completed_is_matched_by_metadata(
    api, owner_workspace, fake_stripe, webhook, django_capture_on_commit_callbacks
):
    ws = owner_workspace
    session = _checkout(api, ws, fake_stripe, gb=25)
    sub = fake_stripe.subscriptions[session["subscription"]]

    with django_capture_on_commit_callbacks(execute=True):
        assert webhook("customer.subscription.created", sub).status_code == 200
    ws.refresh_from_db()
    assert (ws.plan_gb, ws.category) == (25, "C")

    with django_capture_on_commit_callbacks(execute=True):
        assert webhook("checkout.session.completed", session).status_code == 200
    ws.refresh_from_db()
    assert ws.plan_gb == 25
    assert Subscription.objects.get(workspace=ws).stripe_subscription_id == sub["id"]


def test_portal_quantity_change_reported_by_stripe_is_applied(
    api, owner_workspace, fake_stripe, webhook, django_capture_on_commit_callbacks, relocations
):
    ws = owner_workspace
    subscription = buy(api, ws, fake_stripe, webhook, django_capture_on_commit_callbacks, 10)
    relocations.clear()
    sub = fake_stripe.subscriptions[subscription.stripe_subscription_id]
    sub["items"]["data"][0]["quantity"] = 80

    with django_capture_on_commit_callbacks(execute=True):
        webhook("customer.subscription.updated", sub)

    ws.refresh_from_db()
    assert (ws.plan_gb, ws.category) == (80, "E")
    assert relocations == [{"workspace_id": str(ws.pk)}]


def test_event_for_an_unknown_workspace_is_recorded_and_ignored(client, fake_stripe, webhook):
    fake_stripe.subscriptions["sub_stranger"] = {
        "id": "sub_stranger",
        "object": "subscription",
        "customer": "cus_stranger",
        "status": "active",
        "cancel_at_period_end": False,
        "metadata": {},
        "items": {"object": "list", "data": [{"id": "si_x", "quantity": 10, "current_period_end": 2_000_000_000}]},
    }
    response = webhook("customer.subscription.updated", fake_stripe.subscriptions["sub_stranger"])
    assert response.status_code == 200
    assert StripeEvent.objects.get().outcome == "ignored: unknown workspace"
    assert not Subscription.objects.exists()


def test_stripe_outage_while_reading_the_object_answers_5xx_so_stripe_retries(
    api, owner_workspace, fake_stripe, webhook, django_capture_on_commit_callbacks
):
    session = _checkout(api, owner_workspace, fake_stripe)
    fake_stripe.outage = 500

    failed = webhook("checkout.session.completed", session, event_id="evt_retry_me")

    assert failed.status_code == 502
    assert failed.json()["error"]["code"] == "payment_provider_unavailable"
    assert not StripeEvent.objects.exists(), "not recorded, so the retry is processed"

    fake_stripe.outage = None
    with django_capture_on_commit_callbacks(execute=True):
        retried = webhook("checkout.session.completed", session, event_id="evt_retry_me")
    assert retried.status_code == 200
    owner_workspace.refresh_from_db()
    assert owner_workspace.plan_gb == 10


def test_event_about_an_object_stripe_no_longer_has_is_recorded_and_ignored(fake_stripe, webhook):
    response = webhook("customer.subscription.updated", {"id": "sub_gone", "object": "subscription", "metadata": {}})
    assert response.status_code == 200
    assert StripeEvent.objects.get().outcome == "ignored: object no longer exists at Stripe"


def test_invoice_events_list_the_invoice_in_the_app(
    api, owner_workspace, fake_stripe, webhook, django_capture_on_commit_callbacks
):
    subscription = buy(api, owner_workspace, fake_stripe, webhook, django_capture_on_commit_callbacks, 10)
    invoice = fake_stripe.invoice_create(subscription.stripe_subscription_id, status="paid")

    with django_capture_on_commit_callbacks(execute=True):
        assert webhook("invoice.paid", invoice).status_code == 200

    [listed] = api.get(f"/api/v1/workspaces/{owner_workspace.pk}/billing/invoices/").json()
    assert listed["number"] == invoice["number"]
    assert (listed["status"], listed["amount_paid_cents"], listed["plan_gb"]) == ("paid", 200, 10)
    assert listed["hosted_invoice_url"] == invoice["hosted_invoice_url"]
    assert listed["provider"] == "stripe"


def test_a_second_paid_checkout_does_not_replace_the_live_subscription_and_is_flagged(
    api, owner_workspace, fake_stripe, webhook, django_capture_on_commit_callbacks
):
    ws = owner_workspace
    first = _checkout(api, ws, fake_stripe, gb=10)
    second = _checkout(api, ws, fake_stripe, gb=40)  # a second tab, before the first one completed
    with django_capture_on_commit_callbacks(execute=True):
        webhook("checkout.session.completed", first)
        webhook("checkout.session.completed", second)

    ws.refresh_from_db()
    assert ws.plan_gb == 10
    assert Subscription.objects.get(workspace=ws).stripe_subscription_id == first["subscription"]
    assert "SECOND live subscription" in StripeEvent.objects.order_by("-received_at", "-pk").first().outcome
