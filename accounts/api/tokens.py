"""Personal access tokens: issue with e-mail + password (+ a 2FA code where 2FA is on), list, revoke."""

from __future__ import annotations

from allauth.account.adapter import get_adapter
from django.core.exceptions import ValidationError
from django.http import Http404
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view, authentication_classes, permission_classes, throttle_classes
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import ApiToken
from accounts.second_factor import second_factor_verify, user_has_second_factor
from accounts.services import token_create, token_revoke
from cloudstorage.api_fields import StrictCharField
from cloudstorage.errors import ServiceError
from cloudstorage.throttling import TokenIssueThrottle


class TokenIssueIn(serializers.Serializer):
    email = serializers.EmailField()
    password = StrictCharField(trim_whitespace=False)
    code = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=64,
        help_text="Required for an account with two-factor authentication: the current code of its "
        "authenticator app, or one of its unused recovery codes (each works once). Ignored otherwise.",
    )
    name = StrictCharField(required=False, allow_blank=True, max_length=100)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class TokenOut(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at"]


class TokenIssuedOut(TokenOut):
    token = serializers.CharField(help_text="Shown once; store it now.")

    class Meta(TokenOut.Meta):
        fields = [*TokenOut.Meta.fields, "token"]


@extend_schema(
    request=TokenIssueIn,
    responses={201: TokenIssuedOut},
    examples=[
        OpenApiExample(
            "issue", value={"email": "ada@example.com", "password": "…", "name": "laptop"}, request_only=True
        ),
        OpenApiExample(
            "issue with two-factor authentication",
            value={"email": "ada@example.com", "password": "…", "code": "123456", "name": "laptop"},
            request_only=True,
        ),
    ],
    summary="Issue a personal access token (shown once)",
    description="For an account with two-factor authentication the password alone is not enough: "
    "send `code` too (the authenticator app's current code or an unused recovery code). Without it the "
    "answer is 401 `second_factor_required`; a wrong or used code is 401 `invalid_code`; after 5 wrong "
    "passwords or codes in 5 minutes the account is locked for this endpoint and the login form (429).",
)
@api_view(["POST"])
@authentication_classes([])
@permission_classes([AllowAny])
@throttle_classes([TokenIssueThrottle])
def token_issue(request: Request) -> Response:
    data = TokenIssueIn(data=request.data)
    data.is_valid(raise_exception=True)
    # Through allauth's adapter, so the login form's per-account lock (ACCOUNT_RATE_LIMITS
    # "login_failed") counts these attempts too and refuses a locked account whatever its address.
    try:
        user = get_adapter(request._request).authenticate(
            request._request, email=data.validated_data["email"], password=data.validated_data["password"]
        )
    except ValidationError:
        raise ServiceError(
            code="throttled",
            message="Too many failed attempts for this account. Try again later or reset the password.",
            status_code=429,
        ) from None
    if user is None:
        # The same answer for an unknown e-mail and a wrong password.
        raise ServiceError(code="invalid_credentials", message="Wrong e-mail or password.", status_code=401)
    from allauth.account.models import EmailAddress

    if not EmailAddress.objects.filter(user=user, verified=True).exists() and not user.is_staff:
        raise ServiceError(code="email_unverified", message="Verify your e-mail address first.", status_code=403)
    if user_has_second_factor(user=user):
        code = data.validated_data.get("code", "").strip()
        if not code:
            raise ServiceError(
                code="second_factor_required",
                message="This account uses two-factor authentication: send `code` as well "
                "(from the authenticator app, or a recovery code).",
                status_code=401,
            )
        second_factor_verify(request=request._request, user=user, code=code)
    issued = token_create(
        user=user, name=data.validated_data.get("name", ""), expires_at=data.validated_data.get("expires_at")
    )
    body = TokenOut(issued.token).data | {"token": issued.raw}
    return Response(body, status=status.HTTP_201_CREATED)


@extend_schema(responses={200: TokenOut(many=True)}, summary="The caller's tokens (never their values)")
@api_view(["GET"])
def token_list(request: Request) -> Response:
    tokens = ApiToken.objects.filter(user=request.user, revoked_at__isnull=True)
    return Response(TokenOut(tokens, many=True).data)


@extend_schema(request=None, responses={204: None}, summary="Revoke a token (404 once it is revoked)")
@api_view(["DELETE"])
def token_delete(request: Request, token_id) -> Response:
    token = ApiToken.objects.filter(user=request.user, pk=token_id).first()
    if token is None or not token_revoke(token=token):
        raise Http404
    return Response(status=status.HTTP_204_NO_CONTENT)
