"""Content-Security-Policy: one policy for the site's own pages, one for users' bytes.

Django 5.2 has no CSP of its own (6.0 will), and the site needs only a fixed header, so this is a
few lines rather than a dependency. Every page's script and style come from our own ``/static``
(vendored, no CDN, no inline ``<script>``, ``<style>`` or ``style=""``), so the policy allows 'self'
and nothing inline: an injected script or handler in a page does not run.

Users' files are a different matter: whatever a download or a public link serves is never a page
of this site, so it gets :data:`USER_CONTENT_POLICY` (an opaque origin with nothing allowed) from the
view that sends it, and this middleware leaves a response that already has a policy alone.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

# What downloads, previews of untrusted types and public-link files send (files/api/content.py,
# files/public_views.py): rendered at all, the bytes run without scripts in an origin of their own.
USER_CONTENT_POLICY = "sandbox; default-src 'none'"

PAGE_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        # Thumbnails and previews the scripts build from fetched bytes; Swagger UI's inline icons.
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "frame-src 'self' blob:",  # the dashboard's preview pane; a vault's PDF decrypted in the page
        "object-src 'none'",
        "base-uri 'none'",
        # form-action is left out: the plan form's answer redirects to Stripe Checkout, and browsers
        # apply form-action to the redirect as well.
    ]
)


class ContentSecurityPolicyMiddleware:
    """Adds :data:`PAGE_POLICY` to HTML responses that carry no policy of their own.

    Listed high in ``MIDDLEWARE`` so it sees the final response, including X-Frame-Options: a page
    that may be framed by the site itself (``xframe_options_sameorigin``) gets ``frame-ancestors
    'self'``, every other page ``'none'`` (frame-ancestors overrides X-Frame-Options where both are
    understood, so it must say the same)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        content_type = response.get("Content-Type", "")
        if "Content-Security-Policy" in response or not content_type.startswith("text/html"):
            return response
        frame_options = response.get("X-Frame-Options", "DENY").upper()
        ancestors = "'self'" if frame_options == "SAMEORIGIN" else "'none'"
        response["Content-Security-Policy"] = f"{PAGE_POLICY}; frame-ancestors {ancestors}"
        return response
