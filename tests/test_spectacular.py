"""drf-spectacular: a generated OpenAPI schema shows jwtguard's bearer JWT security scheme."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from django.urls import path
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.validation import validate_schema
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from jwtguard.apps import load_optional_integrations
from jwtguard.authentication import JWTAccessTokenAuthentication
from jwtguard.contrib.spectacular import DPOP_PROOF_NAME, DPOP_SCHEME_NAME, SCHEME_NAME
from jwtguard.testing import FakeIssuer


class FriendSerializer(serializers.Serializer[Any]):
    user = serializers.CharField()


class FriendsView(GenericAPIView):  # not GenericAPIView[Any]: DRF before 3.15 cannot subscript it
    schema = AutoSchema()
    serializer_class = FriendSerializer

    def get(self, request: Request) -> Response:
        return Response({"user": request.user.id})


class CustomAuthentication(JWTAccessTokenAuthentication):
    """A project's own subclass: it is still a bearer JWT."""


class CustomView(FriendsView):
    authentication_classes = [CustomAuthentication]


def generate(view: type[FriendsView]) -> dict[str, Any]:
    schema: dict[str, Any] = SchemaGenerator(patterns=[path("api/v1/friends", view.as_view())]).get_schema(
        request=None, public=True
    )
    return schema


@pytest.fixture
def schema() -> dict[str, Any]:
    return generate(FriendsView)


def test_the_schema_has_a_bearer_jwt_scheme(jwtguard_settings: FakeIssuer, schema: dict[str, Any]) -> None:
    scheme = schema["components"]["securitySchemes"][SCHEME_NAME]
    assert scheme["type"] == "http"
    assert scheme["scheme"] == "bearer"
    assert scheme["bearerFormat"] == "JWT"
    assert jwtguard_settings.issuer in scheme["description"]
    assert jwtguard_settings.audience in scheme["description"]


def test_operations_require_it(schema: dict[str, Any]) -> None:
    assert schema["paths"]["/api/v1/friends"]["get"]["security"] == [{SCHEME_NAME: []}]


def test_a_subclass_is_the_same_scheme() -> None:
    schema = generate(CustomView)
    assert schema["paths"]["/api/v1/friends"]["get"]["security"] == [{SCHEME_NAME: []}]
    assert schema["components"]["securitySchemes"][SCHEME_NAME]["bearerFormat"] == "JWT"


def test_the_schema_is_valid_openapi(schema: dict[str, Any]) -> None:
    validate_schema(schema)


def test_invalid_settings_do_not_break_the_schema(settings: Any) -> None:
    settings.JWTGUARD = {"AUDIENCE": "x"}
    schema = generate(FriendsView)
    assert schema["components"]["securitySchemes"][SCHEME_NAME]["description"] == "A JWT access token."


def test_loaded_when_installed() -> None:
    assert load_optional_integrations() == ["jwtguard.contrib.spectacular"]


def test_not_loaded_without_drf_spectacular(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry in sys.modules is how Python says "this module cannot be imported".
    monkeypatch.setitem(sys.modules, "drf_spectacular", None)
    monkeypatch.delitem(sys.modules, "jwtguard.contrib.spectacular")
    assert load_optional_integrations() == []
    assert "jwtguard.contrib.spectacular" not in sys.modules


def test_with_dpop_allowed_an_operation_takes_bearer_or_dpop_and_its_proof(issuer: FakeIssuer, configure: Any) -> None:
    configure(issuer, DPOP="allowed")
    schema = generate(FriendsView)
    assert schema["paths"]["/api/v1/friends"]["get"]["security"] == [
        {SCHEME_NAME: []},
        {DPOP_SCHEME_NAME: [], DPOP_PROOF_NAME: []},
    ]
    schemes = schema["components"]["securitySchemes"]
    assert schemes[DPOP_SCHEME_NAME]["scheme"] == "DPoP"
    assert schemes[DPOP_PROOF_NAME] == {**schemes[DPOP_PROOF_NAME], "type": "apiKey", "in": "header", "name": "DPoP"}
    validate_schema(schema)


def test_with_dpop_required_an_operation_takes_dpop_only(issuer: FakeIssuer, configure: Any) -> None:
    configure(issuer, DPOP="required")
    schema = generate(FriendsView)
    assert schema["paths"]["/api/v1/friends"]["get"]["security"] == [{DPOP_SCHEME_NAME: [], DPOP_PROOF_NAME: []}]
