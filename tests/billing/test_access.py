"""Who may see and change a workspace's plan, and what bad input gets."""

from __future__ import annotations

import pytest

from accounts.models import Membership
from tests.factories import PASSWORD


def _api_routes(ws):
    base = f"/api/v1/workspaces/{ws.pk}"
    return [
        ("get", f"{base}/plan/", None),
        ("put", f"{base}/plan/", {"gb": 10}),
        ("post", f"{base}/plan/cancel/", None),
        ("get", f"{base}/billing/invoices/", None),
        ("post", f"{base}/billing/portal/", None),
    ]


def _page_routes(ws):
    base = f"/app/workspaces/{ws.pk}"
    return [
        ("get", f"{base}/plan/"),
        ("post", f"{base}/plan/change/"),
        ("post", f"{base}/plan/cancel/"),
        ("post", f"{base}/billing/portal/"),
    ]


def test_outsider_gets_404_on_every_billing_api_route(outsider_api, team, local_mode):
    for method, url, data in _api_routes(team):
        response = getattr(outsider_api, method)(url, data, format="json")
        assert response.status_code == 404, (method, url)
        assert response.json()["error"]["code"] == "not_found"
    team.refresh_from_db()
    assert team.plan_gb == 1


def test_outsider_gets_404_on_every_billing_page(client, outsider, team, local_mode):
    client.force_login(outsider)
    for method, url in _page_routes(team):
        assert getattr(client, method)(url, {"gb": 10}).status_code == 404, (method, url)
    team.refresh_from_db()
    assert team.plan_gb == 1


def test_anonymous_caller_is_refused(anon_api, team, local_mode):
    for method, url, data in _api_routes(team):
        assert getattr(anon_api, method)(url, data, format="json").status_code in (401, 403), (method, url)


def test_member_sees_the_plan_but_cannot_change_it_or_see_invoices(teammate_api, team, local_mode):
    assert teammate_api.get(f"/api/v1/workspaces/{team.pk}/plan/").status_code == 200
    for method, url, data in _api_routes(team)[1:]:
        response = getattr(teammate_api, method)(url, data, format="json")
        assert response.status_code == 403, (method, url)
        assert response.json()["error"]["code"] == "forbidden"
    team.refresh_from_db()
    assert team.plan_gb == 1


def test_admin_can_change_the_plan(teammate_api, teammate, team, local_mode):
    Membership.objects.filter(workspace=team, user=teammate).update(role="admin")
    response = teammate_api.put(f"/api/v1/workspaces/{team.pk}/plan/", {"gb": 15}, format="json")
    assert response.status_code == 200
    assert response.json()["plan_gb"] == 15


@pytest.mark.parametrize("gb", [0, 2, 9, 101, -10, "ten", None, True, 10.5])
def test_invalid_plan_size_is_a_400_and_changes_nothing(api, owner_workspace, local_mode, gb):
    response = api.put(f"/api/v1/workspaces/{owner_workspace.pk}/plan/", {"gb": gb}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] in ("invalid", "invalid_plan")
    assert response.json()["error"]["message"]
    owner_workspace.refresh_from_db()
    assert owner_workspace.plan_gb == 1


def test_plan_page_shows_slider_price_category_and_local_mode_label(client, owner, owner_workspace, local_mode):
    client.login(email=owner.email, password=PASSWORD)
    page = client.get(f"/app/workspaces/{owner_workspace.pk}/plan/").content.decode()
    assert 'type="range"' in page and 'min="10"' in page and 'max="100"' in page
    assert "2.00 USD" in page  # 10 GB at 20 cents per GB
    assert "Local billing mode" in page


def test_plan_page_buys_changes_and_cancels_in_local_mode(client, owner, owner_workspace, local_mode):
    client.force_login(owner)
    base = f"/app/workspaces/{owner_workspace.pk}"
    response = client.post(f"{base}/plan/change/", {"gb": 40}, follow=True)
    assert "The plan is now 40 GB." in response.content.decode()
    owner_workspace.refresh_from_db()
    assert owner_workspace.plan_gb == 40
    page = client.get(f"{base}/plan/").content.decode()
    assert "8.00 USD" in page and "LOCAL-" in page
    response = client.post(f"{base}/plan/cancel/", follow=True)
    assert "returns to the free plan at the end of the period" in response.content.decode()
    response = client.post(f"{base}/plan/change/", {"gb": 5}, follow=True)
    assert "A plan is 1 GB (free)" in response.content.decode()


def test_plan_page_redirects_to_stripe_checkout(client, owner, owner_workspace, fake_stripe):
    client.force_login(owner)
    response = client.post(f"/app/workspaces/{owner_workspace.pk}/plan/change/", {"gb": 10})
    assert response.status_code == 302
    assert response["Location"].startswith("https://checkout.stripe.com/c/pay/cs_test_")


def test_checkout_return_page_applies_the_purchase_without_waiting_for_the_webhook(
    client, owner, owner_workspace, fake_stripe
):
    client.force_login(owner)
    client.post(f"/app/workspaces/{owner_workspace.pk}/plan/change/", {"gb": 10})
    [session_id] = fake_stripe.sessions
    fake_stripe.checkout_complete(session_id)

    page = client.get(f"/app/workspaces/{owner_workspace.pk}/plan/?checkout=success&session_id={session_id}")

    assert "Thank you" in page.content.decode()
    owner_workspace.refresh_from_db()
    assert owner_workspace.plan_gb == 10
