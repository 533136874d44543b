"""bearer: reading `Authorization: Bearer <token>` and answering with RFC 6750 challenges."""

from __future__ import annotations

import pytest

from jwtguard import exceptions
from jwtguard.bearer import bearer_token, challenge


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
