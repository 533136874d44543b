"""edge: what every edge shares: the Authorization header, the RFC 6750 challenges, the token on the request."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from jwtguard import edge, exceptions
from jwtguard.edge import bearer_token, challenge
from jwtguard.testing import FakeIssuer


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer abc.def.ghi", "abc.def.ghi"), ("bearer abc", "abc"), ("BEARER   abc  ", "abc")],
)
def test_the_token_of_a_bearer_header(header: str, token: str) -> None:
    assert bearer_token(header, strict=False) == token
    assert bearer_token(header, strict=True) == token


@pytest.mark.parametrize("header", [None, "", "Basic dXNlcjpwYXNz", "Token abc", "Bearer-ish abc"])
def test_absent_or_foreign_headers_are_left_to_others(header: str | None) -> None:
    assert bearer_token(header, strict=False) is None


def test_strict_mode_refuses_absent_and_foreign_headers() -> None:
    with pytest.raises(exceptions.AuthorizationHeaderMissing) as missing:
        bearer_token(None, strict=True)
    assert missing.value.detail == "Authorization header is not present"
    with pytest.raises(exceptions.AuthorizationHeaderInvalid) as foreign:
        bearer_token("Basic abc", strict=True)
    assert foreign.value.detail == "Authorization header must start with Bearer followed by its token"


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Bearer a b", "Bearer a\tb"])
def test_bearer_needs_exactly_one_token_even_when_lenient(header: str) -> None:
    with pytest.raises(exceptions.AuthorizationHeaderInvalid):
        bearer_token(header, strict=False)


def test_challenges() -> None:
    assert challenge() == 'Bearer realm="api"'
    assert challenge(exceptions.AuthorizationHeaderMissing()) == 'Bearer realm="api"'
    assert challenge(exceptions.TokenExpired("at 5")) == (
        'Bearer realm="api", error="invalid_token", error_description="Bearer token is invalid"'
    )
    assert challenge(scope='read "x"') == ('Bearer realm="api", error="insufficient_scope", scope="read \\"x\\""')


def test_refusals_name_the_fault_and_its_answer() -> None:
    expired = edge.refusal_response(exceptions.TokenExpired("at 5"))
    assert expired.status_code == 401
    assert json.loads(expired.content) == {"detail": "Bearer token is invalid", "code": "token_expired"}
    assert expired["WWW-Authenticate"] == edge.challenge(exceptions.TokenExpired("at 5"))
    outage = edge.refusal_response(exceptions.KeySetUnavailable("down", retry_after=7))
    assert (outage.status_code, outage["Retry-After"]) == (503, "7")
    assert not outage.has_header("WWW-Authenticate")
    scope = edge.insufficient_scope_response("read write")
    assert scope.status_code == 403
    assert json.loads(scope.content) == {"detail": edge.INSUFFICIENT_SCOPE, "code": "insufficient_scope"}
    assert scope["WWW-Authenticate"] == 'Bearer realm="api", error="insufficient_scope", scope="read write"'


def test_every_answer_varies_on_authorization() -> None:
    assert edge.vary_on_authorization(HttpResponse())["Vary"] == "Authorization"
    assert edge.vary_on_authorization("not a response") == "not a response"


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_the_token_attached_to_a_request_is_found_there(jwtguard_settings: FakeIssuer, mode: str) -> None:
    request = RequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {jwtguard_settings.mint(sub='alice')}")
    assert edge.request_token(request) is None
    if mode == "sync":
        assert edge.authenticate_request(request) is None
    else:
        assert asyncio.run(edge.aauthenticate_request(request)) is None
    token = edge.request_token(request)
    assert token is not None
    assert token.subject == "alice"
    target: Any = request  # django-stubs knows nothing of auth and jwt, and types user as a database user
    assert target.user.username == "alice"
    assert edge.request_user(request) is target.user
    assert asyncio.run(target.auser()) is target.user
    assert target.auth == target.jwt == token.claims


def test_a_request_without_a_bearer_token_is_left_alone(jwtguard_settings: FakeIssuer) -> None:
    request = RequestFactory().get("/", HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz")
    assert edge.authenticate_request(request) is None
    assert edge.request_token(request) is None
    assert not hasattr(request, "user")


def test_only_an_access_token_is_found_on_a_request() -> None:
    request = RequestFactory().get("/")
    setattr(request, edge.REQUEST_TOKEN_ATTRIBUTE, "forged by a view")
    assert edge.request_token(request) is None
    assert edge.request_token(None) is None


def test_a_refused_request_is_left_unauthenticated(jwtguard_settings: FakeIssuer) -> None:
    request = RequestFactory().get("/", HTTP_AUTHORIZATION="Bearer not-a-jwt")
    refusal = edge.authenticate_request(request)
    assert refusal is not None
    assert refusal.status_code == 401
    assert edge.request_token(request) is None
    assert asyncio.run(edge.aauthenticate_request(request)) is not None
    assert edge.request_token(request) is None


def test_a_challenge_is_written_even_while_the_settings_are_wrong(settings: Any) -> None:
    from jwtguard.edge import challenge

    settings.JWTGUARD = {"AUDIENCE": "x"}  # no ISSUER
    assert challenge() == 'Bearer realm="api"'


class TestDPoPHeaders:
    def test_credentials_take_the_dpop_scheme_only_when_asked(self) -> None:
        from jwtguard.edge import credentials

        assert credentials("DPoP a.b.c", strict=False, dpop=True) == ("DPoP", "a.b.c")
        assert credentials("dpop a.b.c", strict=False, dpop=True) == ("DPoP", "a.b.c")
        assert credentials("Bearer a.b.c", strict=False, dpop=True) == ("Bearer", "a.b.c")
        assert credentials("DPoP a.b.c", strict=False, dpop=False) is None

    def test_with_dpop_required_the_dpop_challenge_stands_alone(self, issuer: FakeIssuer, configure: Any) -> None:
        from jwtguard.edge import challenge
        from jwtguard.exceptions import DPoPReplayed, TokenExpired

        configure(issuer, DPOP="required", DPOP_ALGORITHMS=["ES256"])
        assert challenge() == 'DPoP realm="api", algs="ES256"'
        assert challenge(scope="read") == 'DPoP realm="api", error="insufficient_scope", scope="read", algs="ES256"'
        assert challenge(TokenExpired()) == (
            'DPoP realm="api", error="invalid_token", error_description="Bearer token is invalid", algs="ES256"'
        )
        assert challenge(DPoPReplayed()).startswith('DPoP realm="api", error="invalid_dpop_proof"')

    def test_with_dpop_allowed_a_token_error_is_on_the_bearer_challenge(
        self, issuer: FakeIssuer, configure: Any
    ) -> None:
        from jwtguard.edge import challenge
        from jwtguard.exceptions import TokenExpired

        configure(issuer, DPOP="allowed", DPOP_ALGORITHMS=["ES256", "EdDSA"])
        assert challenge(TokenExpired()) == (
            'Bearer realm="api", error="invalid_token", error_description="Bearer token is invalid", '
            'DPoP realm="api", algs="ES256 EdDSA"'
        )
