"""The second factor outside allauth's own pages: the token endpoint and the admin's gate.

allauth.mfa owns enrolment and the login step; this module only asks it whether a user has 2FA and
checks a code with allauth's own form, so its rate limit (``login_failed``, per account), its
one-use rules (a TOTP code once per window, each recovery code once) and its signals all apply.
"""

from __future__ import annotations

from allauth.core import context
from allauth.mfa.base.forms import BaseAuthenticateForm
from allauth.mfa.models import Authenticator
from allauth.mfa.utils import is_mfa_enabled
from django.http import HttpRequest

from accounts.models import User
from cloudstorage.errors import ServiceError


def user_has_second_factor(*, user: User) -> bool:
    """True if the user can be asked for a code at login (TOTP; WebAuthn if it is ever turned on).
    Recovery codes alone do not count: allauth removes them with the last real authenticator."""
    return is_mfa_enabled(user, types=[Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN])


def second_factor_verify(*, request: HttpRequest, user: User, code: str) -> None:
    """Accept a TOTP or recovery code of ``user``, or raise ServiceError (401 wrong, 429 locked)."""
    with context.request_context(request):
        form = BaseAuthenticateForm(data={"code": code}, user=user)
        if form.is_valid():
            form.authenticator.record_usage()
            return
    error_codes = {error.code for error in form.errors.as_data().get("code", [])}
    if "too_many_login_attempts" in error_codes:
        raise ServiceError(
            code="throttled",
            message="Too many wrong codes for this account. Try again later.",
            status_code=429,
        )
    raise ServiceError(code="invalid_code", message="Wrong or already used code.", status_code=401)
