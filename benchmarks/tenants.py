"""Many issuers at scale: N Keycloak-style realms, W worker processes sharing Redis, one LRU per process.

One local ``RealmIssuer`` (in a forked child, which counts every request) serves N realms, each with its own
ES256 key set and discovery document. W spawned workers (like gunicorn workers) accept every realm through one
pattern, ``http://127.0.0.1:<port>/realms/{realm}``, with ``ISSUER_CACHE_SIZE`` = LRU, and share a Redis under a
key prefix of this run. Phases, in step:

1. every worker validates a token of every realm (each in its own order): cold, all at once;
2. the same again: evicted issuers come back from the shared cache;
3. tokens naming untrusted issuers (no pattern matches; ``ISSUER_SOURCE`` says None), spread over the workers.

Counted: discovery and JWKS requests per realm (exactly one each for the run), source calls (one per untrusted
issuer for the deployment), refusals, RSS per worker. Then, in a fresh process holding every issuer, per-token
CPU with all N issuers round-robin against one issuer, interleaved in the same run; and round-robin with the
LRU smaller than N (every token an LRU miss: a shared-cache read and a key-set parse).
"""

from __future__ import annotations

import multiprocessing
import os
import random
import statistics
import sys
import time
import uuid
from collections import Counter
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Barrier
from typing import Any

from benchmarks.common import (
    AUDIENCE,
    ChildServer,
    configure_django,
    free_port,
    redis_cache,
    spawn_workers,
    stop_workers,
)
from jwtguard.testing import RealmIssuer

PHASE_TIMEOUT = 300
SOURCE_CALLS_KEY = "bench-tenants:source-calls"


def untrusted_source(iss: str) -> dict[str, Any] | None:
    """The ``ISSUER_SOURCE`` of the run: trusts nobody, and counts its calls in the shared cache."""
    from django.core.cache import caches

    cache = caches["default"]
    cache.add(SOURCE_CALLS_KEY, 0, None)
    cache.incr(SOURCE_CALLS_KEY)
    return None


def rss_bytes() -> int:
    """This process's resident set size now (Linux: /proc/self/statm), else its peak (getrusage)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak if sys.platform == "darwin" else peak * 1024)


def _settings(realms: RealmIssuer, prefix: str, lru: int) -> dict[str, Any]:
    return {
        "jwtguard": {
            **realms.settings(AUDIENCE=AUDIENCE),
            "ISSUER_SOURCE": "benchmarks.tenants.untrusted_source",
            "ISSUER_SOURCE_NEGATIVE_TTL": 3600,
            "ISSUER_CACHE_SIZE": lru,
        },
        "caches": {"default": redis_cache(prefix)},
    }


# -- the issuer, in a forked child ----------------------------------------------------------------------


def _serve(realms: RealmIssuer, commands: Connection) -> None:
    realms.start()
    commands.send("ready")
    while commands.poll(600):
        command = commands.recv()
        if command == "count":
            commands.send(realms.request_counts())
        elif command == "stop":
            break
    realms.stop()


class RemoteRealms(ChildServer):
    """N realms made here (so this process can mint), served from a forked child that counts requests."""

    def __init__(self, count: int) -> None:
        self.realms = RealmIssuer("ES256", audience=AUDIENCE, port=free_port())
        self.names = [f"tenant-{index:05d}" for index in range(count)]
        for name in self.names:
            self.realms.add_realm(name)
        super().__init__(_serve, self.realms)

    def counts(self) -> dict[tuple[str, str], int]:
        counts: dict[tuple[str, str], int] = self.ask("count")
        return counts

    def token(self, name: str) -> str:
        return self.realms.realms[name].mint(expires_in=3600, sub=f"user-of-{name}")


# -- the workers -----------------------------------------------------------------------------------------


def _worker(conn: Connection, barrier: Barrier, django_settings: dict[str, Any]) -> None:
    configure_django(**django_settings)
    from jwtguard.exceptions import JWTGuardError
    from jwtguard.jwks import resolved_provider_stats
    from jwtguard.validation import get_validator

    validator = get_validator()
    conn.send(("ready", rss_bytes()))
    while True:
        tokens = conn.recv()
        if tokens is None:
            return
        barrier.wait(timeout=PHASE_TIMEOUT)
        refused: Counter[str] = Counter()
        started = time.process_time()
        for raw in tokens:
            try:
                validator.validate(raw)
            except JWTGuardError as exc:
                refused[exc.code] += 1
        conn.send(
            {
                "refused": dict(refused),
                "cpu_s": time.process_time() - started,
                "rss": rss_bytes(),
                "held": validator.issuers.held(),
                "providers": resolved_provider_stats(),
            }
        )


class Workers:
    def __init__(self, count: int, django_settings: dict[str, Any]) -> None:
        self.barrier, self.pipes, self.processes, ready = spawn_workers(count, _worker, django_settings)
        #: Each worker's RSS once Django is set up and its validator built, before any token.
        self.rss_at_start: list[int] = [rss for _ready, rss in ready]

    def phase(self, tokens_per_worker: list[list[str]]) -> list[dict[str, Any]]:
        for pipe, tokens in zip(self.pipes, tokens_per_worker, strict=True):
            pipe.send(tokens)
        answers = []
        for pipe in self.pipes:
            if not pipe.poll(PHASE_TIMEOUT):
                raise RuntimeError(f"a worker took over {PHASE_TIMEOUT}s")
            answers.append(pipe.recv())
        return answers

    def close(self) -> None:
        stop_workers(self.pipes, self.processes)


# -- per-token CPU, in a fresh process ------------------------------------------------------------------


def _per_token_us(validate: Any, tokens: list[str]) -> float:
    started = time.process_time_ns()
    for raw in tokens:
        validate(raw)
    return (time.process_time_ns() - started) / 1000 / len(tokens)


def _cpu_worker(
    conn: Connection, django_settings: dict[str, Any], one: list[str], many: list[str], rounds: int
) -> None:
    try:
        _measure_cpu(conn, django_settings, one, many, rounds)
    except Exception as exc:  # said to the parent at once, rather than left for its timeout
        conn.send({"error": f"{type(exc).__name__}: {exc}"})


def _measure_cpu(
    conn: Connection, django_settings: dict[str, Any], one: list[str], many: list[str], rounds: int
) -> None:
    configure_django(**django_settings)
    from django.test import override_settings

    from jwtguard.validation import get_validator

    validate = get_validator().validate
    for raw in many:  # warm: every issuer resolved and its key set read from the shared cache (no fetch)
        validate(raw)
    ones, manys = [], []
    for _ in range(rounds):
        ones.append(_per_token_us(validate, one))
        manys.append(_per_token_us(validate, many))
    # The LRU a tenth of the issuers: round-robin, every token is an LRU miss.
    thrash_settings = {**django_settings["jwtguard"], "ISSUER_CACHE_SIZE": max(1, len(set(many)) // 10)}
    with override_settings(JWTGUARD=thrash_settings):
        thrash_validate = get_validator().validate
        thrash = [_per_token_us(thrash_validate, many) for _ in range(max(1, rounds // 2))]
    conn.send({"one_us": ones, "many_us": manys, "thrash_us": thrash, "rss": rss_bytes()})


def _cpu(django_settings: dict[str, Any], one: list[str], many: list[str], rounds: int) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_cpu_worker, args=(child, django_settings, one, many, rounds), daemon=True)
    process.start()
    try:
        if not parent.poll(PHASE_TIMEOUT):
            raise RuntimeError("the CPU measurement took too long")
        result: dict[str, Any] = parent.recv()
        if "error" in result:
            raise RuntimeError(f"the CPU measurement failed: {result['error']}")
    finally:
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
    ratios = [m / o for m, o in zip(result["many_us"], result["one_us"], strict=True)]
    one_us, many_us = statistics.median(result["one_us"]), statistics.median(result["many_us"])
    thrash_us = statistics.median(result["thrash_us"])
    return {
        "one_issuer_us": round(one_us, 1),
        "many_issuers_us": round(many_us, 1),
        "ratio": round(statistics.median(ratios), 3),
        "ratios": [round(r, 3) for r in ratios],
        "lru_miss_us": round(thrash_us, 1),
        "lru_miss_ratio": round(thrash_us / one_us, 2),
    }


# -- the run ---------------------------------------------------------------------------------------------


def _spread(items: list[str], parts: int) -> list[list[str]]:
    return [items[index::parts] for index in range(parts)]


def run(*, issuers: int, workers: int, untrusted: int, untrusted_issuers: int, lru: int, rounds: int) -> dict[str, Any]:
    prefix = f"jwtguard-bench-tenants-{uuid.uuid4().hex[:12]}"
    with RemoteRealms(issuers) as remote:
        settings = _settings(remote.realms, prefix, lru)
        tokens = {name: remote.token(name) for name in remote.names}
        stranger = remote.realms.realms[remote.names[0]]
        forged_issuers = [f"https://untrusted-{index}.tenants.example/" for index in range(untrusted_issuers)]
        forged = [stranger.mint(iss=forged_issuers[index % untrusted_issuers]) for index in range(untrusted)]
        pool = Workers(workers, settings)
        try:
            orders = []
            for worker in range(workers):
                order = list(tokens.values())
                random.Random(worker).shuffle(order)
                orders.append(order)
            cold = pool.phase(orders)
            after_cold = remote.counts()
            again = pool.phase(orders)
            after_again = remote.counts()
            flood = pool.phase(_spread(forged, workers))
            after_flood = remote.counts()
            rss_at_start = list(pool.rss_at_start)
        finally:
            pool.close()
        source_calls = _source_calls(settings)
        every_issuer_held = {**settings, "jwtguard": {**settings["jwtguard"], "ISSUER_CACHE_SIZE": issuers}}
        try:
            cpu = _cpu(
                every_issuer_held, one=[tokens[remote.names[0]]] * issuers, many=list(tokens.values()), rounds=rounds
            )
            cpu_fetches = sum(remote.counts().values()) - sum(after_flood.values())
        finally:
            _delete_run_keys(settings)

    def total(counts: dict[tuple[str, str], int], kind: str) -> int:
        return sum(count for (what, _realm), count in counts.items() if what == kind)

    per_realm = [count for (what, _realm), count in after_flood.items() if what == "certs"]
    return {
        "issuers": issuers,
        "workers": workers,
        "lru": lru,
        "untrusted_tokens": untrusted,
        "untrusted_issuers": untrusted_issuers,
        "jwks_fetches": total(after_cold, "certs"),
        "discovery_fetches": total(after_cold, "discovery"),
        "jwks_fetches_second_pass": total(after_again, "certs") - total(after_cold, "certs"),
        "fetches_for_untrusted": sum(after_flood.values()) - sum(after_again.values()),
        "max_jwks_fetches_per_issuer": max(per_realm, default=0),
        "source_calls": source_calls,
        "refused_valid_tokens": sum(sum(answer["refused"].values()) for answer in cold + again),
        "untrusted_refusals": dict(sum((Counter(answer["refused"]) for answer in flood), Counter())),
        "providers_held_per_worker": max(answer["providers"]["held"] for answer in again),
        "providers_evicted_per_worker": max(answer["providers"]["evicted"] for answer in again),
        "rss_mb_at_start": round(max(rss_at_start) / 2**20, 1),
        "rss_mb_with_issuers": round(max(answer["rss"] for answer in flood) / 2**20, 1),
        "cpu": {**cpu, "fetches": cpu_fetches, "lru_for_misses": max(1, issuers // 10)},
    }


def _redis(settings: dict[str, Any]) -> tuple[Any, str]:
    import redis

    cache = settings["caches"]["default"]
    return redis.Redis.from_url(cache["LOCATION"]), cache["KEY_PREFIX"]


def _source_calls(settings: dict[str, Any]) -> int:
    """The source calls the workers counted in Redis (Django's keys are "<prefix>:<version>:<key>")."""
    client, prefix = _redis(settings)
    try:
        return int(client.get(f"{prefix}:1:{SOURCE_CALLS_KEY}") or 0)
    finally:
        client.close()


def _delete_run_keys(settings: dict[str, Any]) -> None:
    """Delete this run's keys (its own prefix only: the Redis is shared)."""
    client, prefix = _redis(settings)
    try:
        for key in client.scan_iter(f"{prefix}:*", count=1000):
            client.delete(key)
    finally:
        client.close()
