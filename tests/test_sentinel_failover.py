"""A Redis Sentinel failover under load, as deployed: docs/caches.md's recipe against the one it replaced.

A primary, a replica and three sentinels on loopback (tests/support/sentinel.py); four worker processes
(tests/support/workers.py) validate tokens without pause, 1 in 20 with a forged kid, through:

1. the primary killed, and the sentinels promoting the replica;
2. the old primary restarted empty on its port, which the sentinels list as a replica at once and turn into
   one (then it syncs) only seconds later;
3. a key rotation right after the restart (the issuer publishes a new key; tokens signed with it follow one
   cooldown later, the bound docs/shared-cache.md gives while forged kids spend every cooldown window);
4. two more worker processes starting during the rejoin (recycled gunicorn workers, a pod scaling up).

Every valid token must be accepted throughout, nothing unexpected raised or logged at ERROR, the shared entry
must be on the new primary (and on the rejoined replica), every process on the issuer's key set at the end,
and the fetches within the documented bounds. The traffic runs in short segments, so that each event
happens while the workers validate and the test can wait for sentinels without a fixed schedule.
"""

from __future__ import annotations

import math
import pickle
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from jwtguard.conf import get_settings
from jwtguard.jwks import get_provider
from jwtguard.testing import FakeIssuer
from tests.support.sentinel import SERVICE, Sentinels, documented_cache
from tests.support.workers import Cluster

HTTP_TIMEOUT = 1.0
COOLDOWN = 2.0
RECHECK = 0.5
#: What a loaded 2-core machine may leave a process unscheduled for, on top of a documented bound.
PROCESS_SLACK = 1.0
JWTGUARD = {
    "HTTP_TIMEOUT": HTTP_TIMEOUT,
    "JWKS_CACHE_TTL": 300,  # no routine refresh during the run: every fetch is cold, forged or the rotation
    "JWKS_REFRESH_COOLDOWN": COOLDOWN,
    "JWKS_L1_RECHECK": RECHECK,
}
#: One token in this many names a kid nobody published.
FORGED_EVERY = 20
SEGMENT = 2.0


def primary_only(sentinels: Sentinels) -> dict[str, Any]:
    """docs/caches.md: DefaultClient with the Sentinel connection factory, every command to the primary."""
    cache = documented_cache()
    assert cache["OPTIONS"]["CLIENT_CLASS"] == "django_redis.client.DefaultClient"
    assert cache["LOCATION"] == f"redis://{SERVICE}/0"
    return {**cache, "OPTIONS": {**cache["OPTIONS"], "SENTINELS": sentinels.sentinels}}


def replica_reads(sentinels: Sentinels) -> dict[str, Any]:
    """django-redis's SentinelClient, as docs/caches.md gave it before: reads go to the replicas."""
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": f"redis://{SERVICE}/0",
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.SentinelClient",
            "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
            "CONNECTION_POOL_CLASS": "redis.sentinel.SentinelConnectionPool",
            "SENTINELS": sentinels.sentinels,
            "SOCKET_CONNECT_TIMEOUT": 0.5,
            "SOCKET_TIMEOUT": 0.5,
        },
    }


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[Sentinels]:
    deployment = Sentinels(tmp_path)
    try:
        deployment.start()
        yield deployment
    finally:
        deployment.stop()


@dataclass
class Traffic:
    """The workers' tallies over every segment: valid tokens refused, forged ones, errors, the slowest."""

    requests: int = 0
    forged: int = 0
    valid_failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    max_seconds: float = 0.0

    def add(self, phase: str, answers: list[dict[str, Any]], per_worker: list[list[str]]) -> None:
        for worker, (answer, tokens) in enumerate(zip(answers, per_worker, strict=True)):
            done = answer["requests"]
            forged = sum(1 for i in range(done) if i % len(tokens) == FORGED_EVERY - 1)
            self.requests += done
            self.forged += forged
            self.max_seconds = max(self.max_seconds, answer["max_seconds"])
            self.errors += answer["errors"] + answer["logged_errors"]
            expected_rejections = {"unknown_kid": forged} if forged else {}
            if answer["valid"] != done - forged or answer["rejected"] != expected_rejections or answer["unavailable"]:
                self.valid_failed.append(
                    f"{phase} {worker}: {done} requests, {forged} forged, {answer['valid']} valid, "
                    f"rejected {answer['rejected']}, {answer['unavailable']} unavailable"
                )


def token_lists(issuer: FakeIssuer, workers: int, *, keys: list[Any]) -> list[list[str]]:
    """Per worker, FORGED_EVERY tokens: the last names a forged kid, the others are valid, signed in turn by
    each of ``keys``."""
    lists = []
    for worker in range(workers):
        valid = [issuer.mint(key=keys[i % len(keys)], sub=f"user-{worker}-{i}") for i in range(FORGED_EVERY - 1)]
        lists.append([*valid, issuer.mint(headers={"kid": f"forged-{uuid.uuid4().hex}"})])
    return lists


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.parametrize("recipe", [primary_only, replica_reads], ids=["primary-only", "sentinel-client"])
def test_a_failover_with_the_old_primary_rejoining_empty_fails_no_valid_token(
    recipe: Callable[[Sentinels], dict[str, Any]], sentinels: Sentinels, settings: Any
) -> None:
    cache = {**recipe(sentinels), "KEY_PREFIX": f"jwtguard-failover-{uuid.uuid4().hex[:12]}"}
    traffic = Traffic()
    started = time.monotonic()
    with ExitStack() as stack:
        issuer = stack.enter_context(FakeIssuer("ES256"))
        steady = stack.enter_context(Cluster(4, cache=cache, jwtguard=issuer.settings(**JWTGUARD)))
        old_key = issuer.signing_key
        clusters: list[tuple[Cluster, int]] = [(steady, 4)]
        names = {id(steady): "steady worker"}
        tokens = {id(steady): token_lists(issuer, 4, keys=[old_key])}

        def segment(phase: str, seconds: float, during: Callable[[], None] = lambda: None) -> None:
            """Every worker validates its tokens for ``seconds`` while ``during`` runs here."""
            until = time.time() + seconds
            for cluster, _size in clusters:
                cluster.send("loop", [{"tokens": t, "until": until} for t in tokens[id(cluster)]])
            during()
            for cluster, _size in clusters:
                traffic.add(f"{phase}, {names[id(cluster)]}", cluster.collect(), tokens[id(cluster)])

        steady.ask("validate", {"tokens": [issuer.mint()]})
        segment("steady", SEGMENT)

        # 1. The primary dies; the sentinels promote the replica.
        killed_at = time.monotonic()
        segment("primary killed", SEGMENT, lambda: sentinels.kill("primary"))
        while not sentinels.promoted(sentinels.replica_port)():
            assert time.monotonic() - killed_at < 30, "the sentinels did not promote the replica"
            segment("promotion", SEGMENT)
        failover_seconds = time.monotonic() - killed_at

        # 2-4. The old primary back empty; at once a new key published; new processes start meanwhile.
        late = Cluster(2, cache=cache, jwtguard=issuer.settings(**JWTGUARD))

        def restart_rotate_and_scale_up() -> None:
            sentinels.start_server("primary", sentinels.primary_port)
            issuer.add_key()
            stack.enter_context(late)

        restarted_at = time.monotonic()
        segment("restart, rotation, new processes", 4 * SEGMENT, restart_rotate_and_scale_up)
        clusters.append((late, 2))
        names[id(late)] = "late worker"
        tokens[id(late)] = token_lists(issuer, 2, keys=[old_key])
        # Tokens signed with the new key once every process may know it: one cooldown for the fetch a
        # forged kid triggers, one recheck for the others to adopt it.
        new_key_at = restarted_at + COOLDOWN + RECHECK + HTTP_TIMEOUT + PROCESS_SLACK
        while time.monotonic() < new_key_at:
            segment("rotation published", SEGMENT)
        both = [old_key, issuer.signing_key]
        tokens = {id(c): token_lists(issuer, size, keys=both) for c, size in clusters}
        rejoined = sentinels.replica_synced(sentinels.primary_port)
        while not rejoined():
            assert time.monotonic() - restarted_at < 45, "the old primary did not rejoin as a synced replica"
            segment("rejoin", SEGMENT)
        rejoin_seconds = time.monotonic() - restarted_at
        segment("rejoined", 2 * SEGMENT)

        states = converged_states(clusters)
    run_seconds = time.monotonic() - started

    summary = (
        f"{traffic.requests} requests ({traffic.forged} forged) in {run_seconds:.1f}s; failover "
        f"{failover_seconds:.1f}s, rejoin {rejoin_seconds:.1f}s; {issuer.jwks_requests} fetches; "
        f"slowest {traffic.max_seconds:.2f}s"
    )
    print(summary)
    assert traffic.valid_failed == [], f"{summary}\n" + "\n".join(traffic.valid_failed)
    assert traffic.errors == [], summary
    assert traffic.requests > 1000, summary

    # Every process on the issuer's key set, and on the entry the new primary holds (so does the rejoined one).
    kids = sorted(key.kid for key in issuer.keys)
    assert {tuple(s["l1_kids"]) for s in states} == {tuple(kids)}, states
    fetched_at = {s["l1_fetched_at"] for s in states}
    assert len(fetched_at) == 1, states
    settings.JWTGUARD = issuer.settings(**JWTGUARD)
    entry_key = f"{cache['KEY_PREFIX']}:1:{get_provider(get_settings().issuers[0]).entry_key}"
    for port in (sentinels.replica_port, sentinels.primary_port):  # the new primary, the old one rejoined
        with redis.Redis(host="127.0.0.1", port=port, socket_timeout=1) as client:
            raw = client.get(entry_key)
        assert raw is not None, f"no shared entry on {port}"
        entry = pickle.loads(raw)  # noqa: S301 - django-redis's own serialisation of our own entry
        assert entry["fetched_at"] in fetched_at, (port, entry["fetched_at"], fetched_at)

    # Fetches: one cold; while the cache answers, one per cooldown for the whole deployment (forged kids and
    # the rotation alike); while a process cannot reach the primary, one per cooldown for that process.
    windows = math.ceil(run_seconds / COOLDOWN) + 1
    outage_windows = math.ceil((failover_seconds + PROCESS_SLACK) / COOLDOWN) + 1
    bound = 1 + windows + 6 * outage_windows
    assert issuer.jwks_requests <= bound, summary
    assert traffic.max_seconds <= HTTP_TIMEOUT + 1 + PROCESS_SLACK, summary
    assert rejoin_seconds < 45


def converged_states(clusters: list[tuple[Cluster, int]]) -> list[dict[str, Any]]:
    """Every process's state; asked again while a refresh lands between two answers (bounded)."""
    states: list[dict[str, Any]] = []
    for _ in range(5):
        states = [s for cluster, _size in clusters for s in cluster.ask("state", {"settle": RECHECK + 0.1})]
        if len({s["l1_fetched_at"] for s in states}) == 1:
            break
    return states
