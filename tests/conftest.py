"""Fixtures: a real issuer over HTTP on 127.0.0.1, real keys, and the shared cache (fakeredis or real Redis)."""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import caches

from jwtguard.testing import FakeIssuer
from tests.support.loopback import RedisServer, real_redis_cache, require_real_redis

#: Set by scripts/test-wheel.sh: the suite runs against jwtguard as installed from the wheel.
TEST_INSTALLED = os.environ.get("JWTGUARD_TEST_INSTALLED") == "1"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse to test the source tree when the installed wheel is what should be under test."""
    import jwtguard

    if TEST_INSTALLED and "site-packages" not in Path(jwtguard.__file__).parts:
        raise pytest.UsageError(f"JWTGUARD_TEST_INSTALLED=1 but jwtguard is imported from {jwtguard.__file__}")


# -- loopback only -------------------------------------------------------------------------------------------
# Tests may talk to 127.0.0.0/8 and ::1 and nothing else: not even a DNS query for a made-up name, which
# would go to the machine's resolver. An audit hook refuses any other lookup or connection before it leaves
# this process (as a failed name lookup) and fails the test that tried.
_outbound: list[str] = []


def _is_loopback_host(host: object) -> bool:
    if host in ("localhost", "", None):
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return True  # an AF_UNIX path or an already-resolved tuple handled by the caller
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _loopback_only(event: str, args: tuple[Any, ...]) -> None:
    if event == "socket.getaddrinfo":
        host = args[0]
    elif event == "socket.connect" and isinstance(args[1], tuple) and args[1]:
        host = args[1][0]
    else:
        return
    if not _is_loopback_host(host):
        _outbound.append(f"{event} {host!r}")
        raise socket.gaierror(socket.EAI_NONAME, f"tests are loopback-only: {host!r} refused")


sys.addaudithook(_loopback_only)


@pytest.fixture(autouse=True)
def _no_traffic_off_loopback() -> Iterator[None]:
    del _outbound[:]
    yield
    if _outbound:
        attempts = sorted(set(_outbound))
        del _outbound[:]
        pytest.fail(f"the test reached for a host off loopback: {attempts}")


# -- no bug hidden as a 401 ---------------------------------------------------------------------------------
# In production an exception escaping validation that is no JWTGuardError (a bug of ours) answers 401 and is
# logged; here it fails the test. A test that raises one on purpose, to prove that 401, says so with
# @pytest.mark.unexpected_error (and then must see the guard fire).


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "unexpected_error: the test makes validation raise an unexpected exception on purpose "
        "(the last-resort guard of TokenValidator must fire, instead of failing the test)",
    )


@pytest.fixture(autouse=True)
def _no_unexpected_validation_error(request: pytest.FixtureRequest) -> Iterator[None]:
    from jwtguard.validation import TokenValidator

    before = TokenValidator.unexpected_errors
    yield
    fired = TokenValidator.unexpected_errors - before
    expected = request.node.get_closest_marker("unexpected_error") is not None
    if fired and not expected:
        pytest.fail(
            f"an unexpected exception escaped validation {fired} time(s) (answered 401 as invalid_token): "
            "a bug of jwtguard; the log has its traceback"
        )
    if expected and not fired:
        pytest.fail("marked unexpected_error, but validation's last-resort guard never fired")


@pytest.fixture(autouse=True)
def _clean_fake_cache() -> None:
    caches["default"].clear()


@pytest.fixture(params=["fakeredis", pytest.param("redis", marks=pytest.mark.redis)])
def shared_cache(request: pytest.FixtureRequest, settings: Any) -> str:
    """Runs a test twice: on fakeredis, and on the real redis-server at 127.0.0.1:6379."""
    if request.param == "redis":
        require_real_redis()
        settings.CACHES = {"default": real_redis_cache()}
    return str(request.param)


@pytest.fixture
def issuer() -> Iterator[FakeIssuer]:
    with FakeIssuer("RS256") as fake:
        yield fake


@pytest.fixture
def configure(settings: Any) -> Callable[..., None]:
    """Point JWTGUARD at an issuer: ``configure(issuer, LEEWAY=0)``; re-read through setting_changed."""

    def apply(fake: FakeIssuer, **overrides: Any) -> None:
        settings.JWTGUARD = fake.settings(**overrides)

    return apply


@pytest.fixture
def jwtguard_settings(issuer: FakeIssuer, configure: Callable[..., None]) -> FakeIssuer:
    configure(issuer)
    return issuer


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()
