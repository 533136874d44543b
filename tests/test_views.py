"""`jwtguard.views.ready`: a Kubernetes readiness probe over the real FakeIssuer and the shared cache."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.urls import path

from jwtguard import views
from jwtguard.conf import get_settings, reset
from jwtguard.jwks import KeySet, get_provider
from jwtguard.testing import FakeIssuer

urlpatterns = [path("readyz", views.ready)]
pytestmark = pytest.mark.urls(__name__)


def probe(client: Client) -> tuple[int, dict[str, Any]]:
    response = client.get("/readyz")
    assert response["Content-Type"] == "application/json"
    return response.status_code, response.json()


@pytest.fixture
def other_issuer() -> Iterator[FakeIssuer]:
    with FakeIssuer("ES256", audience="https://other.example.test") as fake:
        yield fake


def test_a_cold_pod_becomes_ready_after_one_fetch(jwtguard_settings: FakeIssuer, client: Client) -> None:
    status, body = probe(client)
    assert status == 200
    assert jwtguard_settings.jwks_requests == 1
    (report,) = body["issuers"]
    assert body["ready"] is True
    assert report["issuer"] == jwtguard_settings.issuer
    assert report["ready"] is True
    assert report["state"] == "fresh"
    assert report["jwks_url"] == jwtguard_settings.jwks_url
    assert report["kids"] == {jwtguard_settings.signing_key.kid: ["RS256"]}
    assert report["fresh_for_seconds"] > 590


def test_another_pod_is_ready_from_the_shared_cache_without_fetching(
    jwtguard_settings: FakeIssuer, client: Client, shared_cache: str
) -> None:
    assert probe(client)[0] == 200
    reset()  # another process: no L1, the same shared cache
    assert probe(client)[0] == 200
    assert jwtguard_settings.jwks_requests == 1


def test_no_key_set_and_the_issuer_down_is_503(jwtguard_settings: FakeIssuer, client: Client) -> None:
    jwtguard_settings.stop()
    status, body = probe(client)
    assert status == 503
    assert body["ready"] is False
    (report,) = body["issuers"]
    assert report["state"] == "unavailable"
    assert report["ready"] is False
    assert report["error"]


def probe_then_stop(client: Client, issuer: FakeIssuer) -> KeySet:
    """Ready once, then the issuer goes down; returns the key set the probe obtained."""
    assert probe(client)[0] == 200
    keyset = get_provider(get_settings().issuers[0]).read_shared_keyset()
    assert keyset is not None
    issuer.stop()
    return keyset


def test_stale_within_max_stale_is_still_ready(jwtguard_settings: FakeIssuer, client: Client) -> None:
    keyset = probe_then_stop(client, jwtguard_settings)
    with time_machine.travel(keyset.fresh_until + 60, tick=False):
        status, body = probe(client)
    assert status == 200
    assert body["issuers"][0]["state"] == "stale"
    assert body["issuers"][0]["fresh_for_seconds"] == 0


def test_stale_beyond_max_stale_is_503(jwtguard_settings: FakeIssuer, client: Client) -> None:
    keyset = probe_then_stop(client, jwtguard_settings)
    with time_machine.travel(keyset.stale_until + 60, tick=False):
        status, body = probe(client)
    assert status == 503
    assert body["issuers"][0]["state"] == "unavailable"


def test_cached_key_sets_keep_a_new_process_ready_while_an_issuer_is_down(
    issuer: FakeIssuer, other_issuer: FakeIssuer, settings: Any, client: Client
) -> None:
    settings.JWTGUARD = {"ISSUERS": [issuer.settings(), other_issuer.settings()]}
    assert probe(client)[0] == 200
    reset()  # a new process: only the shared cache remembers
    other_issuer.stop()
    status, body = probe(client)
    assert status == 200
    assert [r["state"] for r in body["issuers"]] == ["fresh", "fresh"]


def test_one_issuer_without_keys_makes_the_pod_unready(
    issuer: FakeIssuer, other_issuer: FakeIssuer, settings: Any, client: Client
) -> None:
    other_issuer.stop()
    settings.JWTGUARD = {"ISSUERS": [issuer.settings(), other_issuer.settings()]}
    status, body = probe(client)
    assert status == 503
    assert [(r["issuer"], r["ready"]) for r in body["issuers"]] == [
        (issuer.issuer, True),
        (other_issuer.issuer, False),
    ]


def test_invalid_settings_are_503_not_500(settings: Any, client: Client) -> None:
    settings.JWTGUARD = {"AUDIENCE": "x"}
    status, body = probe(client)
    assert status == 503
    assert "ISSUER" in body["error"]


def test_the_answer_is_never_cached_and_only_get_or_head(jwtguard_settings: FakeIssuer, client: Client) -> None:
    response = client.get("/readyz")
    assert "no-cache" in response["Cache-Control"]
    assert client.head("/readyz").status_code == 200
    assert client.post("/readyz").status_code == 405


# -- RFC 9728: the protected resource metadata ---------------------------------------------------------------------

METADATA = "/.well-known/oauth-protected-resource"


@pytest.mark.urls("tests.urls")  # the metadata include and the protected views
def test_no_metadata_unless_configured(jwtguard_settings: FakeIssuer, client: Client) -> None:
    assert client.get(METADATA).status_code == 404


@pytest.mark.urls("tests.urls")  # the metadata include and the protected views
def test_the_metadata_names_the_issuers_and_dpop(issuer: FakeIssuer, configure: Any, client: Client) -> None:
    configure(
        issuer,
        DPOP="required",
        RESOURCE_METADATA={"resource": "https://api.example.test", "scopes_supported": ["read:friends"]},
    )
    response = client.get(METADATA)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "public, max-age=3600"
    assert response.json() == {
        "resource": "https://api.example.test",
        "authorization_servers": [issuer.issuer],
        "scopes_supported": ["read:friends"],
        "bearer_methods_supported": ["header"],
        "dpop_signing_alg_values_supported": ["ES256", "RS256", "PS256", "EdDSA"],
        "dpop_bound_access_tokens_required": True,
    }
    assert client.post(METADATA).status_code == 405
    assert client.get(METADATA + "/other").status_code == 404


@pytest.mark.urls("tests.urls")  # the metadata include and the protected views
def test_a_resource_with_a_path_is_served_under_it(issuer: FakeIssuer, configure: Any, client: Client) -> None:
    configure(issuer, RESOURCE_METADATA={"resource": "https://api.example.test/v1", "resource_name": "Friends"})
    assert client.get(METADATA).status_code == 404
    body = client.get(METADATA + "/v1").json()
    assert body["resource"] == "https://api.example.test/v1"
    assert body["resource_name"] == "Friends"
    assert "dpop_signing_alg_values_supported" not in body  # DPoP off


@pytest.mark.urls("tests.urls")  # the metadata include and the protected views
def test_every_challenge_names_the_metadata(issuer: FakeIssuer, configure: Any, client: Client) -> None:
    configure(issuer, DPOP="allowed", RESOURCE_METADATA={"resource": "https://api.example.test/v1"})
    response = client.get("/api/v1/friends", headers={"Authorization": "Bearer not-a-jwt"})
    assert response.status_code == 401
    url = "https://api.example.test/.well-known/oauth-protected-resource/v1"
    assert response["WWW-Authenticate"].count(f'resource_metadata="{url}"') == 2  # the Bearer and the DPoP challenge
    scoped = client.get("/jwt/required-two-scopes", headers={"Authorization": f"Bearer {issuer.mint()}"})
    assert scoped.status_code == 403
    assert f'resource_metadata="{url}"' in scoped["WWW-Authenticate"]


@pytest.mark.urls("tests.urls")  # the metadata include and the protected views
def test_patterns_are_no_authorization_servers_nor_is_an_empty_list(
    issuer: FakeIssuer, settings: Any, client: Client
) -> None:
    # A pattern is not an issuer identifier, and [] would tell clients there is no authorization server at all:
    # the member is left to RESOURCE_METADATA. DPoP is read from the pattern.
    entra = {"ISSUER": "https://login.microsoftonline.com/{tid}/v2.0", "AUDIENCE": "api://orders", "DPOP": "required"}
    settings.JWTGUARD = {"ISSUERS": [entra], "RESOURCE_METADATA": {"resource": "https://api.example.test"}}
    body = client.get(METADATA).json()
    assert "authorization_servers" not in body
    assert body["dpop_bound_access_tokens_required"] is True
    given = ["https://login.microsoftonline.com/organizations/v2.0"]
    settings.JWTGUARD = {
        "ISSUERS": [entra],
        "RESOURCE_METADATA": {"resource": "https://api.example.test", "authorization_servers": given},
    }
    assert client.get(METADATA).json()["authorization_servers"] == given
