"""A read timeout on the request body (finding H: slow request bodies hold threads).

gunicorn's gthread worker hands a connection to a thread once its first bytes arrive and the thread
then reads the body with a blocking socket and no timeout: ten clients that declare a 100 KB body
and send part of it occupy ten threads until they give up, and the next request (``/healthz``
included) waits. This WSGI middleware puts ``REQUEST_BODY_TIMEOUT`` seconds on every read of the
body from the socket gunicorn exposes (``environ["gunicorn.socket"]``): a client that sends
nothing for that long gets ``408 Request Timeout`` and its thread is free again. The timeout is
lifted before the response is written, so slow downloads are not affected.

It limits stalls, not slowness (a byte every few seconds still holds a thread): in production
nginx in front buffers request bodies (``proxy_request_buffering on``, its default) and hands the
web nodes only complete requests; this is the line of defence for the embedded default.
"""

from __future__ import annotations

import logging
import socket

logger = logging.getLogger(__name__)

TIMEOUT_BODY = b"The request body was not received in time.\n"


class BodyReadTimedOut(TimeoutError):
    """The client sent no part of the request body for REQUEST_BODY_TIMEOUT seconds."""


class _TimedInput:
    def __init__(self, stream, state: dict):
        self._stream = stream
        self._state = state

    def _guard(self, method, *args):
        try:
            return method(*args)
        except TimeoutError as exc:
            self._state["timed_out"] = True
            raise BodyReadTimedOut("the client stopped sending the request body") from exc

    def read(self, *args):
        return self._guard(self._stream.read, *args)

    def readline(self, *args):
        return self._guard(self._stream.readline, *args)

    def readlines(self, *args):
        return self._guard(self._stream.readlines, *args)

    def __iter__(self):
        while line := self.readline():
            yield line


def _has_body(environ) -> bool:
    if environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked":
        return True
    try:
        return int(environ.get("CONTENT_LENGTH") or 0) > 0
    except ValueError:
        return False


class BodyReadTimeout:
    """Wrap a WSGI application so that a stalled request body fails after ``timeout`` seconds."""

    def __init__(self, app, *, timeout: float):
        self.app = app
        self.timeout = timeout

    def __call__(self, environ, start_response):
        sock = environ.get("gunicorn.socket")
        if sock is None or self.timeout <= 0 or not _has_body(environ):
            return self.app(environ, start_response)
        state = {"timed_out": False}
        environ["wsgi.input"] = _TimedInput(environ["wsgi.input"], state)
        started: list = []

        def deferred_start_response(status, headers, exc_info=None):
            started[:] = [status, headers, exc_info]
            return lambda data: None  # Django never uses write(); nothing is sent before we decide

        sock.settimeout(self.timeout)
        try:
            result = self.app(environ, deferred_start_response)
        finally:
            sock.settimeout(None)  # the response is written without our limit
        if state["timed_out"]:
            if hasattr(result, "close"):
                result.close()
            # gunicorn would otherwise try to drain the rest of the body before keeping the
            # connection alive, holding the thread a few seconds more; with reading shut the drain
            # ends at once and the connection is closed after the 408 is sent.
            try:
                sock.shutdown(socket.SHUT_RD)
            except OSError:
                pass
            logger.warning(
                "request body of %s %s stalled for %ss: 408",
                environ.get("REQUEST_METHOD"),
                environ.get("PATH_INFO"),
                self.timeout,
            )
            start_response(
                "408 Request Timeout",
                [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(TIMEOUT_BODY)))],
            )
            return [TIMEOUT_BODY]
        start_response(*started)
        return result


class DropBodyTimeouts:
    """A logging filter for ``django.request``: a stalled body is the client's doing, not a server
    error, so Django's "Internal Server Error" record for it is dropped (the middleware logs one
    warning line instead)."""

    def filter(self, record) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        while exc is not None:
            if isinstance(exc, BodyReadTimedOut):
                return False
            exc = exc.__cause__ or exc.__context__
        return True
