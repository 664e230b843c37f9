"""The one JSON error shape of the API: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from cloudstorage.errors import ServiceError


def error_body(code: str, message: str, details: dict | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _first_message(detail: Any) -> str:
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    if isinstance(detail, dict) and detail:
        key, value = next(iter(detail.items()))
        inner = _first_message(value)
        return inner if key == "non_field_errors" else f"{key}: {inner}"
    return str(detail)


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, ServiceError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status_code)
    if isinstance(exc, RequestDataTooBig):
        # Raised when a JSON or form body is read whole (DATA_UPLOAD_MAX_MEMORY_SIZE); left to Django
        # it was an HTML "Bad Request (400)" page.
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return Response(
            error_body("body_too_large", f"A JSON or form body has at most {limit} bytes.", {"limit": limit}),
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = error_body("invalid", _first_message(exc.detail), {"fields": exc.detail})
    elif isinstance(exc, exceptions.Throttled):
        response.data = error_body("throttled", str(exc.detail), {"retry_after": exc.wait})
    elif isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else "error"
        response.data = error_body(code, _first_message(exc.detail))
    return response


def json_404(request, exception=None) -> JsonResponse:  # noqa: ARG001
    return JsonResponse(error_body("not_found", "Not found."), status=status.HTTP_404_NOT_FOUND)


def json_500(request) -> JsonResponse:  # noqa: ARG001
    return JsonResponse(error_body("server_error", "Internal server error."), status=500)


def cursor_page(name: str, serializer_class):
    """The OpenAPI shape of a cursor-paginated list of ``serializer_class`` items, for function views
    that paginate by hand: ``{"next": url|null, "previous": url|null, "results": [...]}``."""
    from drf_spectacular.utils import inline_serializer
    from rest_framework import serializers

    return inline_serializer(
        name=name,
        fields={
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": serializer_class(many=True),
        },
    )
