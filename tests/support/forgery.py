"""A process of a deployment under a flood of forged and malformed tokens (run with multiprocessing spawn).

Kept apart from the test modules so that a spawned child imports nothing before it has set Django up.
"""

from __future__ import annotations

import json
import time
from typing import Any

from tests.support.tokens import b64


def forged_tokens(worker: int, count: int, *, issuer: str, audience: str, jku: str, kid: str) -> list[str]:
    """``count`` tokens cycling through six kinds: two under forged kids (one with a ``jku``), one forged under
    the real ``kid``, an unsigned one, one with a non-string kid, and base64url junk."""
    from jwt.algorithms import get_default_algorithms

    from jwtguard.testing import generate_key

    forger = generate_key("RS256", kid=f"forged-{worker}")
    rs256 = get_default_algorithms()["RS256"]
    now = int(time.time())
    body = b64(json.dumps({"iss": issuer, "aud": audience, "sub": "mallory", "iat": now, "exp": now + 300}).encode())

    def signed(header: dict[str, Any]) -> str:
        signing_input = f"{b64(json.dumps(header).encode())}.{body}"
        return f"{signing_input}.{b64(rs256.sign(signing_input.encode(), forger.private_key))}"

    tokens: list[str] = []
    for n in range(count):
        kind = n % 6
        if kind == 0:
            tokens.append(signed({"alg": "RS256", "kid": f"forged-{worker}-{n}"}))
        elif kind == 1:
            tokens.append(signed({"alg": "RS256", "kid": f"forged-{worker}-{n}", "jku": jku}))
        elif kind == 2:
            tokens.append(signed({"alg": "RS256", "kid": kid}))
        elif kind == 3:
            tokens.append(f"{b64(json.dumps({'alg': 'none', 'kid': kid}).encode())}.{body}.")
        elif kind == 4:
            tokens.append(f"{b64(json.dumps({'alg': 'RS256', 'kid': n}).encode())}.{body}.c2ln")
        else:
            tokens.append("A" * (n % 5) + "." * (n % 4) + "=" * (n % 3))
    return tokens


def run_worker(config: dict[str, Any], worker: int, count: int) -> dict[str, int]:
    """Set Django up in this (spawned) process, send ``count`` forgeries through the DRF class, count outcomes."""
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django.test import override_settings

    from tests.support.doors import drf

    counts: dict[str, int] = {}
    with override_settings(JWTGUARD=config["jwtguard"], CACHES=config["caches"]):
        tokens = forged_tokens(
            worker,
            count,
            issuer=config["jwtguard"]["ISSUER"],
            audience=config["jwtguard"]["AUDIENCE"],
            jku=config["jku"],
            kid=config["kid"],
        )
        for raw in tokens:
            outcome = drf(f"Bearer {raw}", http=False)
            name = f"{outcome.status}:{outcome.code}"
            counts[name] = counts.get(name, 0) + 1
    return counts
