"""Per-call CPU of validating one token, and of one DRF request, for every contender; ratios to the floor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from benchmarks.common import ALGORITHMS, AUDIENCE, RemoteIssuer, Samples, interleaved

FLOOR = "floor: jwt.decode, key preloaded"
VALIDATE_NAMES = {
    "floor": FLOOR,
    "jwtguard": "jwtguard validate_token",
    "jwtguard-cache": "jwtguard, token cache hit",
    "pyjwkclient": "PyJWKClient singleton",
    "article": "article: PyJWKClient per request",
    "simplejwt": "simplejwt with JWK_URL",
}
DRF_FLOOR = "DRF view + floor class"
# Contenders that fetch the key set on every call: a few calls per sample are plenty.
SLOW_CAP = 8
#: The DPoP comparison: the same DRF view and class, one issuer with DPOP "allowed", a Bearer token against a
#: DPoP-bound token with a fresh ES256 proof per request (made before timing: a proof can be used only once).
DPOP_BEARER = "DRF view + jwtguard, Bearer token"
DPOP_REQUEST = "DRF view + jwtguard, DPoP token + proof"
DPOP_CAP = 200
DPOP_URL = "http://testserver/bench"


def _fetches_per_call(issuer: RemoteIssuer, function: Callable[[], object], calls: int = 10) -> float:
    before = issuer.jwks_requests()
    for _ in range(calls):
        function()
    return (issuer.jwks_requests() - before) / calls


def _report(samples: dict[str, Samples], fetches: dict[str, float]) -> list[dict[str, Any]]:
    return [
        {
            "contender": name,
            "median_us": round(s.median_us, 2),
            "ratio_to_floor": round(s.ratio, 3),
            "ratio_iqr": round(s.spread, 3),
            "fetches_per_call": fetches.get(name, 0.0),
            "rounds": len(s.per_call_us),
        }
        for name, s in samples.items()
    ]


def validate_contenders(issuer: RemoteIssuer, algorithm: str) -> dict[str, Callable[[], object]]:
    import jwt

    from benchmarks import contenders as c
    from jwtguard import validate_token

    raw = issuer.mint(algorithm, sub="bench-user", scope="read write")
    key = issuer.public_key(algorithm)
    iss = issuer.issuer
    client = jwt.PyJWKClient(issuer.jwks_url)
    simple = c.simple_jwt_token_class(algorithm, issuer.jwks_url)
    cached = c.cached_validator()
    names = VALIDATE_NAMES
    return {
        # Everything the floor needs is resolved here, outside the timed call.
        names["floor"]: lambda: jwt.decode(raw, key, algorithms=[algorithm], audience=AUDIENCE, issuer=iss),
        names["jwtguard"]: lambda: validate_token(raw),
        names["jwtguard-cache"]: lambda: cached.validate(raw),
        names["pyjwkclient"]: lambda: c.decode_with_client(client, raw),
        names["article"]: lambda: c.decode_with_client(jwt.PyJWKClient(issuer.jwks_url), raw),
        names["simplejwt"]: lambda: simple(raw),
    }


def drf_contenders(issuer: RemoteIssuer) -> dict[str, Callable[[], object]]:
    from rest_framework.test import APIRequestFactory

    from benchmarks import contenders as c
    from jwtguard.authentication import JWTAccessTokenAuthentication

    factory = APIRequestFactory()
    header = f"Bearer {issuer.mint('RS256', sub='bench-user', scope='read write')}"

    def request_through(view: Callable[..., Any]) -> Callable[[], object]:
        def call() -> object:
            response = view(factory.get("/bench", HTTP_AUTHORIZATION=header))
            response.render()
            if response.status_code != 200:
                raise RuntimeError(f"{view} answered {response.status_code}: {response.content[:200]!r}")
            return response

        return call

    return {
        "DRF view, no authentication": request_through(c.as_view()),
        DRF_FLOOR: request_through(c.as_view(c.FloorAuthentication)),
        "DRF view + jwtguard class": request_through(c.as_view(JWTAccessTokenAuthentication)),
        "DRF view + jwtguard, token cache": request_through(c.as_view(c.CachedJWTAuthentication)),
        "DRF view + simplejwt (JWK_URL)": request_through(c.as_view(c.simple_jwt_authentication())),
        "DRF view + article's class": request_through(c.as_view(c.ArticleAuthentication)),
    }


def dpop_contenders(issuer: RemoteIssuer, proofs: int) -> dict[str, Callable[[], object]]:
    """A Bearer request and a DPoP request through the same view: the proof's price is the difference (one ES256
    signature check, the claims, one ``cache.add`` on the shared Redis)."""
    from rest_framework.test import APIRequestFactory

    from benchmarks import contenders as c
    from jwtguard.authentication import JWTAccessTokenAuthentication
    from jwtguard.testing import DPoPKey

    factory = APIRequestFactory()
    view = c.as_view(JWTAccessTokenAuthentication)
    key = DPoPKey("ES256")
    bearer = f"Bearer {issuer.mint('RS256', sub='bench-user', scope='read write')}"
    bound = issuer.mint("RS256", sub="bench-user", scope="read write", cnf=key.cnf)
    fresh = iter([key.proof("GET", DPOP_URL, access_token=bound) for _ in range(proofs)])

    def check(response: Any) -> object:
        response.render()
        if response.status_code != 200:
            raise RuntimeError(f"answered {response.status_code}: {response.content[:200]!r}")
        return response

    return {
        DPOP_BEARER: lambda: check(view(factory.get("/bench", HTTP_AUTHORIZATION=bearer))),
        DPOP_REQUEST: lambda: check(
            view(factory.get("/bench", HTTP_AUTHORIZATION=f"DPoP {bound}", HTTP_DPOP=next(fresh)))
        ),
    }


def run_dpop(issuer: RemoteIssuer, *, rounds: int, sample_seconds: float) -> list[dict[str, Any]]:
    from django.test import override_settings

    config = issuer.jwtguard_settings(DPOP="allowed", DPOP_PUBLIC_URL=DPOP_URL.rsplit("/", 1)[0])
    with override_settings(JWTGUARD=config):
        # Enough proofs for every call: calibration, then at most DPOP_CAP calls per round.
        functions = dpop_contenders(issuer, proofs=rounds * DPOP_CAP + 100)
        caps = {DPOP_BEARER: DPOP_CAP, DPOP_REQUEST: DPOP_CAP}
        samples = interleaved(functions, baseline=DPOP_BEARER, rounds=rounds, sample_seconds=sample_seconds, caps=caps)
    return _report(samples, {})


def run(issuer: RemoteIssuer, *, rounds: int, sample_seconds: float) -> dict[str, Any]:
    slow = {VALIDATE_NAMES["article"]: SLOW_CAP, "DRF view + article's class": SLOW_CAP}
    results: dict[str, Any] = {"validate": {}, "drf": {}}
    for algorithm in ALGORITHMS:
        functions = validate_contenders(issuer, algorithm)
        samples = interleaved(functions, baseline=FLOOR, rounds=rounds, sample_seconds=sample_seconds, caps=slow)
        fetches = {name: _fetches_per_call(issuer, function) for name, function in functions.items()}
        results["validate"][algorithm] = _report(samples, fetches)
    functions = drf_contenders(issuer)
    samples = interleaved(functions, baseline=DRF_FLOOR, rounds=rounds, sample_seconds=sample_seconds, caps=slow)
    fetches = {name: _fetches_per_call(issuer, function) for name, function in functions.items()}
    results["drf"]["RS256"] = _report(samples, fetches)
    results["dpop"] = {"RS256": run_dpop(issuer, rounds=rounds, sample_seconds=sample_seconds)}
    return results
