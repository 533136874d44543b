"""Distrust: a kid an operator names is refused everywhere, whatever the key set holds (issue 14, section 1).

Two ``KeyProvider``s on one cache stand for two processes in the fast tests (fakeredis); ``TestAcrossProcesses``
runs real OS processes on a real Redis (``tests/support/workers.py``).
"""

from __future__ import annotations

import io
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError

from jwtguard import signals, validate_token
from jwtguard.cache import SharedCache
from jwtguard.conf import get_settings, parse_settings
from jwtguard.distrust import CACHE_KEY, DEFAULT_FOR, Distrust, distrust_kid, merge, read_shared, trust_kid
from jwtguard.exceptions import DistrustedKey, KeySetUnavailable, TokenError
from jwtguard.jwks import KeyProvider, get_provider
from jwtguard.testing import FakeIssuer, Fault
from jwtguard.validation import get_validator
from tests.support.doors import ACCEPTED, Outcome, outcomes
from tests.support.loopback import RedisServer, real_redis_cache, require_real_redis
from tests.support.workers import Cluster, totals

Configure = Callable[..., None]
#: Short enough to keep the tests short, long enough to tell "before the recheck" from "after" on a busy machine.
RECHECK = 0.5
#: What a bound measured on a loaded 2-core machine may overrun by.
MARGIN = 0.5


@pytest.fixture
def provider(issuer: FakeIssuer, configure: Configure) -> KeyProvider:
    configure(issuer, JWKS_L1_RECHECK=RECHECK, HTTP_TIMEOUT=0.5)
    return get_provider(get_settings().issuers[0])


def another_process(provider: KeyProvider) -> KeyProvider:
    """A provider with its own memory on the same shared cache: what a second worker has."""
    return KeyProvider(provider.config)


def shared() -> SharedCache:
    return SharedCache("default")


def distrust(kid: str, **options: Any) -> None:
    options = {"issuer": None, "seconds": None, "reason": "leaked", **options}
    assert distrust_kid(shared(), kid, **options) is not None


def code_of(raw: str, refusal: type[TokenError] = DistrustedKey) -> str:
    try:
        validate_token(raw)
    except refusal as exc:
        return exc.code
    return "accepted"


def wait_past_recheck() -> None:
    time.sleep(RECHECK + 0.05)


@pytest.fixture
def sent() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    records: list[tuple[str, dict[str, Any]]] = []
    receivers = []
    for name in ("key_distrusted", "distrusted_key_refused", "token_rejected"):
        signal = getattr(signals, name)

        def receive(sender: Any, signal: Any = None, _name: str = name, **kwargs: Any) -> None:
            records.append((_name, kwargs))

        signal.connect(receive, weak=False)
        receivers.append((signal, receive))
    yield records
    for signal, receive in receivers:
        signal.disconnect(receive)


class TestRefusal:
    def test_a_distrusted_kid_is_refused_with_its_own_code_although_the_key_set_has_it(
        self, provider: KeyProvider, issuer: FakeIssuer
    ) -> None:
        raw = issuer.mint()
        validate_token(raw)
        distrust(issuer.signing_key.kid)
        provider.distrusted()  # what the command does in its own process: read at once
        with pytest.raises(DistrustedKey) as refused:
            validate_token(raw)
        assert (refused.value.code, refused.value.detail) == ("distrusted_key", "Bearer token is invalid")
        assert issuer.signing_key.kid in provider.status().kids, "the key set still has it"

    def test_another_process_refuses_it_within_the_recheck_and_reads_the_list_once_per_recheck(
        self, provider: KeyProvider, issuer: FakeIssuer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        other = another_process(provider)
        key = issuer.signing_key
        other.get_key(key.kid, "RS256")
        reads = []
        real_get = other.cache.get
        monkeypatch.setattr(other.cache, "get", lambda k: reads.append(k) or real_get(k))
        distrust(key.kid)
        distrusted_at = time.monotonic()
        while True:
            try:
                other.get_key(key.kid, "RS256")
            except DistrustedKey:
                break
            assert time.monotonic() - distrusted_at < RECHECK + MARGIN
            time.sleep(0.01)
        assert reads.count(CACHE_KEY) <= 2, "the shared list is read once per recheck, not per token"

    def test_refused_before_any_key_set_is_looked_at_so_without_the_issuer(
        self, issuer: FakeIssuer, configure: Configure
    ) -> None:
        configure(issuer, DISTRUSTED_KIDS=[issuer.signing_key.kid])
        issuer.fault = Fault(status=503)
        assert code_of(issuer.mint()) == "distrusted_key"
        assert issuer.jwks_requests == 0

    def test_the_stale_set_of_an_issuer_down_does_not_save_it(self, provider: KeyProvider, issuer: FakeIssuer) -> None:
        raw = issuer.mint()
        validate_token(raw)
        issuer.fault = Fault(status=503)
        other = another_process(provider)
        other.usable_keyset()
        distrust(issuer.signing_key.kid)
        wait_past_recheck()
        with pytest.raises(DistrustedKey):
            other.get_key(issuer.signing_key.kid, "RS256")
        assert code_of(raw) == "distrusted_key"

    def test_the_verified_token_cache_drops_its_hits_at_once(self, issuer: FakeIssuer, configure: Configure) -> None:
        configure(issuer, TOKEN_CACHE_SIZE=8, JWKS_L1_RECHECK=RECHECK)
        raw = issuer.mint()
        for _ in range(3):  # stored on its second verification, a hit on the third
            validate_token(raw)
        cache = get_validator().token_cache
        assert cache is not None
        assert cache.hits == 1
        distrust(issuer.signing_key.kid)
        get_provider(get_settings().issuers[0]).distrusted()
        with pytest.raises(DistrustedKey):
            get_validator().validate_local(raw)  # the event loop's path: a hit, refused from memory
        assert raw not in cache
        assert code_of(raw) == "distrusted_key"

    def test_a_new_process_lets_no_token_pass_before_its_first_read_of_the_list(
        self, provider: KeyProvider, issuer: FakeIssuer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        key = issuer.signing_key
        provider.usable_keyset()
        distrust(key.kid)
        fresh = another_process(provider)
        real_get = fresh.cache.get
        monkeypatch.setattr(fresh.cache, "get", lambda k: time.sleep(0.3 if k == CACHE_KEY else 0) or real_get(k))
        outcomes: list[str] = []

        def request() -> None:
            try:
                fresh.get_key(key.kid, "RS256")
                outcomes.append("accepted")
            except DistrustedKey:
                outcomes.append("distrusted_key")

        threads = [threading.Thread(target=request) for _ in range(2)]
        for thread in threads:
            thread.start()
            time.sleep(0.05)  # the second one arrives while the first reads the list
        for thread in threads:
            thread.join(timeout=5)
        assert outcomes == ["distrusted_key", "distrusted_key"]

    def test_the_event_loop_path_hands_over_when_the_list_is_due(
        self, provider: KeyProvider, issuer: FakeIssuer
    ) -> None:
        key = issuer.signing_key
        assert provider.get_key(key.kid, "RS256") is not None
        assert provider.get_key_nowait(key.kid, "RS256") is not None, "read within the recheck: from memory"
        distrust(key.kid)
        wait_past_recheck()
        assert provider.get_key_nowait(key.kid, "RS256") is None, "due: undecided, validate() reads it off the loop"
        with pytest.raises(DistrustedKey):
            provider.get_key(key.kid, "RS256")
        with pytest.raises(DistrustedKey):
            provider.get_key_nowait(key.kid, "RS256")

    def test_every_door_answers_401_distrusted_key(self, provider: KeyProvider, issuer: FakeIssuer) -> None:
        header = f"Bearer {issuer.mint()}"
        assert set(outcomes(header).values()) == {ACCEPTED}
        distrust(issuer.signing_key.kid)
        provider.distrusted()
        found = outcomes(header)
        assert set(found.values()) == {Outcome(401, "Bearer token is invalid", "distrusted_key")}, found

    def test_other_kids_and_other_issuers_are_untouched(self, provider: KeyProvider, issuer: FakeIssuer) -> None:
        old = issuer.signing_key
        issuer.add_key()
        distrust(old.kid, issuer="https://another-issuer.example/")
        provider.distrusted()
        assert code_of(issuer.mint(key=old)) == "accepted"
        distrust(old.kid, issuer=issuer.issuer)
        provider.distrusted()
        assert code_of(issuer.mint(key=old)) == "distrusted_key"
        assert code_of(issuer.mint()) == "accepted"


class TestTheSharedList:
    def test_trust_undoes_it_and_a_process_that_remembers_the_distrust_does_not_undo_the_trust(
        self, provider: KeyProvider, issuer: FakeIssuer
    ) -> None:
        kid = issuer.signing_key.kid
        distrust(kid)
        remembers = another_process(provider)
        remembers.distrusted()
        ended = trust_kid(shared(), kid, issuer=None)
        assert [(e.kid, e.issuer, e.reason) for e in ended or []] == [(kid, None, "leaked")]
        assert remembers.distrusted() == []
        assert remembers.get_key(kid, "RS256").kid == kid
        assert read_shared(shared())[(None, kid)].trusted, "a record that says so, not a deletion"
        provider.distrusted()
        assert code_of(issuer.mint()) == "accepted"

    def test_a_lost_list_is_written_back_by_a_process_that_holds_it(
        self, provider: KeyProvider, issuer: FakeIssuer, caplog: pytest.LogCaptureFixture
    ) -> None:
        kid = issuer.signing_key.kid
        distrust(kid, reason="leaked in a log")
        provider.distrusted()
        caches["default"].delete(CACHE_KEY)  # a Redis restart, an eviction
        late = another_process(provider)
        assert late.distrusted() == [], "nothing shared: a process started now would not know"
        with caplog.at_level(logging.WARNING, logger="jwtguard"):
            wait_past_recheck()
            with pytest.raises(DistrustedKey):
                provider.get_key(kid, "RS256")
        assert "lacks 1 record(s) this process holds; writing them back" in caplog.text
        [entry] = another_process(provider).distrusted()
        assert (entry.kid, entry.issuer, entry.reason, entry.source) == (kid, None, "leaked in a log", "cache")

    def test_a_write_back_keeps_a_distrust_added_meanwhile(self, provider: KeyProvider, issuer: FakeIssuer) -> None:
        distrust("kid-a")
        provider.distrusted()
        caches["default"].delete(CACHE_KEY)
        distrust("kid-b")  # the operator, on the restarted cache, before any process wrote its list back
        provider.distrusted()
        assert sorted(e.kid for e in another_process(provider).distrusted()) == ["kid-a", "kid-b"]

    def test_distrust_after_a_trust_from_a_clock_ahead_still_wins(self, provider: KeyProvider) -> None:
        ahead = Distrust("kid-a", None, time.time() + 300, time.time() + 3600, trusted=True)
        caches["default"].set(CACHE_KEY, {"v": 1, "records": [ahead.to_record()]})
        distrust("kid-a")
        assert [e.kid for e in provider.distrusted()] == ["kid-a"]

    def test_for_seconds_ends_by_itself(self, provider: KeyProvider, issuer: FakeIssuer) -> None:
        kid = issuer.signing_key.kid
        distrust(kid, seconds=0.3)
        provider.distrusted()
        assert code_of(issuer.mint()) == "distrusted_key"
        time.sleep(0.35)
        provider.distrusted()
        assert code_of(issuer.mint()) == "accepted"

    def test_the_default_lasts_a_year_and_the_entry_as_long(self, provider: KeyProvider) -> None:
        distrust("kid-a")
        [entry] = provider.distrusted()
        assert entry.until - entry.since == DEFAULT_FOR
        cache = caches["default"]
        client = cache._cache.get_client()  # type: ignore[attr-defined]
        assert client.ttl(cache.make_key(CACHE_KEY)) > DEFAULT_FOR - 60

    @pytest.mark.parametrize(
        "document",
        [
            "junk",
            {"v": 2, "records": []},
            {"v": 1, "records": "x"},
            {"v": 1, "records": [1, {"kid": 7}, {"kid": "a", "since": "x", "until": 1e12}, {"kid": "b"}]},
            {"v": 1, "records": [{"kid": "a", "issuer": None, "since": math.nan, "until": math.inf}]},
        ],
    )
    def test_whatever_the_cache_holds_is_read_without_error(self, provider: KeyProvider, document: Any) -> None:
        caches["default"].set(CACHE_KEY, document)
        assert provider.distrusted() == []

    def test_merge_keeps_the_newest_record_of_each_scope(self) -> None:
        old = Distrust("k", None, 1.0, 100.0, "leaked")
        ended = Distrust("k", None, 2.0, 100.0, trusted=True)
        other = Distrust("k", "iss", 1.5, 100.0)
        assert merge({old.scope: old}, {ended.scope: ended, other.scope: other}, now=0) == {
            (None, "k"): ended,
            ("iss", "k"): other,
        }
        assert merge({old.scope: old}, now=100.0) == {}


class TestObservability:
    def test_a_signal_and_a_warning_when_a_process_starts_refusing_and_a_rate_limited_summary(
        self, provider: KeyProvider, issuer: FakeIssuer, sent: list[tuple[str, dict[str, Any]]], caplog: Any
    ) -> None:
        kid = issuer.signing_key.kid
        with caplog.at_level(logging.WARNING, logger="jwtguard"):
            distrust(kid, reason="leaked")
            provider.distrusted()
            for _ in range(5):
                code_of(issuer.mint())
        [(_, announced)] = [s for s in sent if s[0] == "key_distrusted"]
        assert announced == {
            "issuer": issuer.issuer,
            "kid": kid,
            "reason": "leaked",
            "until": announced["until"],
            "source": "cache",
        }
        assert [s[1] for s in sent if s[0] == "distrusted_key_refused"] == [
            {"issuer": issuer.issuer, "refused": {kid: 1}}
        ]
        assert [s[1]["code"] for s in sent if s[0] == "token_rejected"] == ["distrusted_key"] * 5
        assert f"key {kid!r} of {issuer.issuer} is distrusted" in caplog.text
        assert caplog.text.count("refused tokens of") == 1


class TestSetting:
    def test_a_top_level_list_adds_to_each_issuers_own(self) -> None:
        base = {"AUDIENCE": "api", "JWKS_URL": "https://a.example/jwks"}
        parsed = parse_settings(
            {
                "DISTRUSTED_KIDS": ["everywhere"],
                "ISSUERS": [
                    {**base, "ISSUER": "https://a/", "DISTRUSTED_KIDS": ["only-a"]},
                    {**base, "ISSUER": "https://b/"},
                ],
            }
        )
        assert [c.distrusted_kids for c in parsed.issuers] == [
            frozenset({"everywhere", "only-a"}),
            frozenset({"everywhere"}),
        ]

    @pytest.mark.parametrize("value", ["kid-as-a-string", [""], [7], None])
    def test_anything_but_a_list_of_kids_is_refused(self, value: Any) -> None:
        with pytest.raises(ImproperlyConfigured, match="DISTRUSTED_KIDS"):
            parse_settings({"ISSUER": "https://a/", "AUDIENCE": "api", "DISTRUSTED_KIDS": value})

    def test_settings_kids_are_listed_and_cannot_be_trusted_away(
        self, issuer: FakeIssuer, configure: Configure
    ) -> None:
        kid = issuer.signing_key.kid
        configure(issuer, DISTRUSTED_KIDS=[kid])
        provider = get_provider(get_settings().issuers[0])
        [entry] = provider.distrusted()
        assert (entry.kid, entry.source, entry.until) == (kid, "settings", math.inf)
        assert trust_kid(shared(), kid, issuer=None) == []
        assert code_of(issuer.mint()) == "distrusted_key"


class TestForgetStale:
    def test_the_held_set_is_dropped_in_every_process_and_not_given_back(
        self, provider: KeyProvider, issuer: FakeIssuer
    ) -> None:
        kid = issuer.signing_key.kid
        provider.get_key(kid, "RS256")
        other = another_process(provider)
        other.get_key(kid, "RS256")
        issuer.fault = Fault(status=503)
        with pytest.raises(CommandError):
            command("refresh", "--forget-stale")  # still a failure: exit status 1
        with pytest.raises(KeySetUnavailable):
            provider.get_key(kid, "RS256")
        assert other.get_key(kid, "RS256").kid == kid, "from memory until its recheck"
        wait_past_recheck()
        with pytest.raises(KeySetUnavailable):
            other.get_key(kid, "RS256")
        assert another_process(provider).read_shared_keyset() is None, "nobody gave it back"
        issuer.fault = None
        time.sleep(1.05)  # the backoff of the failed fetch without a key set
        assert other.get_key(kid, "RS256").kid == kid, "the next fetch brings a set again"

    def test_without_the_flag_a_failed_refresh_keeps_the_set(self, provider: KeyProvider, issuer: FakeIssuer) -> None:
        provider.usable_keyset()
        issuer.fault = Fault(status=503)
        with pytest.raises(CommandError):
            command("refresh")
        assert provider.get_key(issuer.signing_key.kid, "RS256") is not None


@pytest.mark.slow
class TestHonestBounds:
    """The bounds docs/operations.md promises for a removed key, in real time with short settings."""

    def test_a_removed_key_stops_verifying_within_ttl_plus_recheck_with_the_issuer_up(
        self, issuer: FakeIssuer, configure: Configure
    ) -> None:
        ttl, recheck = 1.0, 0.3
        configure(issuer, JWKS_CACHE_TTL=ttl, JWKS_L1_RECHECK=recheck, JWKS_REFRESH_COOLDOWN=1)
        old = issuer.mint()
        validate_token(old)
        issuer.rotate()
        removed_at = time.monotonic()
        while (code := code_of(old, TokenError)) == "accepted":
            assert time.monotonic() - removed_at <= ttl + recheck + MARGIN
            time.sleep(0.02)
        assert code == "unknown_kid"

    def test_with_the_issuer_down_it_verifies_until_ttl_plus_max_stale_which_is_why_distrust_exists(
        self, issuer: FakeIssuer, configure: Configure
    ) -> None:
        ttl, max_stale = 1.0, 1.5
        configure(issuer, JWKS_CACHE_TTL=ttl, JWKS_MAX_STALE=max_stale, JWKS_L1_RECHECK=0.2, HTTP_TIMEOUT=0.5)
        old = issuer.mint()
        validate_token(old)
        fetched_at = get_provider(get_settings().issuers[0]).status().fetched_at
        assert fetched_at is not None
        issuer.rotate()
        issuer.fault = Fault(status=503)
        time.sleep(max(0.0, fetched_at + ttl + 0.3 - time.time()))
        assert validate_token(old).issuer.issuer == issuer.issuer, "removed, past the TTL, still verifying"
        while time.time() < fetched_at + ttl + max_stale - 0.2:
            validate_token(old)  # accepted all along the stale window
            time.sleep(0.05)
        time.sleep(max(0.0, fetched_at + ttl + max_stale + 0.05 - time.time()))
        with pytest.raises(KeySetUnavailable):
            validate_token(old)


# -- several OS processes on a real Redis ---------------------------------------------------------------------

#: What a bound measured across processes may overrun by: a busy machine may leave a process unscheduled a while.
PROCESS_SLACK = 1.0


def command(*args: str) -> str:
    out = io.StringIO()
    call_command("jwtguard", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.mark.slow
@pytest.mark.redis
class TestAcrossProcesses:
    """Spawned workers (tests/support/workers.py), each with its own Django, sharing one real Redis; the test
    process runs ``manage.py jwtguard`` on the same cache, as an operator would from another pod."""

    @pytest.fixture(autouse=True)
    def _real_redis(self) -> None:
        require_real_redis()

    def configure(self, settings: Any, issuer: FakeIssuer, cache: dict[str, Any]) -> dict[str, Any]:
        jwtguard = issuer.settings(
            JWKS_CACHE_TTL=1, JWKS_L1_RECHECK=RECHECK, JWKS_REFRESH_COOLDOWN=1, HTTP_TIMEOUT=0.5, TOKEN_CACHE_SIZE=100
        )
        settings.CACHES = {"default": cache}
        settings.JWTGUARD = jwtguard
        return jwtguard

    def refused_by_all(self, cluster: Cluster, token: str, since: float, within: float) -> None:
        for answer in cluster.ask("until", {"token": token, "accepted": False, "seconds": within + 3}):
            assert answer["reached_at"] is not None, answer
            assert answer["reached_at"] - since <= within + PROCESS_SLACK, answer["reached_at"] - since
            assert set(answer["rejected"]) == {"distrusted_key"}, answer
            assert answer["unavailable"] == 0

    def test_distrust_with_the_issuer_down_then_a_late_process_then_trust(
        self, settings: Any, issuer: FakeIssuer
    ) -> None:
        cache = real_redis_cache()
        jwtguard = self.configure(settings, issuer, cache)
        token = issuer.mint()
        with Cluster(3, cache=cache, jwtguard=jwtguard) as cluster:
            warm = totals(cluster.ask("validate", {"tokens": [token, token]}))  # the second one a token-cache hit
            assert warm == {**warm, "valid": 6, "errors": []}
            issuer.fault = Fault(status=503)
            time.sleep(1.2)  # past the TTL: every process serves the stale set now
            assert totals(cluster.ask("validate", {"tokens": [token]}))["valid"] == 3
            distrusted_at = time.time()
            command("distrust", issuer.signing_key.kid, "--reason", "leaked")
            self.refused_by_all(cluster, token, distrusted_at, RECHECK)
            with Cluster(1, cache=cache, jwtguard=jwtguard) as late:
                assert totals(late.ask("validate", {"tokens": [token]}))["rejected"] == {"distrusted_key": 1}
            issuer.fault = None
            trusted_at = time.time()
            command("trust", issuer.signing_key.kid)
            for answer in cluster.ask("until", {"token": token, "accepted": True, "seconds": RECHECK + 3}):
                assert answer["reached_at"] is not None
                assert answer["reached_at"] - trusted_at <= RECHECK + PROCESS_SLACK
        for key in ("jwtguard:distrust:v1", "jwtguard:distrust:v1:lock"):
            caches["default"].delete(key)

    def test_distrust_survives_a_redis_restart(
        self, settings: Any, issuer: FakeIssuer, redis_server: RedisServer
    ) -> None:
        cache = real_redis_cache(redis_server.url)
        jwtguard = self.configure(settings, issuer, cache)
        token = issuer.mint()
        with Cluster(3, cache=cache, jwtguard=jwtguard) as cluster:
            assert totals(cluster.ask("validate", {"tokens": [token]}))["valid"] == 3
            distrusted_at = time.time()
            command("distrust", issuer.signing_key.kid)
            self.refused_by_all(cluster, token, distrusted_at, RECHECK)
            redis_server.stop()
            time.sleep(0.5)
            redis_server.start()  # empty: no persistence
            restarted_at = time.time()
            answers = cluster.ask("loop", {"tokens": [token], "until": restarted_at + 2.5, "pause": 0.05})
            result = totals(answers)
            assert result == {**result, "valid": 0, "errors": []}, "refused all along"
            assert set(result["rejected"]) == {"distrusted_key"}
            with Cluster(1, cache=cache, jwtguard=jwtguard) as late:
                assert totals(late.ask("validate", {"tokens": [token]}))["rejected"] == {"distrusted_key": 1}
