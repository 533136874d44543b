"""JSON as jwtguard reads it from outside (tokens, key sets, discovery documents): standard JSON only."""

from __future__ import annotations

from typing import Any


def reject_constant(name: str) -> Any:
    """``parse_constant`` for ``json``: ``NaN``, ``Infinity`` and ``-Infinity`` are Python's, not JSON."""
    raise ValueError(f"{name} is not JSON")
