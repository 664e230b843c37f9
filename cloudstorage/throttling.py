"""DRF throttles keyed on cloudstorage.client_address (DRF's own get_ident trusts any
X-Forwarded-For a client sends unless NUM_PROXIES is set; one rule for every limit instead)."""

from __future__ import annotations

import math

from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle

from cloudstorage.client_address import client_address


class ClientAddressMixin:
    def get_ident(self, request) -> str:
        return client_address(request._request if hasattr(request, "_request") else request)


class CellRateMixin:
    """The general-purpose limits run on every API request, so they keep one number per caller
    instead of DRF's list of every request's time in the window (up to 2,000 floats at the default
    user rate, unpickled and pickled again on each request; more at the benches' rates).

    The number is GCRA's "theoretical arrival time": each allowed request moves it ``period / N``
    ahead (starting from now when it lies in the past), and a request that would move it more than
    one period ahead is refused. So a burst of N passes, as with DRF, and then one request per
    ``period / N``: the long-run rate is the same N per period, though a caller that waited may
    fit up to 2N in the first period. The brute-force limit (TokenIssueThrottle) keeps DRF's
    stricter window. Get and set are two cache calls, not atomic, like DRF's: concurrent requests
    of one caller may slip a few past the limit.
    """

    cache_format = "throttle_gcra_%(scope)s_%(ident)s"

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        now = self.timer()
        interval = self.duration / self.num_requests
        arrival = max(self.cache.get(self.key) or now, now) + interval
        if arrival - now > self.duration * (1 + 1e-9):  # N intervals may round past one period
            self.wait_seconds = arrival - now - self.duration
            return False
        self.cache.set(self.key, arrival, math.ceil(arrival - now) + 1)
        return True

    def wait(self) -> float:
        return getattr(self, "wait_seconds", None)


class AnonThrottle(ClientAddressMixin, CellRateMixin, AnonRateThrottle):
    pass


class UserThrottle(ClientAddressMixin, CellRateMixin, UserRateThrottle):
    pass


class TokenIssueThrottle(ClientAddressMixin, SimpleRateThrottle):
    """Token issue attempts per client address; the per-account lock is allauth's (see tokens)."""

    scope = "token_issue"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
