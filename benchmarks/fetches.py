"""JWKS fetches at the issuer for W processes: R requests each, a cold start, a flood of unknown kids.

W worker processes (spawned, like gunicorn workers) each hold one contender with the state of a fresh
process. jwtguard's workers share the real Redis at 127.0.0.1:6379 under a key prefix of this run; every
scenario uses its own JWKS URL (a query string the issuer ignores), so each one starts cold.
"""

from __future__ import annotations

import uuid
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Barrier
from typing import Any

from benchmarks.common import (
    RemoteIssuer,
    configure_django,
    redis_cache,
    simple_jwt_settings,
    spawn_workers,
    stop_workers,
)

CONTENDERS = {
    "jwtguard": "jwtguard (shared Redis)",
    "pyjwkclient": "PyJWKClient singleton",
    "simplejwt": "simplejwt with JWK_URL",
    "article": "article: PyJWKClient per request",
}
PHASE_TIMEOUT = 120


def _worker(conn: Connection, barrier: Barrier, django_settings: dict[str, Any]) -> None:
    configure_django(**django_settings)
    from benchmarks.contenders import fresh_validator

    conn.send("ready")
    while True:
        message = conn.recv()
        if message is None:
            return
        name, jwks_url, phases = message
        validate = fresh_validator(name, jwks_url)
        for tokens in phases:
            barrier.wait(timeout=PHASE_TIMEOUT)
            refused = 0
            for raw in tokens:
                try:
                    validate(raw)
                except Exception:
                    refused += 1
            conn.send(refused)
            if conn.recv() is None:  # "next" or "done": the parent reads the issuer's count in between
                return


class Workers:
    """W spawned worker processes that run one scenario at a time, phase by phase, in step."""

    def __init__(self, issuer: RemoteIssuer, count: int) -> None:
        django_settings = {
            "jwtguard": issuer.jwtguard_settings(),
            "simple_jwt": simple_jwt_settings(issuer),
            "caches": {"default": redis_cache()},
            **issuer.bench_settings(),
        }
        self.barrier, self.pipes, self.processes, ready = spawn_workers(count, _worker, django_settings)
        if ready != ["ready"] * count:
            raise RuntimeError("a benchmark worker did not start")

    def run(self, issuer: RemoteIssuer, name: str, phases: list[list[str]]) -> list[tuple[int, int]]:
        """(fetches, refused tokens) per phase, summed over the workers."""
        jwks_url = f"{issuer.jwks_url}?run={uuid.uuid4().hex[:12]}"
        before = issuer.jwks_requests()
        for pipe in self.pipes:
            pipe.send((name, jwks_url, phases))
        results = []
        for index in range(len(phases)):
            refused = 0
            for pipe in self.pipes:
                if not pipe.poll(PHASE_TIMEOUT):
                    raise RuntimeError(f"a worker took over {PHASE_TIMEOUT}s on {name}")
                refused += pipe.recv()
            after = issuer.jwks_requests()
            results.append((after - before, refused))
            before = after  # every worker now waits for "next": nothing fetches until it is sent
            for pipe in self.pipes:
                pipe.send("next" if index + 1 < len(phases) else "done")
        return results

    def close(self) -> None:
        stop_workers(self.pipes, self.processes)


def run(issuer: RemoteIssuer, *, workers: int, requests: int, flood: int) -> dict[str, Any]:
    pool = Workers(issuer, workers)
    rows = []
    try:
        valid = [issuer.mint("RS256", sub=f"user-{n}") for n in range(requests)]
        unknown = [issuer.mint_unknown_kid() for _ in range(flood)]
        for name, label in CONTENDERS.items():
            ((steady, steady_refused),) = pool.run(issuer, name, [valid])
            ((cold, cold_refused),) = pool.run(issuer, name, [valid[:1]])
            _, (flooded, _) = pool.run(issuer, name, [valid[:1], unknown])
            rows.append(
                {
                    "contender": label,
                    "steady": steady,
                    "cold_start": cold,
                    "unknown_kid_flood": flooded,
                    "refused_valid_tokens": steady_refused + cold_refused,
                }
            )
    finally:
        pool.close()
    return {"workers": workers, "requests_per_worker": requests, "unknown_kids_per_worker": flood, "rows": rows}
