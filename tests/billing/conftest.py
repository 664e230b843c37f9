from __future__ import annotations

import pytest
import stripe
from celery.signals import task_prerun

from tests.billing.fake_stripe import FakeStripe, event, sign

WEBHOOK_SECRET = "whsec_test_secret"
PRICE_ID = "price_gb_month"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Billing tests create many users; real PBKDF2 rounds would make them slow, not stronger."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def fake_stripe(settings, monkeypatch) -> FakeStripe:
    """Stripe mode, with the stripe SDK talking to FakeStripe instead of the network."""
    settings.STRIPE_SECRET_KEY = "sk_test_fake"
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_PRICE_ID = PRICE_ID
    settings.BILLING_PRICE_PER_GB_CENTS = 20
    settings.BILLING_CURRENCY = "usd"
    fake = FakeStripe(price_id=PRICE_ID, unit_amount=20)
    monkeypatch.setattr(stripe, "default_http_client", fake)
    return fake


@pytest.fixture
def local_mode(settings):
    settings.STRIPE_SECRET_KEY = ""
    settings.BILLING_PRICE_PER_GB_CENTS = 20
    settings.BILLING_CURRENCY = "usd"


@pytest.fixture
def relocations():
    """Every workspace_relocate task that really ran (tests run Celery eagerly)."""
    ran: list[dict] = []

    def record(sender=None, task=None, kwargs=None, **_):
        if task is not None and task.name == "disks.tasks.workspace_relocate":
            ran.append(dict(kwargs or {}))

    task_prerun.connect(record, weak=False)
    yield ran
    task_prerun.disconnect(record)


@pytest.fixture
def webhook(client):
    """POST a signed Stripe event to the webhook, as Stripe does."""

    def send(kind: str, obj: dict, *, event_id=None, secret=WEBHOOK_SECRET, timestamp=None, signature=None):
        payload = event(kind, obj, event_id=event_id)
        header = signature if signature is not None else sign(payload, secret, timestamp)
        return client.post(
            "/billing/stripe/webhook/", data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
        )

    return send
