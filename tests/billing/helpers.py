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
