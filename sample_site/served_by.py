"""``X-Served-By: <pid>`` on every answer, so the demo and the tests can see the workers share the load."""

from __future__ import annotations

import os
from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase


def served_by(get_response: Callable[[HttpRequest], HttpResponseBase]) -> Callable[[HttpRequest], HttpResponseBase]:
    def middleware(request: HttpRequest) -> HttpResponseBase:
        response = get_response(request)
        response["X-Served-By"] = str(os.getpid())
        return response

    return middleware
