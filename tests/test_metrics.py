"""`jwtguard.metrics.snapshot()`: key-set counters and rejections by code, and the documented Prometheus recipe."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import time_machine

from jwtguard import metrics, validate_token
from jwtguard.conf import get_settings, reset
from jwtguard.exceptions import KeySetUnavailable, TokenError
from jwtguard.jwks import get_provider
from jwtguard.testing import FakeIssuer, RealmIssuer

RECIPE_PAGE = Path(__file__).resolve().parents[1] / "docs" / "operations.md"


@pytest.fixture(autouse=True)
def _zero_rejections() -> Iterator[None]:
    metrics.reset_rejections()
    yield
    metrics.reset_rejections()


def refused(raw: str) -> str:
    with pytest.raises(TokenError) as caught:
        validate_token(raw)
    return caught.value.code


def test_nothing_counted_before_any_token(jwtguard_settings: FakeIssuer) -> None:
    snap = metrics.snapshot()
    assert snap.fetches == snap.fetch_failures == snap.l1_hits == 0
    assert snap.rejections == {}


def test_fetches_and_l1_hits(jwtguard_settings: FakeIssuer) -> None:
    for _ in range(3):
        validate_token(jwtguard_settings.mint())
    snap = metrics.snapshot()
    assert snap.fetches == 1
    assert snap.l1_hits == 2, "the first token went to L2 and the issuer, the next two were answered from memory"
    assert snap.l2_reads == 1
    (per_issuer,) = snap.issuers
    assert per_issuer.issuer == jwtguard_settings.issuer
    assert per_issuer.fetches == 1


def test_l1_hits_of_the_async_path_count_too(jwtguard_settings: FakeIssuer) -> None:
    # The async middleware asks TokenValidator.validate_local(), which reads L1 through KeyProvider.get_key_nowait().
    from jwtguard.validation import get_validator

    validate_token(jwtguard_settings.mint())
    for _ in range(3):
        assert get_validator().validate_local(jwtguard_settings.mint()) is not None
    assert metrics.snapshot().l1_hits == 3


def test_another_process_reads_l2_without_fetching(jwtguard_settings: FakeIssuer, shared_cache: str) -> None:
    validate_token(jwtguard_settings.mint())
    reset()  # a new process: no providers, no L1
    validate_token(jwtguard_settings.mint())
    snap = metrics.snapshot()
    assert (snap.fetches, snap.l2_reads) == (0, 1)


def test_rejections_by_code(jwtguard_settings: FakeIssuer) -> None:
    assert refused(jwtguard_settings.mint(expires_in=-600)) == "token_expired"
    assert refused(jwtguard_settings.mint(expires_in=-600)) == "token_expired"
    assert refused(jwtguard_settings.mint(aud="elsewhere")) == "invalid_audience"
    assert refused("garbage") == "malformed_token"
    assert metrics.snapshot().rejections == {"token_expired": 2, "invalid_audience": 1, "malformed_token": 1}


def test_failures_and_stale_served(jwtguard_settings: FakeIssuer) -> None:
    validate_token(jwtguard_settings.mint())
    keyset = get_provider(get_settings().issuers[0]).read_shared_keyset()
    assert keyset is not None
    token = jwtguard_settings.mint(expires_in=7200)
    jwtguard_settings.stop()
    with time_machine.travel(keyset.fresh_until + 30, tick=False):
        validate_token(token)
    snap = metrics.snapshot()
    assert snap.fetch_failures == 1
    assert snap.stale_served == 1


def test_no_key_set_counts_a_failure_not_a_rejection(jwtguard_settings: FakeIssuer) -> None:
    jwtguard_settings.stop()
    with pytest.raises(KeySetUnavailable):
        validate_token(jwtguard_settings.mint())
    snap = metrics.snapshot()
    assert snap.fetch_failures == 1
    assert snap.rejections == {}


def test_counters_per_issuer(settings: Any) -> None:
    with FakeIssuer("RS256") as first, FakeIssuer("ES256", audience="https://b.example.test") as second:
        settings.JWTGUARD = {"ISSUERS": [first.settings(), second.settings()]}
        validate_token(first.mint())
        validate_token(second.mint())
        validate_token(second.mint())
    snap = metrics.snapshot()
    assert snap.fetches == 2
    assert {m.issuer: (m.fetches, m.l1_hits) for m in snap.issuers} == {
        first.issuer: (1, 0),
        second.issuer: (1, 1),
    }


def test_as_dict_is_plain_json(jwtguard_settings: FakeIssuer) -> None:
    validate_token(jwtguard_settings.mint())
    refused(jwtguard_settings.mint(expires_in=-600))
    data = json.loads(json.dumps(metrics.snapshot().as_dict()))
    assert data["fetches"] == 1
    assert data["rejections"] == {"token_expired": 1}
    assert data["issuers"][0]["issuer"] == jwtguard_settings.issuer
    assert data["resolved_providers"] == {"held": 0, "evicted": 0, "fetched": 0}


def test_resolved_providers_are_counted(settings: Any) -> None:
    with RealmIssuer() as server:
        for name in ("a", "b", "c"):
            server.add_realm(name)
        settings.JWTGUARD = {**server.settings(), "ISSUER_CACHE_SIZE": 2}
        for realm in server.realms.values():
            validate_token(realm.mint())
        assert metrics.snapshot().resolved_providers == {"held": 2, "evicted": 1, "fetched": 3}


def documented_recipe() -> str:
    blocks = re.findall(r"```python\n(.*?)```", RECIPE_PAGE.read_text(), flags=re.DOTALL)
    (recipe,) = [block for block in blocks if "class JWTGuardCollector" in block]
    return recipe


def test_the_documented_prometheus_recipe_exports_the_counters(jwtguard_settings: FakeIssuer) -> None:
    from prometheus_client import generate_latest

    validate_token(jwtguard_settings.mint())
    refused(jwtguard_settings.mint(expires_in=-600))
    namespace: dict[str, Any] = {}
    exec(compile(documented_recipe(), str(RECIPE_PAGE), "exec"), namespace)
    registry = namespace["REGISTRY"]
    try:
        text = generate_latest(registry).decode()
    finally:
        registry.unregister(namespace["collector"])
    issuer = jwtguard_settings.issuer
    assert f'jwtguard_jwks_fetches_total{{issuer="{issuer}"}} 1.0' in text
    assert f'jwtguard_jwks_fetch_failures_total{{issuer="{issuer}"}} 0.0' in text
    assert 'jwtguard_tokens_rejected_total{code="token_expired"} 1.0' in text
