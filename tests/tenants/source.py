"""The ``ISSUER_SOURCE`` of docs/tenants.md, as the docs give it, plus what the tests observe of its calls."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from tests.tenants.models import Tenant

#: Every call: (iss, the thread's name, whether an event loop was running in that thread).
calls: list[tuple[str, str, bool]] = []


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def issuer_source(iss: str) -> dict[str, Any] | None:
    calls.append((iss, threading.current_thread().name, _loop_running()))
    tenant = Tenant.objects.filter(issuer=iss, active=True).first()
    if tenant is None:
        return None
    settings: dict[str, Any] = {"AUDIENCE": tenant.audience, "USER_ID_NAMESPACE": True}
    if tenant.jwks_url:
        settings["JWKS_URL"] = tenant.jwks_url
    return settings


def failing_source(iss: str) -> dict[str, Any] | None:
    calls.append((iss, threading.current_thread().name, _loop_running()))
    raise ConnectionError("the tenants database is down")


def bad_answer_source(iss: str) -> dict[str, Any] | None:
    calls.append((iss, threading.current_thread().name, _loop_running()))
    return {"AUDIENCE": "x", "ALGORITHMS": ["HS256"]}
