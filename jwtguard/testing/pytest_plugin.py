"""pytest plugin (entry point ``pytest11``): test your API with real signed tokens from a real local issuer.

* ``jwt_issuer``: a ``FakeIssuer`` serving its JWKS on 127.0.0.1 for the test, with ``JWTGUARD`` pointed
  at it (your other ``JWTGUARD`` keys and your ``AUDIENCE`` are kept). Mint with ``jwt_issuer.mint(...)``.
* ``jwt_client``: ``jwt_client(scope="read:friends")`` is a DRF ``APIClient`` (Django's ``Client`` without
  DRF) that sends a token minted with those claims; ``jwt_client.async_client(...)`` is an ``AsyncClient``.
* ``@pytest.mark.jwt_issuer(algorithm="ES256", audience="...", settings={"LEEWAY": 0})`` tunes the issuer.

It loads in every test run of a project that installs jwtguard, so Django and jwtguard are imported inside
the fixtures only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from jwtguard.testing.clients import TokenClients
    from jwtguard.testing.issuer import FakeIssuer

MARKER = "jwt_issuer"
#: Keys that name an issuer and its keys: the test's issuer replaces them; every other key is kept.
_IDENTITY_KEYS = frozenset({"ISSUER", "ISSUERS", "JWKS_URL", "ALGORITHMS", "AUDIENCE"})


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(algorithm='RS256', audience=None, issuer=None, settings=None): how the jwt_issuer "
        "fixture makes its FakeIssuer; `settings` are JWTGUARD keys applied on top.",
    )


def _project_settings() -> Mapping[str, Any]:
    from django.conf import settings

    value = getattr(settings, "JWTGUARD", None)
    return value if isinstance(value, Mapping) else {}


def _first_issuer_entry(current: Mapping[str, Any]) -> Mapping[str, Any]:
    entries = current.get("ISSUERS")
    if isinstance(entries, (list, tuple)) and entries and isinstance(entries[0], Mapping):
        return entries[0]
    return {}


def project_audience(current: Mapping[str, Any]) -> str | list[str] | None:
    """The audience the project accepts (top level, else its first ``ISSUERS`` entry), so tests mint for it."""
    audience = current.get("AUDIENCE", _first_issuer_entry(current).get("AUDIENCE"))
    if isinstance(audience, str) and audience:
        return audience
    if isinstance(audience, (list, tuple)) and audience and all(isinstance(a, str) for a in audience):
        return list(audience)
    return None


def issuer_settings(
    issuer: FakeIssuer,
    current: Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    audience: str | list[str] | None = None,
) -> dict[str, Any]:
    """The project's ``JWTGUARD`` with ``issuer`` in place of its issuer(s); ``overrides`` win."""
    kept = {**_first_issuer_entry(current), **current}
    value = {key: item for key, item in kept.items() if key not in _IDENTITY_KEYS}
    value.update(issuer.settings())
    if audience is not None:
        value["AUDIENCE"] = audience
    value.update(overrides or {})
    return value


def forget_cached_keys() -> None:
    """Delete what jwtguard keeps in the cache for the configured issuers.

    A test cache (LocMemCache, a shared Redis) outlives the test, and a later issuer may get the same
    port, hence the same JWKS URL: its test must not start with the previous issuer's keys.
    """
    from jwtguard import issuers
    from jwtguard.conf import get_settings
    from jwtguard.jwks import get_provider, providers

    for config in get_settings().issuers:
        get_provider(config).forget()
    # Issuers resolved from a pattern or ISSUER_SOURCE during the test: their keys and the source's answers.
    for provider in providers():
        provider.forget()
    for iss in issuers.held_issuers():
        issuers.forget(iss)


def _point_jwtguard_at(request: pytest.FixtureRequest, value: dict[str, Any]) -> Callable[[], None]:
    """Set ``JWTGUARD`` for this test: through pytest-django's ``settings`` fixture, else override_settings."""
    try:
        settings = request.getfixturevalue("settings")
    except pytest.FixtureLookupError:
        from django.test import override_settings

        override = override_settings(JWTGUARD=value)
        override.enable()
        return override.disable
    settings.JWTGUARD = value
    return lambda: None  # pytest-django's fixture restores the settings itself, after this fixture


@pytest.fixture
def jwt_issuer(request: pytest.FixtureRequest) -> Iterator[FakeIssuer]:
    """A real issuer on 127.0.0.1 for this test, and ``JWTGUARD`` pointed at it."""
    from jwtguard.testing.issuer import DEFAULT_AUDIENCE, FakeIssuer

    marker = request.node.get_closest_marker(MARKER)
    options: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    overrides = options.pop("settings", None) or {}
    algorithm = options.pop("algorithm", "RS256")
    current = _project_settings()
    audience = options.pop("audience", None) or project_audience(current)
    mint_for = audience if isinstance(audience, str) else (audience[0] if audience else DEFAULT_AUDIENCE)
    with FakeIssuer(algorithm, audience=mint_for, **options) as issuer:
        restore = _point_jwtguard_at(request, issuer_settings(issuer, current, overrides, audience))
        try:
            forget_cached_keys()
            yield issuer
        finally:
            try:
                forget_cached_keys()
            finally:
                restore()


@pytest.fixture
def jwt_client(jwt_issuer: FakeIssuer) -> TokenClients:
    """``jwt_client(**claims)``: a test client sending a token from ``jwt_issuer`` minted with ``claims``."""
    from jwtguard.testing.clients import TokenClients

    return TokenClients(jwt_issuer)
