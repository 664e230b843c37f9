"""The operators' admin: reached only through the site's rate-limited login, and only with 2FA.

Django's own admin login form calls ``authenticate`` directly, so allauth's per-account and per-address
limits (ACCOUNT_RATE_LIMITS "login_failed") never counted guesses at an operator's password there.
Here the admin has no login form of its own: ``/admin/login/`` sends the visitor to allauth's login
(which also asks for the second factor) and back. A staff user without 2FA is not let in; they are
sent to enrol first.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from accounts.second_factor import user_has_second_factor


class OperatorAdminSite(admin.AdminSite):
    def has_permission(self, request: HttpRequest) -> bool:
        return super().has_permission(request) and user_has_second_factor(user=request.user)

    def login(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        # Never authenticates anyone itself, whatever the method: a POST of credentials here is
        # answered with the same redirect as a GET.
        next_url = request.GET.get(REDIRECT_FIELD_NAME, "")
        if not url_has_allowed_host_and_scheme(
            next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            next_url = reverse("admin:index", current_app=self.name)
        user = request.user
        if not user.is_authenticated:
            return HttpResponseRedirect(f"{reverse('account_login')}?{urlencode({REDIRECT_FIELD_NAME: next_url})}")
        if not (user.is_active and user.is_staff):
            # Logged in but no operator: a redirect to the login would come straight back here.
            raise PermissionDenied("This account may not use the admin.")
        if not user_has_second_factor(user=user):
            messages.warning(
                request,
                "Operators must use two-factor authentication. Set up an authenticator app, then open the admin again.",
            )
            return HttpResponseRedirect(reverse("mfa_activate_totp"))
        return HttpResponseRedirect(next_url)
