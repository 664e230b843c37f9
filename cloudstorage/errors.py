"""The error a service raises when a business rule refuses a request.

Plain Python, so services never import the web layer; the API's exception handler and the
browser views turn it into a response.
"""

from __future__ import annotations


class ServiceError(Exception):
    def __init__(self, *, code: str, message: str, status_code: int = 400, details: dict | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status_code = status_code
        self.details = details or {}
