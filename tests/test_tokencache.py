"""The verified-token cache: opt-in, bounded, per process; a hit re-checks time and key, a key-set change misses."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from jwtguard import exceptions, validate_token
from jwtguard.conf import get_settings, parse_settings
from jwtguard.testing import FakeIssuer
from jwtguard.tokencache import TokenCache
from jwtguard.validation import TokenValidator, get_validator

Configure = Callable[..., None]


def cache_of(validator: TokenValidator) -> TokenCache:
    assert validator.token_cache is not None
    return validator.token_cache


@pytest.fixture
def cached(issuer: FakeIssuer, configure: Configure) -> FakeIssuer:
    configure(issuer, TOKEN_CACHE_SIZE=8)
    return issuer


def test_off_by_default(jwtguard_settings: FakeIssuer) -> None:
    assert get_settings().token_cache_size == 0
    validate_token(jwtguard_settings.mint())
    assert get_validator().token_cache is None


def test_a_repeated_token_is_a_hit_with_the_same_claims(cached: FakeIssuer) -> None:
    raw = cached.mint(sub="alice", scope="read")
    first = validate_token(raw)
    second = validate_token(raw)
    cache = cache_of(get_validator())
    assert (cache.hits, cache.misses, len(cache)) == (1, 1, 1)
    assert second.claims == first.claims
    assert second.header == first.header
    assert second.raw == raw
    assert second.issuer is first.issuer
    assert cached.jwks_requests == 1


def test_a_hit_hands_out_its_own_claims(cached: FakeIssuer) -> None:
    raw = cached.mint(sub="alice")
    validate_token(raw).claims["sub"] = "mallory"
    assert validate_token(raw).claims["sub"] == "alice"


def test_each_token_has_its_own_entry(cached: FakeIssuer) -> None:
    alice, bob = cached.mint(sub="alice"), cached.mint(sub="bob")
    validate_token(alice)
    validate_token(bob)
    assert validate_token(alice).subject == "alice"
    assert validate_token(bob).subject == "bob"
    assert cache_of(get_validator()).hits == 2


def test_a_refused_token_is_never_cached(cached: FakeIssuer) -> None:
    expired = cached.mint(exp=int(time.time()) - 3600)
    forged = cached.mint()[:-4] + "AAAA"
    for raw in (expired, forged, expired, forged):
        with pytest.raises(exceptions.TokenError):
            validate_token(raw)
    cache = cache_of(get_validator())
    assert (len(cache), cache.hits) == (0, 0)


def test_the_times_are_checked_again_on_every_hit(cached: FakeIssuer, configure: Configure) -> None:
    configure(cached, TOKEN_CACHE_SIZE=8, LEEWAY=0)
    now = [time.time()]
    validator = TokenValidator(get_settings(), clock=lambda: now[0])
    raw = cached.mint(expires_in=300)
    validator.validate(raw)
    now[0] += 200
    validator.validate(raw)
    assert cache_of(validator).hits == 1
    now[0] += 200
    with pytest.raises(exceptions.TokenExpired):
        validator.validate(raw)
    assert raw not in cache_of(validator)


def test_the_async_path_keeps_an_entry_it_cannot_check_without_io(cached: FakeIssuer) -> None:
    # When L1 is due for its recheck, validate_local() must hand over to validate() (in a thread), which
    # finds the key unchanged in L2: a hit, not a second signature check of a token already verified.
    from jwtguard.jwks import get_provider

    raw = cached.mint()
    validate_token(raw)
    validator = get_validator()
    get_provider(get_settings().issuers[0])._checked_at = float("-inf")  # the recheck is due
    assert validator.validate_local(raw) is None
    assert raw in cache_of(validator)
    validator.validate(raw)
    assert cache_of(validator).hits == 1


def test_a_removed_key_stops_validating_its_cached_tokens(cached: FakeIssuer) -> None:
    old = cached.signing_key
    raw = cached.mint()
    cached.add_key()
    validate_token(raw)
    assert validate_token(raw).header["kid"] == old.kid
    cached.remove_key(old.kid)
    get_validator().provider(get_settings().issuers[0]).refresh()
    with pytest.raises(exceptions.UnknownKeyId):
        validate_token(raw)
    assert raw not in cache_of(get_validator())


def test_a_refetched_key_set_makes_a_miss_then_a_fresh_entry(cached: FakeIssuer) -> None:
    raw = cached.mint()
    validate_token(raw)
    cached.etag_enabled = False  # a 200 with the same keys: new key objects all the same
    get_validator().provider(get_settings().issuers[0]).refresh()
    cache = cache_of(get_validator())
    validate_token(raw)
    assert (cache.hits, cache.misses) == (0, 2)
    validate_token(raw)
    assert cache.hits == 1


def test_the_size_is_bounded_least_recently_used_first(cached: FakeIssuer, configure: Configure) -> None:
    configure(cached, TOKEN_CACHE_SIZE=2)
    one, two, three = (cached.mint(sub=name) for name in ("one", "two", "three"))
    validate_token(one)
    validate_token(two)
    validate_token(one)  # `one` is now the most recently used
    validate_token(three)
    cache = cache_of(get_validator())
    assert len(cache) == 2
    assert one in cache
    assert three in cache
    assert two not in cache


def test_a_settings_change_starts_an_empty_cache(cached: FakeIssuer, configure: Configure) -> None:
    raw = cached.mint()
    validate_token(raw)
    configure(cached, TOKEN_CACHE_SIZE=8, LEEWAY=5)
    assert len(cache_of(get_validator())) == 0


@pytest.mark.parametrize("size", [-1, True, "10", 1.5, None, 10**7])
def test_the_size_setting_is_validated(size: Any) -> None:
    with pytest.raises(ImproperlyConfigured, match="TOKEN_CACHE_SIZE"):
        parse_settings({"ISSUER": "https://issuer.example/", "AUDIENCE": "api", "TOKEN_CACHE_SIZE": size})


def test_a_cache_holds_at_least_one_token() -> None:
    with pytest.raises(ValueError, match="at least one"):
        TokenCache(0)


def test_discard_and_clear() -> None:
    cache = TokenCache(4)
    cache.discard("absent")
    cache.clear()
    assert len(cache) == 0
