"""DRF's exception handler, plus the error's stable ``code`` (``token_expired``, ``invalid_audience``...)."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, APIException) and isinstance(response.data, dict):
        codes = exc.get_codes()
        if isinstance(codes, str):
            response.data["code"] = codes
    return response
