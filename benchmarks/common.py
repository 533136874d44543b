"""What every benchmark section shares: an issuer in its own process, Django settings, the contenders.

The issuer runs in a child process so that its CPU (serving JWKS to the contenders that fetch per request)
is never charged to the process being measured, and it counts every request it serves.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import multiprocessing
import socket
import statistics
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Barrier
from typing import Any, TypeVar

from jwtguard.testing import FakeIssuer, Fault, generate_key

ALGORITHMS = ("RS256", "ES256", "EdDSA")
AUDIENCE = "https://api.bench.example"
REDIS_URL = "redis://127.0.0.1:6379/0"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(issuer: FakeIssuer, commands: Connection, unpublished: Any) -> None:
    issuer.start()
    commands.send("ready")
    while True:
        if not commands.poll(600):  # the parent is gone or hung: do not outlive it by long
            break
        command = commands.recv()
        if command == "count":
            commands.send(dict(issuer.requests))
        elif command == "publish":  # the key kept unpublished until now: published, as an issuer rotating
            issuer.keys.append(unpublished)
            commands.send("published")
        elif command == "delay":  # every answer this many seconds late (0: on time)
            delay = commands.recv()
            issuer.fault = Fault(delay=delay) if delay else None
            commands.send("delayed")
        elif command == "stop":
            break
    issuer.stop()


_Child = TypeVar("_Child", bound="ChildServer")


class ChildServer:
    """A server that ``serve(server, pipe)`` runs in a forked child: this process keeps the same keys (forked
    before serving) to mint with, and asks the child for its counts through the pipe."""

    def __init__(self, serve: Callable[[Any, Connection], None], server: Any) -> None:
        context = multiprocessing.get_context("fork")
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=serve, args=(server, child), daemon=True)

    def __enter__(self: _Child) -> _Child:
        self._process.start()
        if not self._pipe.poll(30) or self._pipe.recv() != "ready":
            raise RuntimeError("the issuer process did not start")
        return self

    def __exit__(self, *exc_info: object) -> None:
        with contextlib.suppress(OSError):
            self._pipe.send("stop")
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()

    def ask(self, command: str) -> Any:
        self._pipe.send(command)
        return self._pipe.recv()


def spawn_workers(
    count: int, target: Callable[..., None], django_settings: dict[str, Any]
) -> tuple[Barrier, list[Connection], list[multiprocessing.process.BaseProcess], list[Any]]:
    """``count`` spawned workers, each running ``target(pipe, barrier, django_settings)``: the barrier they step
    through phases with, their pipes and processes, and the first message each sent (once it was ready)."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(count)
    pipes: list[Connection] = []
    processes: list[multiprocessing.process.BaseProcess] = []
    for _ in range(count):
        parent, child = context.Pipe()
        process = context.Process(target=target, args=(child, barrier, django_settings), daemon=True)
        process.start()
        pipes.append(parent)
        processes.append(process)
    ready = []
    for pipe in pipes:
        if not pipe.poll(60):
            raise RuntimeError("a benchmark worker did not start")
        ready.append(pipe.recv())
    return barrier, pipes, processes, ready


def stop_workers(pipes: Iterable[Connection], processes: Iterable[multiprocessing.process.BaseProcess]) -> None:
    """Tell each worker to stop (None), then make sure it did."""
    for pipe in pipes:
        with contextlib.suppress(OSError):
            pipe.send(None)
    for process in processes:
        process.join(timeout=10)
        if process.is_alive():
            process.kill()


class RemoteIssuer(ChildServer):
    """A ``FakeIssuer`` with one key per algorithm, serving from a forked child process on 127.0.0.1.

    This process keeps the same keys (forked before serving) and mints tokens; the child serves JWKS and
    discovery and reports how many requests it served.
    """

    def __init__(self, algorithms: Iterable[str] = ALGORITHMS) -> None:
        first, *others = algorithms
        self.fake = FakeIssuer(first, audience=AUDIENCE, port=free_port())
        self.keys = {first: self.fake.signing_key}
        for algorithm in others:
            self.keys[algorithm] = self.fake.add_key(algorithm)
        # A key the issuer never publishes: tokens signed with it carry kids nobody knows.
        self.stranger = FakeIssuer(first, audience=AUDIENCE, issuer=self.fake.issuer).signing_key
        # A key the issuer serves only once told to ``publish()``: a rotation (tokens signed with it beforehand).
        self.unpublished = generate_key(first)
        super().__init__(functools.partial(_serve, unpublished=self.unpublished), self.fake)

    @property
    def issuer(self) -> str:
        return self.fake.issuer

    @property
    def jwks_url(self) -> str:
        return self.fake.jwks_url

    def jwks_requests(self) -> int:
        counts: dict[str, int] = self.ask("count")
        return counts.get("/.well-known/jwks.json", 0)

    def publish(self) -> None:
        """Publish ``unpublished`` in the served JWKS, now (once)."""
        self.ask("publish")

    def delay(self, seconds: float) -> None:
        """Make the served issuer answer ``seconds`` late from now on (0: on time again)."""
        self._pipe.send("delay")
        self._pipe.send(seconds)
        self._pipe.recv()

    def mint(self, algorithm: str = "RS256", *, key: Any = None, **claims: Any) -> str:
        return self.fake.mint(key=key or self.keys[algorithm], expires_in=3600, **claims)

    def mint_unknown_kid(self) -> str:
        """A well-formed token whose kid (random) is in no key set: what a flood of forgeries looks like."""
        stranger = self.stranger
        forged = type(stranger)(
            kid=f"unknown-{uuid.uuid4().hex}", algorithm=stranger.algorithm, private_key=stranger.private_key
        )
        return self.fake.mint(key=forged, expires_in=3600)

    def public_key(self, algorithm: str) -> Any:
        return self.keys[algorithm].private_key.public_key()

    def bench_settings(self) -> dict[str, Any]:
        """The ``BENCH_*`` settings ``benchmarks.contenders`` reads: where the floor and the others look."""
        return {
            "BENCH_AUDIENCE": AUDIENCE,
            "BENCH_ISSUER": self.issuer,
            "BENCH_JWKS_URL": self.jwks_url,
            "BENCH_FLOOR_JWK": self.keys["RS256"].public_jwk(),
        }

    def jwtguard_settings(self, **overrides: Any) -> dict[str, Any]:
        return {
            "ISSUER": self.issuer,
            "AUDIENCE": AUDIENCE,
            "JWKS_URL": self.jwks_url,
            "ALGORITHMS": list(ALGORITHMS),
            **overrides,
        }


def redis_cache(prefix: str | None = None) -> dict[str, Any]:
    """A Django cache on the real Redis at 127.0.0.1:6379, under a key prefix no other run shares."""
    return {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": prefix or f"jwtguard-bench-{uuid.uuid4().hex[:12]}",
        "OPTIONS": {"socket_timeout": 1, "socket_connect_timeout": 1},
    }


def django_settings(
    jwtguard: dict[str, Any],
    simple_jwt: dict[str, Any] | None = None,
    caches: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The Django settings of every benchmark process (the gunicorn site adds its URLconf)."""
    return {
        "SECRET_KEY": "jwtguard-benchmarks",
        "DEBUG": False,
        "USE_TZ": True,
        "ALLOWED_HOSTS": ["*"],
        "INSTALLED_APPS": ["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"],
        "MIDDLEWARE": [],
        "DATABASES": {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        "CACHES": caches or {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
        "REST_FRAMEWORK": {
            "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
            "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
            "UNAUTHENTICATED_USER": None,
        },
        "SIMPLE_JWT": simple_jwt or {},
        # The verified-token cache is off here, so "jwtguard validate_token" times the whole path; the token
        # cache contender has a validator of its own (contenders.cached_validator).
        "JWTGUARD": {"TOKEN_CACHE_BYTES": 0, **jwtguard},
        "LOGGING_CONFIG": None,
        **extra,
    }


def configure_django(**kwargs: Any) -> None:
    """Configure and set up Django in this process with ``django_settings(**kwargs)``."""
    import django
    from django.conf import settings

    settings.configure(**django_settings(**kwargs))
    django.setup()


def simple_jwt_settings(issuer: RemoteIssuer, algorithm: str = "RS256") -> dict[str, Any]:
    """djangorestframework-simplejwt set up for an external issuer's access tokens, as its docs say."""
    return {
        "ALGORITHM": algorithm,
        "SIGNING_KEY": None,
        "VERIFYING_KEY": None,
        "JWK_URL": issuer.jwks_url,
        "AUDIENCE": AUDIENCE,
        "ISSUER": issuer.issuer,
        "USER_ID_CLAIM": "sub",
        "TOKEN_TYPE_CLAIM": None,
        "JTI_CLAIM": None,
    }


# -- timing ---------------------------------------------------------------------------------------------


@dataclass
class Samples:
    """Per-call CPU of one contender, one sample per round."""

    name: str
    per_call_us: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)

    @property
    def median_us(self) -> float:
        return statistics.median(self.per_call_us)

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios) if self.ratios else float("nan")

    @property
    def spread(self) -> float:
        """Interquartile range of the per-round ratios: how noisy this machine was for this contender."""
        if len(self.ratios) < 4:
            return float("nan")
        quartiles = statistics.quantiles(self.ratios, n=4)
        return quartiles[2] - quartiles[0]


def cpu_per_call(function: Callable[[], object], calls: int) -> float:
    """Microseconds of this process's CPU per call, over ``calls`` calls with the collector paused (as timeit)."""
    gc.collect()
    gc.disable()
    try:
        started = time.process_time_ns()
        for _ in range(calls):
            function()
        spent = time.process_time_ns() - started
    finally:
        gc.enable()
    return spent / calls / 1000


def calibrate(function: Callable[[], object], target_seconds: float, *, cap: int = 5000) -> int:
    """How many calls make one sample of about ``target_seconds`` of CPU."""
    per_call = max(cpu_per_call(function, 3), 1.0)
    return max(1, min(cap, int(target_seconds * 1e6 / per_call)))


def interleaved(
    contenders: dict[str, Callable[[], object]],
    *,
    baseline: str,
    rounds: int,
    sample_seconds: float,
    caps: dict[str, int] | None = None,
) -> dict[str, Samples]:
    """Medians over ``rounds`` in which every contender runs once, in a rotating order, so that drift of the
    machine (other processes, frequency) hits all of them alike; ratios are taken within each round."""
    caps = caps or {}
    names = list(contenders)
    for function in contenders.values():
        function()  # warm: key sets fetched, caches filled
    calls = {name: calibrate(contenders[name], sample_seconds, cap=caps.get(name, 5000)) for name in names}
    samples = {name: Samples(name) for name in names}
    for round_number in range(rounds):
        shift = round_number % len(names)
        this_round: dict[str, float] = {}
        for name in names[shift:] + names[:shift]:
            this_round[name] = cpu_per_call(contenders[name], calls[name])
        for name, value in this_round.items():
            samples[name].per_call_us.append(value)
            samples[name].ratios.append(value / this_round[baseline])
    return samples
