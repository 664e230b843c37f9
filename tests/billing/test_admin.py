from __future__ import annotations

from billing.models import StripeEvent
from tests.factories import UserFactory


def test_operators_see_plans_subscriptions_invoices_and_stripe_events(
    client, api, owner_workspace, fake_stripe, webhook, settings
):
    staff = UserFactory(email="operator@example.com", is_staff=True, is_superuser=True)
    # A purchase in local mode gives a subscription and an invoice; a webhook gives an event.
    settings.STRIPE_SECRET_KEY = ""
    api.put(f"/api/v1/workspaces/{owner_workspace.pk}/plan/", {"gb": 10}, format="json")
    settings.STRIPE_SECRET_KEY = "sk_test_fake"
    webhook("ping.unknown", {"id": "x", "object": "thing"})
    event = StripeEvent.objects.get()
    client.force_login(staff)

    for url in (
        "/admin/billing/workspaceplan/",
        f"/admin/billing/workspaceplan/{owner_workspace.pk}/change/",
        "/admin/billing/subscription/",
        "/admin/billing/invoice/",
        "/admin/billing/stripeevent/",
        f"/admin/billing/stripeevent/{event.pk}/change/",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
    assert "local · active" in client.get("/admin/billing/workspaceplan/").content.decode()
    assert client.get("/admin/billing/stripeevent/add/").status_code == 403
