"""DRF throttles keyed on cloudstorage.client_address (DRF's own get_ident trusts any
X-Forwarded-For a client sends unless NUM_PROXIES is set; one rule for every limit instead)."""

from __future__ import annotations

from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle

from cloudstorage.client_address import client_address


class ClientAddressMixin:
    def get_ident(self, request) -> str:
        return client_address(request._request if hasattr(request, "_request") else request)


class AnonThrottle(ClientAddressMixin, AnonRateThrottle):
    pass


class UserThrottle(ClientAddressMixin, UserRateThrottle):
    pass


class TokenIssueThrottle(ClientAddressMixin, SimpleRateThrottle):
    """Token issue attempts per client address; the per-account lock is allauth's (see tokens)."""

    scope = "token_issue"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
