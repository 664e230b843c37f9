"""Stripe's webhook endpoint: signature-verified, each event processed exactly once."""

from __future__ import annotations

import logging

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing.services import stripe_webhook_receive
from cloudstorage.api import error_body
from cloudstorage.errors import ServiceError

logger = logging.getLogger(__name__)


@csrf_exempt  # Stripe cannot send a CSRF token; the signature authenticates the request instead.
@require_POST
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    try:
        record = stripe_webhook_receive(payload=request.body, signature=request.headers.get("Stripe-Signature", ""))
    except ServiceError as exc:
        # 400 for a bad signature; a 5xx from Stripe's side makes Stripe retry later, which is
        # what we want when it was unreachable while we re-read the object.
        return JsonResponse(error_body(exc.code, exc.message, exc.details), status=exc.status_code)
    if record is None:
        return JsonResponse({"received": True, "duplicate": True})
    return JsonResponse({"received": True, "outcome": record.outcome})
