"""The one notion of "the client's address" for every rate limit (DRF throttles, link passwords,
allauth's login limits).

X-Forwarded-For is written by whoever sends the request, so it counts only behind proxies we run:
``TRUSTED_PROXY_COUNT`` (setting ``ALLAUTH_TRUSTED_PROXY_COUNT``, 0 by default) says how many, and
the address is the one the outermost trusted proxy saw. With none, it is the TCP peer, so a client
cannot choose the address its failures are counted against. allauth implements exactly this rule,
so we ask it rather than keep a second copy.
"""

from __future__ import annotations

from allauth.core.internal.httpkit import clean_client_ip, get_client_ip
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    try:
        address = get_client_ip(request)
    except ImproperlyConfigured:
        # Fewer X-Forwarded-For entries than trusted proxies: the request did not come through
        # all of them, so the header proves nothing; count it against the TCP peer.
        address = clean_client_ip(request.META.get("REMOTE_ADDR") or "")
    return address or "unknown"
