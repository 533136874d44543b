"""Rotation under fire (issue 18) and a genuine token during a forged-kid flood (issue 14), default settings.

``run_site``: the benchmark site under gunicorn (4 sync workers), 8 client threads, 90 % valid tokens and
10 % forged kids, through four phases of a few seconds: calm; a rotation right after a forged kid spent the
unknown-kid window (the valid tokens switch to the new key the moment it is published); forged kids only; the
issuer answering ``SLOW_ISSUER`` seconds late. Prints refused new-key tokens and for how long, JWKS requests per
minute under the flood, and throughput and p99 with the slow issuer against the calm phase of the same run.

``run_latency``: in one process of its own, a genuine token's latency while forged kids flood and the issuer
is slow, in sync (threads) and async (the event loop and its default executor) modes, beside the fetch time;
the calm baseline (no flood) is measured in the same process.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import multiprocessing
import statistics
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.common import RemoteIssuer, configure_django, redis_cache
from benchmarks.load import gunicorn_site

CLIENTS = 8
FORGED_SHARE = 10  # one request in ten
SLOW_ISSUER = 3.0


@dataclass(frozen=True)
class Answer:
    sent: float  # wall clock
    seconds: float
    status: int
    kind: str  # "valid", "new", "forged"


def _get(url: str, token: str) -> int:
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        connection.request("GET", parts.path, headers={"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        response.read()
        return int(response.status)
    finally:
        connection.close()


def _drive(url: str, pick: Callable[[int], tuple[str, str]], seconds: float) -> list[Answer]:
    """``CLIENTS`` threads sending requests back to back for ``seconds``; ``pick(n)`` -> (kind, token)."""
    answers: list[Answer] = []
    lock = threading.Lock()
    until = time.time() + seconds
    counter = iter(range(10**9))

    def client() -> None:
        while time.time() < until:
            with lock:
                n = next(counter)
            kind, token = pick(n)
            sent, started = time.time(), time.perf_counter()
            status = _get(url, token)
            answer = Answer(sent, time.perf_counter() - started, status, kind)
            with lock:
                answers.append(answer)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 60)
    return answers


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98] if len(values) >= 2 else values[0]


def _phase(answers: list[Answer], seconds: float) -> dict[str, Any]:
    genuine = [a.seconds for a in answers if a.kind != "forged"] or [float("nan")]
    return {
        "rps": round(len(answers) / seconds, 1),
        "valid_p50_ms": round(statistics.median(genuine) * 1000, 1),
        "valid_p99_ms": round(_p99(genuine) * 1000, 1),
        "valid_refused": sum(a.status != 200 for a in answers if a.kind != "forged"),
        "forged_accepted": sum(a.status == 200 for a in answers if a.kind == "forged"),
        "server_errors": sum(a.status >= 500 for a in answers),
    }


def run_site(issuer: RemoteIssuer, *, seconds: float) -> dict[str, Any]:
    """Issue 18's soak scenario, shortened: each phase lasts ``seconds``."""
    config = {
        "jwtguard": issuer.jwtguard_settings(),
        "caches": {"default": redis_cache()},
        # Django logs every 401 as a warning: thousands of lines per phase, and CPU taken from the workers.
        "LOGGING_CONFIG": "logging.config.dictConfig",
        "LOGGING": {"version": 1, "disable_existing_loggers": False, "loggers": {"django.request": {"level": "ERROR"}}},
        **issuer.bench_settings(),
    }
    valid = issuer.mint("RS256", sub="bench-user")
    new = issuer.mint(key=issuer.unpublished, sub="bench-user")
    forged = [issuer.mint_unknown_kid() for _ in range(500)]

    def mix(token: str, kind: str) -> Callable[[int], tuple[str, str]]:
        return lambda n: ("forged", forged[n % len(forged)]) if n % FORGED_SHARE == 0 else (kind, token)

    results: dict[str, Any] = {"seconds_per_phase": seconds, "gunicorn_workers": 4, "clients": CLIENTS}
    with gunicorn_site(config) as (base, _):
        url = base + "jwtguard"
        _drive(url, mix(valid, "valid"), 1.0)  # warm: every worker holds the key set
        results["calm"] = _phase(_drive(url, mix(valid, "valid"), seconds), seconds)

        # The rotation: a forged kid spends the window, then the issuer publishes and the clients use the new key.
        rotated: dict[str, float] = {}
        spender = issuer.mint_unknown_kid()

        def rotate() -> None:
            _get(url, spender)
            issuer.publish()
            rotated["at"] = time.time()

        switch = threading.Timer(0.5, rotate)
        switch.start()

        def rotation(n: int) -> tuple[str, str]:
            return mix(new, "new")(n) if "at" in rotated else mix(valid, "valid")(n)

        answers = _drive(url, rotation, seconds)
        switch.join()
        refused = [a for a in answers if a.kind == "new" and a.status != 200]
        results["rotation"] = {
            **_phase(answers, seconds),
            "new_key_tokens": sum(a.kind == "new" for a in answers),
            "new_key_refused": len(refused),
            "refused_for_s": round(max((a.sent + a.seconds - rotated["at"] for a in refused), default=0.0), 2),
        }

        before = issuer.jwks_requests()
        flood = _drive(url, lambda n: ("forged", forged[n % len(forged)]), seconds)
        fetched = issuer.jwks_requests() - before
        results["flood"] = {
            **_phase(flood, seconds),
            "jwks_requests": fetched,
            "jwks_per_minute": round(fetched * 60 / seconds, 1),
        }

        issuer.delay(SLOW_ISSUER)
        try:
            results["slow_issuer"] = {**_phase(_drive(url, mix(new, "new"), seconds), seconds), "delay_s": SLOW_ISSUER}
        finally:
            issuer.delay(0)
    calm, slow = results["calm"], results["slow_issuer"]
    results["slow_rps_ratio"] = round(slow["rps"] / calm["rps"], 2)
    results["slow_p99_ratio"] = round(slow["valid_p99_ms"] / calm["valid_p99_ms"], 2)
    return results


# -- a genuine token during a flood, sync and async, in a process of its own -------------------------------


def _latencies(measure: Callable[[], float], seconds: float) -> list[float]:
    values, until = [], time.time() + seconds
    while time.time() < until:
        values.append(measure())
        time.sleep(0.01)
    return values


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(values) * 1000, 2),
        "p99_ms": round(_p99(values) * 1000, 2),
        "max_ms": round(max(values) * 1000, 2),
    }


def _sync_flood(genuine: str, forged: list[str], seconds: float, flooding: bool) -> list[float]:
    from jwtguard import validate_token
    from jwtguard.exceptions import JWTGuardError

    until = time.time() + seconds

    def flood(offset: int) -> None:
        n = offset
        while time.time() < until:
            with contextlib.suppress(JWTGuardError):
                validate_token(forged[n % len(forged)])
            n += 1

    threads = [threading.Thread(target=flood, args=(i * 50,)) for i in range(8 if flooding else 0)]
    for thread in threads:
        thread.start()

    def one() -> float:
        started = time.perf_counter()
        validate_token(genuine)
        return time.perf_counter() - started

    values = _latencies(one, seconds)
    for thread in threads:
        thread.join(seconds + 10)
    return values


async def _async_flood(genuine: str, forged: list[str], seconds: float, flooding: bool) -> list[float]:
    from jwtguard.edge import avalidate
    from jwtguard.exceptions import JWTGuardError
    from jwtguard.validation import get_validator

    until = time.time() + seconds

    async def flood(offset: int) -> None:
        n = offset
        while time.time() < until:
            with contextlib.suppress(JWTGuardError):
                await avalidate(get_validator(), forged[n % len(forged)])
            n += 1

    floods = [asyncio.ensure_future(flood(i * 10)) for i in range(50 if flooding else 0)]
    values = []
    while time.time() < until:
        started = time.perf_counter()
        await avalidate(get_validator(), genuine)
        values.append(time.perf_counter() - started)
        await asyncio.sleep(0.01)
    await asyncio.gather(*floods)
    return values


def _latency_child(conn: Any, settings: dict[str, Any], genuine: str, forged: list[str], seconds: float) -> None:
    configure_django(**settings)
    from jwtguard import validate_token

    validate_token(genuine)  # warm
    conn.send("ready")
    results: dict[str, Any] = {}
    for mode in ("sync", "async"):
        for flooding in (False, True):
            if flooding:
                conn.send("slow")  # the parent makes the issuer slow, and answers when it is
                conn.recv()
            if mode == "sync":
                values = _sync_flood(genuine, forged, seconds, flooding)
            else:
                values = asyncio.run(_async_flood(genuine, forged, seconds, flooding))
            results[f"{mode}_{'flood' if flooding else 'calm'}"] = _summary(values)
            if flooding:
                conn.send("calm")
                conn.recv()
    conn.send(results)


def run_latency(issuer: RemoteIssuer, *, seconds: float) -> dict[str, Any]:
    """A genuine token's latency while forged kids flood a slow issuer (JWKS_L1_RECHECK 0: every genuine request
    reads the shared entry, and in async mode goes to the default executor, behind the forged ones)."""
    settings = {
        "jwtguard": issuer.jwtguard_settings(JWKS_L1_RECHECK=0),
        "caches": {"default": redis_cache()},
        **issuer.bench_settings(),
    }
    genuine = issuer.mint("RS256", sub="bench-user")
    forged = [issuer.mint_unknown_kid() for _ in range(500)]
    parent, child = multiprocessing.get_context("spawn").Pipe()
    process = multiprocessing.get_context("spawn").Process(
        target=_latency_child, args=(child, settings, genuine, forged, seconds), daemon=True
    )
    process.start()
    try:
        if not parent.poll(60) or parent.recv() != "ready":
            raise RuntimeError("the latency benchmark process did not start")
        while True:
            if not parent.poll(seconds * 4 + 60):
                raise RuntimeError("the latency benchmark process hung")
            message = parent.recv()
            if message == "slow":
                issuer.delay(SLOW_ISSUER)
                parent.send("ok")
            elif message == "calm":
                issuer.delay(0)
                parent.send("ok")
            else:
                results: dict[str, Any] = message
                break
    finally:
        issuer.delay(0)
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
    rows = []
    for mode in ("sync", "async"):
        calm, flood = results[f"{mode}_calm"], results[f"{mode}_flood"]
        rows.append(
            {
                "mode": mode,
                "fetch_s": SLOW_ISSUER,
                **{f"calm_{k}": v for k, v in calm.items()},
                **{f"flood_{k}": v for k, v in flood.items()},
                "p99_ratio": round(flood["p99_ms"] / calm["p99_ms"], 2),
            }
        )
    return {"seconds": seconds, "rows": rows}
