"""The suite's own guard (tests/conftest.py): nothing in a test may look up or connect to a host off loopback."""

from __future__ import annotations

import socket

import pytest

from tests import conftest


@pytest.mark.parametrize("host", ["idp.example.com", "10.255.255.53", "8.8.8.8", "2001:db8::1"])
def test_a_lookup_off_loopback_is_refused_before_it_leaves(host: str) -> None:
    with pytest.raises(socket.gaierror, match="loopback-only"):
        socket.getaddrinfo(host, 443)
    assert conftest._outbound == [f"socket.getaddrinfo {host!r}"]
    del conftest._outbound[:]  # seen; the autouse fixture would otherwise fail this test


def test_a_connection_off_loopback_is_refused_before_it_leaves() -> None:
    with socket.socket() as sock, pytest.raises(socket.gaierror, match="loopback-only"):
        sock.connect(("192.0.2.1", 443))
    del conftest._outbound[:]


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "localhost"])
def test_loopback_is_allowed(host: str) -> None:
    assert socket.getaddrinfo(host, 6379)
    assert conftest._outbound == []
