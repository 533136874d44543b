"""The URL policy, written once: what conf accepts, what the E006 check shows, what fetch refuses."""

from __future__ import annotations

import pytest

from jwtguard import urlpolicy


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8000/x", True),
        ("http://127.9.9.9/x", True),
        ("http://[::1]:8000/x", True),
        ("http://localhost/x", True),
        ("http://10.0.0.1/x", False),
        ("https://localhost.example.com/x", False),
        ("http://[::1/x", False),
    ],
)
def test_loopback_urls(url: str, loopback: bool) -> None:
    assert urlpolicy.is_loopback_url(url) is loopback


@pytest.mark.parametrize(
    ("url", "fetched"),
    [
        ("https://idp.example.com/jwks", True),
        ("HTTPS://idp.example.com/jwks", True),
        ("http://127.0.0.1:8000/jwks", True),
        ("http://localhost/jwks", True),
        ("http://idp.example.com/jwks", False),
        ("HTTP://idp.example.com/jwks", False),
        ("ftp://idp.example.com/jwks", False),
        ("https:///jwks", False),
        ("https://idp.example.com:99999/jwks", False),
        ("https://[::1/jwks", False),
        ("idp.example.com/jwks", False),
    ],
)
def test_what_is_fetched(url: str, fetched: bool) -> None:
    assert urlpolicy.may_fetch(url) is fetched


@pytest.mark.parametrize(
    ("url", "remote_http"),
    [
        ("http://idp.example.com/jwks", True),
        ("HTTP://idp.example.com/jwks", True),
        ("http://127.0.0.1/jwks", False),
        ("https://idp.example.com/jwks", False),
        ("not a url", False),
        ("http://[::1", False),
    ],
)
def test_plain_http_off_loopback(url: str, remote_http: bool) -> None:
    assert urlpolicy.is_remote_plain_http(url) is remote_http


@pytest.mark.parametrize(
    ("url", "is_url"),
    [
        ("https://idp.example.com/jwks", True),
        ("http://idp.example.com/jwks", True),
        ("https://idp.example.com:99999/jwks", False),
        ("ftp://idp.example.com/", False),
        ("https://", False),
    ],
)
def test_what_a_url_setting_may_be(url: str, is_url: bool) -> None:
    assert urlpolicy.is_http_url(url) is is_url


@pytest.mark.parametrize(
    ("discovery", "jwks_uri", "followed"),
    [
        ("https://idp.example.com/.well-known/openid-configuration", "https://keys.example.com/jwks", True),
        ("https://idp.example.com/.well-known/openid-configuration", "http://127.0.0.1/jwks", False),
        ("http://127.0.0.1:8000/.well-known/openid-configuration", "http://127.0.0.1:8000/jwks", True),
    ],
)
def test_an_https_issuer_never_sends_us_to_plain_http(discovery: str, jwks_uri: str, followed: bool) -> None:
    assert urlpolicy.may_follow(discovery, jwks_uri) is followed
