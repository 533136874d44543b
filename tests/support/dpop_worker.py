"""A separate OS process (a spawn child, like another pod) that validates one DPoP presentation against Redis."""

from __future__ import annotations

from typing import Any


def present(cache: dict[str, Any], jwtguard: dict[str, Any], raw: str, presentation: dict[str, Any]) -> tuple[int, str]:
    """This process's id, and ``"ok"`` when the token and its proof are accepted here, else the refusal's code."""
    import os

    from django.conf import settings

    from tests.support.workers import _configure

    if not settings.configured:
        _configure(cache, jwtguard)
    from jwtguard.dpop import Presentation
    from jwtguard.exceptions import TokenError
    from jwtguard.validation import get_validator

    try:
        get_validator().validate(raw, Presentation(**presentation))
    except TokenError as exc:
        return os.getpid(), exc.code
    return os.getpid(), "ok"
