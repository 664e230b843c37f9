"""A stand-in for Stripe's HTTP API, plugged in as the stripe SDK's HTTP client.

It records every request the real SDK makes (method, path, form parameters) and answers with JSON
shaped like Stripe's documented objects, keeping just enough state (customers, checkout sessions,
subscriptions, invoices) to play Stripe's side of a purchase. Nothing of ours is replaced.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

import stripe

PERIOD = 30 * 24 * 3600


@dataclass
class Recorded:
    method: str
    path: str
    params: dict[str, str]


@dataclass
class FakeStripe(stripe.HTTPClient):
    price_id: str = "price_gb_month"
    unit_amount: int = 20
    currency: str = "usd"
    requests: list[Recorded] = field(default_factory=list)
    customers: dict = field(default_factory=dict)
    sessions: dict = field(default_factory=dict)
    subscriptions: dict = field(default_factory=dict)
    invoices: dict = field(default_factory=dict)
    # When set, every request fails with this HTTP status (Stripe having a bad day).
    outage: int | None = None

    name = "fake-stripe"

    def __post_init__(self):
        super().__init__()
        self._ids = itertools.count(1)
        self.now = int(time.time())

    # --- the SDK's side -------------------------------------------------------------------------

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        parts = urlsplit(url)
        raw = post_data.decode() if isinstance(post_data, bytes) else (post_data or parts.query)
        params = dict(parse_qsl(raw, keep_blank_values=True))
        self.requests.append(Recorded(method.upper(), parts.path, params))
        headers = {"request-id": f"req_{next(self._ids)}"}
        if self.outage:
            # Stripe's own header tells the SDK not to retry, which keeps the tests fast.
            body = {"error": {"type": "api_error", "message": "Something went wrong on Stripe's end."}}
            return json.dumps(body), self.outage, headers | {"stripe-should-retry": "false"}
        status, body = self._route(method.upper(), parts.path, params)
        return json.dumps(body), status, headers

    def request_stream(self, *args, **kwargs):
        raise AssertionError("billing never streams from Stripe")

    def close(self):
        pass

    def _route(self, method: str, path: str, p: dict):
        if method == "POST" and path == "/v1/customers":
            cus = {
                "id": self._id("cus"),
                "object": "customer",
                "email": p.get("email"),
                "name": p.get("name"),
                "metadata": {"workspace_id": p.get("metadata[workspace_id]")},
                "livemode": False,
            }
            self.customers[cus["id"]] = cus
            return 200, cus
        if method == "POST" and path == "/v1/checkout/sessions":
            sid = self._id("cs_test")
            session = {
                "id": sid,
                "object": "checkout.session",
                "mode": p["mode"],
                "status": "open",
                "payment_status": "unpaid",
                "customer": p.get("customer"),
                "client_reference_id": p.get("client_reference_id"),
                "metadata": {k[9:-1]: v for k, v in p.items() if k.startswith("metadata[")},
                "subscription": None,
                "success_url": p["success_url"],
                "cancel_url": p["cancel_url"],
                "url": f"https://checkout.stripe.com/c/pay/{sid}",
                "_quantity": int(p["line_items[0][quantity]"]),
                "_subscription_metadata": {
                    k[len("subscription_data[metadata][") : -1]: v
                    for k, v in p.items()
                    if k.startswith("subscription_data[metadata][")
                },
            }
            self.sessions[sid] = session
            return 200, self._public(session)
        if m := re.fullmatch(r"/v1/checkout/sessions/([^/]+)", path):
            return self._found(self.sessions, m[1], self._public)
        if method == "GET" and (m := re.fullmatch(r"/v1/subscriptions/([^/]+)", path)):
            return self._found(self.subscriptions, m[1])
        if method == "POST" and (m := re.fullmatch(r"/v1/subscriptions/([^/]+)", path)):
            sub = self.subscriptions[m[1]]
            if "cancel_at_period_end" in p:
                sub["cancel_at_period_end"] = p["cancel_at_period_end"] == "true"
            return 200, sub
        if method == "DELETE" and (m := re.fullmatch(r"/v1/subscriptions/([^/]+)", path)):
            sub = self.subscriptions[m[1]]
            sub["status"] = "canceled"
            sub["canceled_at"] = self.now
            return 200, sub
        if method == "POST" and (m := re.fullmatch(r"/v1/subscription_items/([^/]+)", path)):
            for sub in self.subscriptions.values():
                for item in sub["items"]["data"]:
                    if item["id"] == m[1]:
                        item["quantity"] = int(p["quantity"])
                        return 200, item
            return self._missing(m[1])
        if method == "GET" and (m := re.fullmatch(r"/v1/invoices/([^/]+)", path)):
            return self._found(self.invoices, m[1])
        if method == "POST" and path == "/v1/billing_portal/sessions":
            bps = self._id("bps")
            return 200, {
                "id": bps,
                "object": "billing_portal.session",
                "customer": p["customer"],
                "return_url": p["return_url"],
                "url": f"https://billing.stripe.com/p/session/test_{bps}",
            }
        return 404, {"error": {"type": "invalid_request_error", "message": f"Unrecognized request URL ({path})"}}

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}"

    @staticmethod
    def _public(obj: dict) -> dict:
        return {k: v for k, v in obj.items() if not k.startswith("_")}

    def _found(self, table: dict, key: str, view=lambda o: o):
        return (200, view(table[key])) if key in table else self._missing(key)

    @staticmethod
    def _missing(key: str):
        return 404, {
            "error": {
                "type": "invalid_request_error",
                "code": "resource_missing",
                "message": f"No such object: '{key}'",
            }
        }

    # --- Stripe's own side: what happens outside our app ----------------------------------------

    def checkout_complete(self, session_id: str) -> dict:
        """The customer pays on Stripe's page: a subscription is created, the session completes."""
        session = self.sessions[session_id]
        sub_id = self._id("sub")
        self.subscriptions[sub_id] = {
            "id": sub_id,
            "object": "subscription",
            "customer": session["customer"],
            "status": "active",
            "cancel_at_period_end": False,
            "canceled_at": None,
            "created": self.now,
            "livemode": False,
            "metadata": session["_subscription_metadata"],
            "items": {
                "object": "list",
                "has_more": False,
                "url": f"/v1/subscription_items?subscription={sub_id}",
                "data": [
                    {
                        "id": self._id("si"),
                        "object": "subscription_item",
                        "subscription": sub_id,
                        "quantity": session["_quantity"],
                        "current_period_start": self.now,
                        "current_period_end": self.now + PERIOD,
                        "price": {
                            "id": self.price_id,
                            "object": "price",
                            "currency": self.currency,
                            "unit_amount": self.unit_amount,
                            "type": "recurring",
                            "recurring": {"interval": "month", "interval_count": 1, "usage_type": "licensed"},
                        },
                    }
                ],
            },
        }
        session.update(status="complete", payment_status="paid", subscription=sub_id)
        return self._public(session)

    def invoice_create(self, sub_id: str, *, status: str) -> dict:
        sub = self.subscriptions[sub_id]
        quantity = sub["items"]["data"][0]["quantity"]
        amount = quantity * self.unit_amount
        inv_id = self._id("in")
        self.invoices[inv_id] = {
            "id": inv_id,
            "object": "invoice",
            "customer": sub["customer"],
            "status": status,
            "number": f"FAKE-{inv_id[-4:]}",
            "currency": self.currency,
            "amount_due": amount,
            "amount_paid": amount if status == "paid" else 0,
            "amount_remaining": 0 if status == "paid" else amount,
            "created": self.now,
            "period_start": self.now,
            "period_end": self.now + PERIOD,
            "hosted_invoice_url": f"https://invoice.stripe.com/i/acct_test/{inv_id}",
            "invoice_pdf": f"https://pay.stripe.com/invoice/acct_test/{inv_id}/pdf",
            "billing_reason": "subscription_cycle",
            "parent": {
                "type": "subscription_details",
                "quote_details": None,
                "subscription_details": {"subscription": sub_id, "metadata": sub["metadata"]},
            },
            "lines": {
                "object": "list",
                "has_more": False,
                "data": [{"id": self._id("il"), "object": "line_item", "amount": amount, "quantity": quantity}],
            },
        }
        return self.invoices[inv_id]

    def requests_to(self, method: str, path_prefix: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]


def sign(payload: str, secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header, computed exactly as Stripe does."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


_event_ids = itertools.count(1)


def event(kind: str, obj: dict, *, event_id: str | None = None, created: int | None = None) -> str:
    return json.dumps(
        {
            "id": event_id or f"evt_test_{next(_event_ids):06d}",
            "object": "event",
            "api_version": "2026-10-28.endive",
            "created": created or int(time.time()),
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": kind,
            "data": {"object": obj},
        }
    )
