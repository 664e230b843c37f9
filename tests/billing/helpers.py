from __future__ import annotations

from billing.models import Subscription


def buy(api, workspace, fake_stripe, webhook, capture, gb: int):
    """Buy ``gb`` from the free plan the way a customer does: checkout, pay, webhook."""
    response = api.put(f"/api/v1/workspaces/{workspace.pk}/plan/", {"gb": gb}, format="json")
    assert response.status_code == 200, response.content
    session = fake_stripe.checkout_complete(response.json()["checkout_session_id"])
    with capture(execute=True):
        assert webhook("checkout.session.completed", session).status_code == 200
    workspace.refresh_from_db()
    return Subscription.objects.get(workspace=workspace)


def stripe_cancels(fake_stripe, webhook, capture, subscription):
    """Stripe ends the subscription (at its period's end, or giving up on an unpaid invoice) and
    tells us: the customer.subscription.deleted webhook's response."""
    sub = fake_stripe.subscriptions[subscription.stripe_subscription_id]
    sub["status"] = "canceled"
    with capture(execute=True):
        return webhook("customer.subscription.deleted", sub)
