"""Failed payment → grace period (e-mails) → read-only → paid or reduced → writable."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core import mail
from django.utils import timezone

from billing.models import Invoice, Subscription
from billing.plans import GB
from billing.services import billing_grace_enforce
from billing.tasks import billing_grace_enforce as grace_task
from tests.billing.helpers import buy, stripe_cancels


def _fail_payment(fake_stripe, webhook, capture, subscription):
    invoice = fake_stripe.invoice_create(subscription.stripe_subscription_id, status="open")
    fake_stripe.subscriptions[subscription.stripe_subscription_id]["status"] = "past_due"
    with capture(execute=True):
        assert webhook("invoice.payment_failed", invoice).status_code == 200
    return invoice


def test_failed_payment_grace_then_read_only_then_paid_makes_it_writable(
    api, owner_workspace, fake_stripe, webhook, django_capture_on_commit_callbacks
):
    ws = owner_workspace
    subscription = buy(api, ws, fake_stripe, webhook, django_capture_on_commit_callbacks, 10)
    mail.outbox.clear()
    before = timezone.now()

    invoice = _fail_payment(fake_stripe, webhook, django_capture_on_commit_callbacks, subscription)

    subscription.refresh_from_db()
    assert subscription.status == "past_due"
    assert subscription.payment_failed_at >= before
    assert subscription.grace_until == subscription.payment_failed_at + timedelta(days=7)
    [failed_mail] = mail.outbox
    assert failed_mail.to == ["owner@example.com"]
    assert "Payment failed" in failed_mail.subject
    assert Invoice.objects.get(stripe_invoice_id=invoice["id"]).status == "open"
    ws.refresh_from_db()
    assert ws.read_only is False, "writable during the grace period"

    # A day before the end of the grace period nothing happens yet.
    with django_capture_on_commit_callbacks(execute=True):
        assert billing_grace_enforce(now=subscription.grace_until - timedelta(days=1)) == {
            "read_only": 0,
            "released": 0,
        }
    ws.refresh_from_db()
    assert ws.read_only is False

    with django_capture_on_commit_callbacks(execute=True):
        assert billing_grace_enforce(now=subscription.grace_until + timedelta(minutes=1))["read_only"] == 1
    ws.refresh_from_db()
    assert ws.read_only is True
    assert "read-only" in mail.outbox[-1].subject
    plan = api.get(f"/api/v1/workspaces/{ws.pk}/plan/").json()
    assert plan["read_only"] is True

    # The customer pays; Stripe says so.
    fake_stripe.invoices[invoice["id"]].update(status="paid", amount_paid=invoice["amount_due"])
    fake_stripe.subscriptions[subscription.stripe_subscription_id]["status"] = "active"
    with django_capture_on_commit_callbacks(execute=True):
        assert webhook("invoice.paid", fake_stripe.invoices[invoice["id"]]).status_code == 200

    ws.refresh_from_db()
    assert ws.read_only is False
    subscription.refresh_from_db()
    assert (subscription.payment_failed_at, subscription.grace_until, subscription.billing_read_only) == (
        None,
        None,
        False,
    )
    assert Invoice.objects.get(stripe_invoice_id=invoice["id"]).status == "paid"
    assert "writable again" in mail.outbox[-1].subject


def test_a_second_failed_retry_does_not_extend_the_grace_period(
    api, owner_workspace, fake_stripe, webhook, django_capture_on_commit_callbacks
):
    subscription = buy(api, owner_workspace, fake_stripe, webhook, django_capture_on_commit_callbacks, 10)
    invoice = _fail_payment(fake_stripe, webhook, django_capture_on_commit_callbacks, subscription)
    subscription.refresh_from_db()
    first_deadline = subscription.grace_until

    with django_capture_on_commit_callbacks(execute=True):
        webhook("invoice.payment_failed", invoice)

    subscription.refresh_from_db()
    assert subscription.grace_until == first_deadline


def test_payment_failed_arriving_after_the_invoice_was_paid_starts_no_grace(
    api, owner_workspace, fake_stripe, webhook, django_capture_on_commit_callbacks
):
    subscription = buy(api, owner_workspace, fake_stripe, webhook, django_capture_on_commit_callbacks, 10)
    invoice = fake_stripe.invoice_create(subscription.stripe_subscription_id, status="open")
    stale_snapshot = dict(invoice)
    invoice.update(status="paid", amount_paid=invoice["amount_due"])

    with django_capture_on_commit_callbacks(execute=True):
        webhook("invoice.payment_failed", stale_snapshot)

    subscription.refresh_from_db()
    assert subscription.payment_failed_at is None
    assert Invoice.objects.get(stripe_invoice_id=invoice["id"]).status == "paid"


def test_a_late_paid_event_of_another_invoice_keeps_the_failed_payment_and_the_lock(
    api, owner_workspace, fake_stripe, webhook, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    ws = owner_workspace
    subscription = buy(api, ws, fake_stripe, webhook, capture, 10)
    # Invoice A is paid at Stripe, but its invoice.paid delivery is delayed (Stripe retries for days).
    paid_earlier = fake_stripe.invoice_create(subscription.stripe_subscription_id, status="paid")
    # The renewal fails and its grace period runs out: read-only.
    _fail_payment(fake_stripe, webhook, capture, subscription)
    subscription.refresh_from_db()
    with capture(execute=True):
        assert billing_grace_enforce(now=subscription.grace_until + timedelta(minutes=1))["read_only"] == 1
    failed_at = subscription.payment_failed_at

    # A's delivery arrives now, while Stripe still says the subscription is past_due.
    with capture(execute=True):
        assert webhook("invoice.paid", paid_earlier).status_code == 200

    subscription.refresh_from_db()
    ws.refresh_from_db()
    assert subscription.status == "past_due"
    assert subscription.payment_failed_at == failed_at
    assert ws.read_only is True
    assert subscription.billing_read_only is True


def test_a_paid_invoice_of_another_subscription_does_not_settle_the_current_one(
    api, owner_workspace, fake_stripe, webhook, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    ws = owner_workspace
    # A checkout finished in a second tab made a second subscription, since cancelled at Stripe.
    response = api.put(f"/api/v1/workspaces/{ws.pk}/plan/", {"gb": 20}, format="json")
    other = fake_stripe.checkout_complete(response.json()["checkout_session_id"])["subscription"]
    subscription = buy(api, ws, fake_stripe, webhook, capture, 10)
    fake_stripe.subscriptions[other]["status"] = "canceled"
    _fail_payment(fake_stripe, webhook, capture, subscription)
    subscription.refresh_from_db()
    failed_at = subscription.payment_failed_at

    with capture(execute=True):
        assert webhook("invoice.paid", fake_stripe.invoice_create(other, status="paid")).status_code == 200

    subscription.refresh_from_db()
    assert subscription.stripe_subscription_id != other
    assert subscription.payment_failed_at == failed_at


def test_read_only_workspace_reduced_to_the_free_plan_it_fits_is_writable_at_once(
    api, owner_workspace, fake_stripe, webhook, django_capture_on_commit_callbacks
):
    ws = owner_workspace
    subscription = buy(api, ws, fake_stripe, webhook, django_capture_on_commit_callbacks, 10)
    _fail_payment(fake_stripe, webhook, django_capture_on_commit_callbacks, subscription)
    subscription.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        billing_grace_enforce(now=subscription.grace_until + timedelta(seconds=1))
    ws.refresh_from_db()
    assert ws.read_only is True
    ws.used_bytes = GB // 2
    ws.save(update_fields=["used_bytes"])

    with django_capture_on_commit_callbacks(execute=True):
        response = api.put(f"/api/v1/workspaces/{ws.pk}/plan/", {"gb": 1}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["plan_gb"], body["read_only"], body["status"]) == (1, False, "canceled")
    [cancel] = fake_stripe.requests_to("DELETE", f"/v1/subscriptions/{subscription.stripe_subscription_id}")
    assert cancel.params == {"invoice_now": "false", "prorate": "false"}


def test_read_only_workspace_over_the_free_plan_stays_read_only_until_its_files_fit(
    api, owner_workspace, fake_stripe, webhook, django_capture_on_commit_callbacks
):
    ws = owner_workspace
    subscription = buy(api, ws, fake_stripe, webhook, django_capture_on_commit_callbacks, 10)
    _fail_payment(fake_stripe, webhook, django_capture_on_commit_callbacks, subscription)
    subscription.refresh_from_db()
    billing_grace_enforce(now=subscription.grace_until + timedelta(seconds=1))
    ws.used_bytes = 3 * GB
    ws.save(update_fields=["used_bytes"])

    # Stripe gives up on the invoice and cancels: the workspace is on the free plan but holds 3 GB.
    stripe_cancels(fake_stripe, webhook, django_capture_on_commit_callbacks, subscription)
    ws.refresh_from_db()
    assert (ws.plan_gb, ws.read_only) == (1, True)

    ws.used_bytes = GB - 1
    ws.save(update_fields=["used_bytes"])
    with django_capture_on_commit_callbacks(execute=True):
        assert billing_grace_enforce(now=timezone.now())["released"] == 1
    ws.refresh_from_db()
    assert ws.read_only is False


def test_increase_is_refused_while_a_payment_is_overdue(
    api, owner_workspace, fake_stripe, webhook, django_capture_on_commit_callbacks
):
    subscription = buy(api, owner_workspace, fake_stripe, webhook, django_capture_on_commit_callbacks, 10)
    _fail_payment(fake_stripe, webhook, django_capture_on_commit_callbacks, subscription)

    response = api.put(f"/api/v1/workspaces/{owner_workspace.pk}/plan/", {"gb": 50}, format="json")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "payment_overdue"
    assert fake_stripe.requests_to("POST", "/v1/subscription_items/") == []


def test_grace_check_is_a_daily_beat_task_that_runs(
    api, owner_workspace, fake_stripe, webhook, django_capture_on_commit_callbacks
):
    entry = settings.CELERY_BEAT_SCHEDULE["billing-grace-enforce"]
    assert entry["task"] == "billing.tasks.billing_grace_enforce"
    assert grace_task.name == entry["task"]
    subscription = buy(api, owner_workspace, fake_stripe, webhook, django_capture_on_commit_callbacks, 10)
    _fail_payment(fake_stripe, webhook, django_capture_on_commit_callbacks, subscription)
    Subscription.objects.filter(pk=subscription.pk).update(grace_until=timezone.now() - timedelta(minutes=1))

    result = grace_task.delay().get()

    assert result == {"read_only": 1, "released": 0}
    owner_workspace.refresh_from_db()
    assert owner_workspace.read_only is True
