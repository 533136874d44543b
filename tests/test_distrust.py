"""Distrust: a kid an operator names is refused everywhere, whatever the key set holds (issue 14, section 1).

Two ``KeyProvider``s on one cache stand for two processes in the fast tests (fakeredis); ``TestAcrossProcesses``
runs real OS processes on a real Redis (``tests/support/workers.py``).
"""

from __future__ import annotations

import io
import logging
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from jwtguard import signals, validate_token
from jwtguard.cache import SharedCache
from jwtguard.conf import get_settings, parse_settings
from jwtguard.distrust import CACHE_KEY, DEFAULT_FOR, Distrust, distrust_kid, merge, read_shared, trust_kid
from jwtguard.exceptions import DistrustedKey, KeySetUnavailable
from jwtguard.jwks import KeyProvider, get_provider
from jwtguard.testing import FakeIssuer, Fault
from jwtguard.validation import get_validator

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


def code_of(raw: str) -> str:
    try:
        validate_token(raw)
    except DistrustedKey as exc:
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
        validate_token(raw)
        validate_token(raw)
        cache = get_validator().token_cache
        assert cache is not None and cache.hits == 1
        distrust(issuer.signing_key.kid)
        get_provider(get_settings().issuers[0]).distrusted()
        with pytest.raises(DistrustedKey):
            get_validator().validate_local(raw)  # the event loop's path: a hit, refused from memory
        assert raw not in cache
        assert code_of(raw) == "distrusted_key"

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
