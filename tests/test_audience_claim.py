"""AUDIENCE_CLAIM: Amazon Cognito access tokens carry the app client in ``client_id`` and no ``aud``."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core.exceptions import ImproperlyConfigured

from jwtguard import validate_token
from jwtguard.conf import get_settings
from jwtguard.exceptions import InvalidAudience, InvalidClaim, MissingClaim
from jwtguard.testing import FakeIssuer

CLIENT_ID = "4r3kc1ient1d"


@pytest.fixture
def cognito(issuer: FakeIssuer, configure: Callable[..., None]) -> FakeIssuer:
    configure(issuer, AUDIENCE=CLIENT_ID, AUDIENCE_CLAIM="client_id")
    return issuer


def cognito_access_token(issuer: FakeIssuer, **claims: object) -> str:
    """Shaped like Cognito's: ``client_id`` and ``token_use``, no ``aud``."""
    return issuer.mint(aud=None, **{"client_id": CLIENT_ID, "token_use": "access", "scope": "read", **claims})


def test_client_id_satisfies_the_audience_when_configured(cognito: FakeIssuer) -> None:
    token = validate_token(cognito_access_token(cognito))
    assert token.claims["client_id"] == CLIENT_ID
    assert "aud" not in token.claims


def test_another_client_id_is_refused(cognito: FakeIssuer) -> None:
    with pytest.raises(InvalidAudience, match="client_id"):
        validate_token(cognito_access_token(cognito, client_id="another-app"))


def test_an_id_token_which_has_aud_but_no_client_id_is_refused(cognito: FakeIssuer) -> None:
    id_token = cognito.mint(aud=CLIENT_ID, token_use="id")
    with pytest.raises(MissingClaim, match="client_id"):
        validate_token(id_token)


def test_a_client_id_that_is_not_a_string_is_refused(cognito: FakeIssuer) -> None:
    with pytest.raises(InvalidClaim):
        validate_token(cognito_access_token(cognito, client_id=[CLIENT_ID]))


def test_by_default_client_id_does_not_stand_in_for_aud(issuer: FakeIssuer, configure: Callable[..., None]) -> None:
    configure(issuer, AUDIENCE=CLIENT_ID)
    assert get_settings().issuers[0].audience_claim == "aud"
    with pytest.raises(MissingClaim, match="aud"):
        validate_token(cognito_access_token(issuer))


@pytest.mark.parametrize("value", ["azp", "", None, ["client_id"]])
def test_only_aud_and_client_id_may_carry_the_audience(
    value: object, issuer: FakeIssuer, configure: Callable[..., None]
) -> None:
    configure(issuer, AUDIENCE_CLAIM=value)
    with pytest.raises(ImproperlyConfigured, match="AUDIENCE_CLAIM"):
        get_settings()
