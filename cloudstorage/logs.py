"""A request id on every log line of a request, and JSON lines when ``LOG_FORMAT=json``.

The id is the proxy's ``X-Request-ID`` when it sent a sane one (nginx's ``$request_id``, so the
proxy's access log and ours share it), else a new one; it goes back in the response's
``X-Request-ID``. Lines logged outside a request (workers, beat, start-up) carry ``-``.
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar

from django.http import HttpRequest

_request_id: ContextVar[str] = ContextVar("request_id", default="-")
_SANE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        given = request.headers.get("X-Request-ID", "")
        request_id = given if _SANE.match(given) else uuid.uuid4().hex
        token = _request_id.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            _request_id.reset(token)
        response["X-Request-ID"] = request_id
        return response


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record (a filter on the handler, so third-party loggers get it too)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True
