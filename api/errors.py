"""One error body for every failure:
`{"error": {"code": "not_found", "message": "...", "details": {...}}}`."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

log = logging.getLogger("api")


class ApiError(exceptions.APIException):
    """An error with our own code, e.g. a conflict the caller can fix."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status_code: int | None = None,
                 details: Any = None) -> None:
        super().__init__(message, code or self.default_code)
        if status_code:
            self.status_code = status_code
        self.details = details


def error_body(code: str, message: str, details: Any = None) -> dict:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return {"error": body}


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        # A fault of ours: logged with its traceback, answered in the same shape (no details).
        request = context.get("request")
        log.error("API error on %s %s", getattr(request, "method", "?"), getattr(request, "path", "?"),
                  exc_info=exc)
        set_rollback()
        return Response(error_body("server_error", "Internal error; it has been logged."),
                        status=status.HTTP_500_INTERNAL_SERVER_ERROR)
    if isinstance(exc, exceptions.ValidationError):
        code, message, details = "invalid", "The request is not valid.", exc.detail
    elif isinstance(exc, ApiError):
        code, message, details = exc.default_code if not exc.get_codes() else str(exc.get_codes()), str(
            exc.detail), exc.details
    else:
        codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        code = codes if isinstance(codes, str) else "error"
        message = str(getattr(exc, "detail", exc))
        details = None
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            details = {"retry_after_seconds": int(exc.wait) + 1}
    response.data = error_body(code, message, details)
    return response


def not_found(request, *args, **kwargs):
    """Unknown URLs under /api/v1/ answer in the API's shape, not with an HTML page."""
    from django.http import JsonResponse

    return JsonResponse(error_body("not_found", "No such endpoint."), status=404)
