"""Every call to Stripe, and nothing else: the one outbound boundary of billing.

The rest of billing sees plain dicts shaped like Stripe's documented objects, never SDK types.
Tests replace the SDK's HTTP client (``stripe.default_http_client``) and so exercise this module
and the real SDK unchanged.

The SDK is imported on the first call, not with this module: it (with aiohttp, which it loads when
installed) adds about 32 MB to every web worker, and most workers never talk to Stripe.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings

from cloudstorage.errors import ServiceError

logger = logging.getLogger(__name__)


class WebhookError(Exception):
    """A webhook whose signature is bad, stale or missing, or whose payload is not an event."""


class StripeObjectMissing(ServiceError):
    """Stripe answered 404: the object does not exist (any more) in this account."""


def _client():
    import stripe

    # A fresh client per call reads the current settings; stripe.default_http_client, when set,
    # is the transport (None lets the SDK pick its own).
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        http_client=stripe.default_http_client,
        max_network_retries=2,
    )


def _plain(obj: Any) -> dict:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def _call(what: str, fn, *args, **kwargs) -> dict:
    import stripe

    try:
        return _plain(fn(*args, **kwargs))
    except stripe.InvalidRequestError as exc:
        if exc.http_status == 404:
            logger.warning("Stripe has no such object when trying to %s: %s", what, exc.user_message)
            raise StripeObjectMissing(
                code="payment_provider_refused",
                message=f"The payment provider does not know the object needed to {what}.",
                status_code=502,
            )
        logger.exception("Stripe refused to %s", what)
        raise ServiceError(
            code="payment_provider_refused",
            message=f"The payment provider refused to {what}: {exc.user_message or 'invalid request'}.",
            status_code=502,
        )
    except stripe.StripeError:
        logger.exception("Stripe call failed: %s", what)
        raise ServiceError(
            code="payment_provider_unavailable",
            message=f"The payment provider could not {what} right now; try again in a minute.",
            status_code=502,
        )


def customer_create(*, email: str, name: str, workspace_id: str) -> dict:
    params = {"email": email, "name": name, "metadata": {"workspace_id": workspace_id}}
    # The idempotency key makes a retried request create one customer, not two.
    options = {"idempotency_key": f"customer-{workspace_id}"}
    return _call("create a customer", _client().v1.customers.create, params=params, options=options)


def checkout_session_create(*, customer_id: str, workspace_id: str, gb: int, success_url: str, cancel_url: str) -> dict:
    """A Checkout Session in subscription mode: ``gb`` units of the per-GB monthly price."""
    params = {
        "mode": "subscription",
        "customer": customer_id,
        "client_reference_id": workspace_id,
        "line_items": [{"price": settings.STRIPE_PRICE_ID, "quantity": gb}],
        "success_url": success_url,
        "cancel_url": cancel_url,
        "metadata": {"workspace_id": workspace_id, "plan_gb": str(gb)},
        "subscription_data": {"metadata": {"workspace_id": workspace_id}},
    }
    return _call("start a checkout", _client().v1.checkout.sessions.create, params=params)


def checkout_session_retrieve(*, session_id: str) -> dict:
    return _call("read a checkout session", _client().v1.checkout.sessions.retrieve, session_id)


def subscription_retrieve(*, subscription_id: str) -> dict:
    return _call("read a subscription", _client().v1.subscriptions.retrieve, subscription_id)


def subscription_item_quantity_update(*, item_id: str, quantity: int, proration_behavior: str) -> dict:
    params = {"quantity": quantity, "proration_behavior": proration_behavior}
    return _call("change the subscription", _client().v1.subscription_items.update, item_id, params=params)


def subscription_cancel_at_period_end(*, subscription_id: str, cancel: bool) -> dict:
    params = {"cancel_at_period_end": cancel}
    return _call("change the cancellation", _client().v1.subscriptions.update, subscription_id, params=params)


def subscription_cancel_now(*, subscription_id: str) -> dict:
    params = {"invoice_now": False, "prorate": False}
    return _call("cancel the subscription", _client().v1.subscriptions.cancel, subscription_id, params=params)


def invoice_retrieve(*, invoice_id: str) -> dict:
    return _call("read an invoice", _client().v1.invoices.retrieve, invoice_id)


def portal_session_create(*, customer_id: str, return_url: str) -> dict:
    params = {"customer": customer_id, "return_url": return_url}
    return _call("open the billing portal", _client().v1.billing_portal.sessions.create, params=params)


def webhook_event_construct(*, payload: bytes, signature: str) -> dict:
    """The verified event; raises ``WebhookError`` for a bad, stale or missing signature."""
    import stripe

    try:
        event = stripe.Webhook.construct_event(
            payload.decode("utf-8"),
            signature,
            settings.STRIPE_WEBHOOK_SECRET,
            tolerance=settings.STRIPE_WEBHOOK_TOLERANCE,
        )
    except (stripe.SignatureVerificationError, ValueError) as error:
        raise WebhookError(str(error)) from error
    return _plain(event)
