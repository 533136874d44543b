"""`manage.py jwtguard status | refresh | inspect`, against the real FakeIssuer and the shared cache."""

from __future__ import annotations

import base64
import contextlib
import io
import json
from collections.abc import Callable
from typing import Any

import pytest
import time_machine
from django.core.cache import caches
from django.core.management import call_command, load_command_class
from django.core.management.base import CommandError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jwtguard.conf import get_settings, reset
from jwtguard.jwks import get_provider
from jwtguard.testing import FakeIssuer, Fault

#: JSON values for a token's members, times beyond float range and the hostile kinds included.
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.sampled_from([10**400, -(10**400), 2**63, 1e308, -1e308, 5e-324, -0.0])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


def run(*args: str, stdin: str | None = None, monkeypatch: pytest.MonkeyPatch | None = None) -> str:
    out = io.StringIO()
    if stdin is not None:
        assert monkeypatch is not None
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    call_command("jwtguard", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def new_process() -> None:
    """Forget this process's providers (L1), as a separate `manage.py` run would start without them."""
    reset()


class TestRefreshThenStatus:
    def test_refresh_fetches_into_the_shared_entry_and_status_shows_it(
        self, jwtguard_settings: FakeIssuer, shared_cache: str
    ) -> None:
        issuer = jwtguard_settings
        out = run("refresh")
        assert issuer.jwks_requests == 1
        assert f"{issuer.issuer}: refreshed from {issuer.jwks_url}" in out
        config = get_settings().issuers[0]
        entry_key = get_provider(config).entry_key
        assert entry_key in out

        new_process()
        status = run("status")
        assert issuer.jwks_requests == 1, "status reads the shared entry, it never fetches"
        assert f"issuer {issuer.issuer}" in status
        assert f"JWKS URL:    {issuer.jwks_url}" in status
        assert "alias 'default' (django.core.cache.backends.redis.RedisCache)" in status
        assert f"cache key:   {entry_key}" in status
        assert "key set:     fresh, fetched" in status
        assert "fresh for 600s more" in status or "fresh for 599s more" in status
        assert f"{issuer.signing_key.kid}: RS256" in status
        assert "last fetch:  succeeded at" in status
        # The entry really is in the shared cache, where every worker and pod reads it.
        assert caches["default"].get(entry_key)["url"] == issuer.jwks_url

    def test_status_before_any_fetch_says_none_cached(self, jwtguard_settings: FakeIssuer) -> None:
        status = run("status")
        assert "none cached (run: manage.py jwtguard refresh)" in status
        assert "last fetch:  never fetched" in status
        assert jwtguard_settings.jwks_requests == 0

    def test_status_json(self, jwtguard_settings: FakeIssuer) -> None:
        run("refresh")
        (report,) = json.loads(run("status", "--json"))
        assert report["issuer"] == jwtguard_settings.issuer
        assert report["state"] == "fresh"
        assert list(report["kids"]) == [jwtguard_settings.signing_key.kid]
        assert report["cache_alias"] == "default"

    def test_status_of_a_stale_key_set_after_failed_refreshes(self, jwtguard_settings: FakeIssuer) -> None:
        issuer = jwtguard_settings
        run("refresh")
        issuer.fault = Fault(status=503)
        with time_machine.travel(get_provider(get_settings().issuers[0]).read_shared_keyset().fresh_until + 5):  # type: ignore[union-attr]
            with pytest.raises(CommandError):
                run("refresh")
            status = run("status")
        assert "key set:     stale" in status
        assert "usable for" in status
        assert "last fetch:  FAILED 1 time(s) in a row" in status
        assert "503" in status

    def test_discovered_jwks_url_is_shown(self, issuer: FakeIssuer, configure: Callable[..., None]) -> None:
        configure(issuer, JWKS_URL=None)
        assert f"not yet discovered (from {issuer.url}/.well-known/openid-configuration)" in run("status")
        run("refresh")
        new_process()
        assert f"JWKS URL:    {issuer.jwks_url} (discovered)" in run("status")

    def test_refresh_failure_exits_non_zero(self, jwtguard_settings: FakeIssuer) -> None:
        jwtguard_settings.stop()
        err = io.StringIO()
        with pytest.raises(CommandError, match="could not refresh the key set of") as caught:
            call_command("jwtguard", "refresh", stdout=io.StringIO(), stderr=err)
        assert caught.value.returncode == 1
        assert "refresh FAILED" in err.getvalue()

    def test_only_the_named_issuer(self, jwtguard_settings: FakeIssuer) -> None:
        with pytest.raises(CommandError, match="no issuer 'https://other.example/' is configured"):
            run("status", "--issuer", "https://other.example/")
        assert jwtguard_settings.issuer in run("refresh", "--issuer", jwtguard_settings.issuer)


class TestInspect:
    def test_a_valid_token_is_accepted_and_explained(self, jwtguard_settings: FakeIssuer) -> None:
        out = run("inspect", jwtguard_settings.mint(sub="alice"))
        assert '"sub": "alice"' in out
        assert f'"kid": "{jwtguard_settings.signing_key.kid}"' in out
        assert "accepted: signed by key" in out
        assert "subject 'alice'" in out

    def test_an_expired_token_is_rejected_with_when(self, jwtguard_settings: FakeIssuer) -> None:
        token = jwtguard_settings.mint(expires_in=-3600)
        out = io.StringIO()
        with pytest.raises(CommandError, match=r"token rejected \(token_expired\)"):
            call_command("jwtguard", "inspect", token, stdout=out)
        text = out.getvalue()
        assert "header (not verified)" in text
        assert "claims (not verified)" in text
        assert "rejected: token_expired (expired at 20" in text
        assert "UTC, 60 min ago)" in text

    @pytest.mark.parametrize(
        ("mode", "bound", "said"),
        [
            ("allowed", True, "would be accepted with a DPoP proof by the key it is bound to"),
            ("required", True, "would be accepted with a DPoP proof by the key it is bound to"),
            ("required", False, "bound to no key (no cnf.jkt): this issuer requires DPoP, so it is never accepted"),
        ],
    )
    def test_a_token_that_needs_a_dpop_proof_is_said_to(
        self, issuer: FakeIssuer, configure: Callable[..., None], mode: str, bound: bool, said: str
    ) -> None:
        from jwtguard.testing import DPoPKey

        configure(issuer, DPOP=mode, DPOP_PUBLIC_URL="https://api.example.com")
        token = issuer.mint(cnf=DPoPKey("ES256").cnf) if bound else issuer.mint()
        out = io.StringIO()
        with pytest.raises(CommandError, match=r"token rejected \(dpop_"):
            call_command("jwtguard", "inspect", token, stdout=out)
        assert "the token passed every other check" in out.getvalue()
        assert said in out.getvalue()

    def test_wrong_audience(self, jwtguard_settings: FakeIssuer) -> None:
        out = io.StringIO()
        with pytest.raises(CommandError):
            call_command("jwtguard", "inspect", jwtguard_settings.mint(aud="someone-else"), stdout=out)
        assert "rejected: invalid_audience (aud ['someone-else'] names none of" in out.getvalue()

    def test_not_a_jwt(self, jwtguard_settings: FakeIssuer) -> None:
        out = io.StringIO()
        with pytest.raises(CommandError, match="malformed_token"):
            call_command("jwtguard", "inspect", "not-a-jwt", stdout=out)
        assert "rejected: malformed_token" in out.getvalue()
        assert jwtguard_settings.jwks_requests == 0

    def test_reads_the_token_from_stdin(self, jwtguard_settings: FakeIssuer, monkeypatch: pytest.MonkeyPatch) -> None:
        token = jwtguard_settings.mint(sub="bob")
        assert "subject 'bob'" in run("inspect", "-", stdin=f"Bearer {token}\n", monkeypatch=monkeypatch)

    def test_no_key_set_is_undecided_not_rejected(self, jwtguard_settings: FakeIssuer) -> None:
        token = jwtguard_settings.mint()
        jwtguard_settings.stop()
        out = io.StringIO()
        with pytest.raises(CommandError) as caught:
            call_command("jwtguard", "inspect", token, stdout=out)
        assert caught.value.returncode == 2
        assert "undecided: jwks_unavailable" in out.getvalue()


VERDICTS = ("rejected: ", "accepted: ", "undecided: ")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: str, claims: str) -> str:
    """A forgery anyone can write: JSON text as given (numbers beyond float range too), a made-up signature."""
    return f"{b64url(header.encode())}.{b64url(claims.encode())}.{b64url(b'not a signature')}"


def verdict_of(*args: str, stdin: bytes | None = None, monkeypatch: pytest.MonkeyPatch | None = None) -> str:
    """The output of ``inspect``, which must end on a verdict whatever the input; a CommandError is a verdict's
    exit status, any other exception fails the test."""
    out = io.StringIO()
    if stdin is not None:
        assert monkeypatch is not None
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    with contextlib.suppress(CommandError):
        call_command("jwtguard", "inspect", *args, stdout=out, stderr=io.StringIO())
    text = out.getvalue()
    assert any(line.startswith(VERDICTS) for line in text.splitlines()), text
    return text


class TestInspectAnyInput:
    """``inspect`` prints a verdict for any input: numbers beyond float range, any bytes, never a traceback."""

    @pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
    @pytest.mark.parametrize(
        ("number", "shown"),
        [("1" + "0" * 400, "in the far future"), ("-1" + "0" * 400, "in the far past"), ("1e308", "in the far future")],
    )
    def test_a_time_beyond_float_range_in_an_unsigned_forgery(
        self, jwtguard_settings: FakeIssuer, claim: str, number: str, shown: str
    ) -> None:
        issuer = jwtguard_settings
        members = {"iss": issuer.issuer, "aud": issuer.audience, "sub": "x", "exp": 2000000000, claim: "@"}
        claims = json.dumps(members).replace('"@"', number)  # the number as written, not as Python reads it
        header = f'{{"alg": "RS256", "kid": "{issuer.signing_key.kid}"}}'
        text = verdict_of(unsigned(header, claims))
        assert f"  {claim}: " in text
        assert f"({shown})" in text
        assert "rejected: " in text

    def test_a_genuine_token_with_a_far_future_exp_is_accepted_and_said_so(self, jwtguard_settings: FakeIssuer) -> None:
        text = verdict_of(jwtguard_settings.mint(exp=10**400))
        assert "accepted: " in text
        assert "expires in the far future" in text

    def test_invalid_utf8_on_standard_input_is_a_malformed_token(
        self, jwtguard_settings: FakeIssuer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        assert "rejected: malformed_token" in verdict_of("-", stdin=b"\xff\xfe.\x80.\xc0", monkeypatch=monkeypatch)

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(data=st.binary(max_size=300))
    def test_any_bytes_on_standard_input(
        self, jwtguard_settings: FakeIssuer, monkeypatch: pytest.MonkeyPatch, data: bytes
    ) -> None:
        verdict_of("-", stdin=data, monkeypatch=monkeypatch)

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        header=st.fixed_dictionaries(
            {"alg": st.sampled_from(["RS256", "ES256", "none"]) | JSON_VALUES},
            optional={"kid": st.just("k1") | JSON_VALUES, "typ": JSON_VALUES, "crit": JSON_VALUES},
        ),
        claims=st.dictionaries(st.sampled_from(["iss", "aud", "sub", "exp", "iat", "nbf", "auth_time"]), JSON_VALUES),
    )
    def test_any_json_header_and_claims(
        self, jwtguard_settings: FakeIssuer, header: dict[str, Any], claims: dict[str, Any]
    ) -> None:
        verdict_of(unsigned(json.dumps(header), json.dumps(claims)))


SUBCOMMANDS = ("status", "refresh", "inspect", "distrust", "trust", "distrusted", "forget-issuer")


def test_no_subcommand_is_an_error_that_names_every_subcommand(jwtguard_settings: FakeIssuer) -> None:
    with pytest.raises(CommandError, match="status, refresh, inspect TOKEN, distrust KID") as raised:
        run()
    said = str(raised.value)
    assert [name for name in SUBCOMMANDS if name not in said] == []
    usage = io.StringIO()
    command = load_command_class("jwtguard", "jwtguard")
    command.create_parser("manage.py", "jwtguard").print_help(usage)
    helped = "".join(usage.getvalue().split())  # argparse wraps lines, at hyphens too
    assert [name for name in SUBCOMMANDS if f"'{name}" not in helped] == []
    assert "{" + ",".join(SUBCOMMANDS) + "}" in helped


def test_invalid_settings_are_a_command_error(settings: Any) -> None:
    settings.JWTGUARD = {"AUDIENCE": "x"}
    with pytest.raises(CommandError, match="ISSUER"):
        run("status")


class TestResolvedIssuers:
    """Patterns and ISSUER_SOURCE in ``status``; a tenant's own key set with ``status --issuer``."""

    def test_status_shows_patterns_and_what_this_process_holds(self, settings: Any) -> None:
        from jwtguard.testing import RealmIssuer
        from jwtguard.validation import get_validator

        with RealmIssuer() as server:
            for name in ("acme", "globex", "initech"):
                server.add_realm(name)
            settings.JWTGUARD = {**server.settings(), "ISSUER_CACHE_SIZE": 2}
            for realm in server.realms.values():
                get_validator().validate(realm.mint())
            status = run("status")
            assert f"pattern:     {server.pattern} (JWKS URL: discovered)" in status
            assert "this process: 2 from patterns and 0 from the source held (of 2)" in status
            assert "key providers: 2 held, 1 evicted, 3 key sets fetched" in status
            (report,) = [json.loads(run("status", "--json"))]
            assert report["issuers"] == []
            assert report["resolved_issuers"]["this_process"]["fetched"] == 3
            assert report["resolved_issuers"]["patterns"] == [{"pattern": server.pattern, "jwks_url": None}]
            # One realm's key set, as every process sees it in the shared cache (no fetch):
            realm = run("status", "--issuer", server.issuer_of("acme"))
            assert "key set:     fresh" in realm
            assert server.fetches("certs") == 3

    def test_refresh_without_issuer_says_what_it_does_for_patterns_and_the_source(self, settings: Any) -> None:
        settings.JWTGUARD = {"ISSUERS": [{"ISSUER": "https://sso.example.com/realms/{realm}", "AUDIENCE": "a"}]}
        assert "issuers from patterns and ISSUER_SOURCE are fetched on first use" in run("refresh")
        with pytest.raises(CommandError, match=r"is an ISSUER pattern, not an issuer"):
            run("refresh", "--issuer", "https://sso.example.com/realms/{realm}")

    def test_forget_issuer_without_a_source_says_it_has_nothing_to_drop(self, settings: Any) -> None:
        settings.JWTGUARD = {"ISSUERS": [{"ISSUER": "https://sso.example.com/realms/{realm}", "AUDIENCE": "a"}]}
        with pytest.raises(CommandError, match="no ISSUER_SOURCE is configured"):
            run("forget-issuer", "https://sso.example.com/realms/acme")

    def test_status_of_an_issuer_no_pattern_matches_is_an_error(self, settings: Any) -> None:
        settings.JWTGUARD = {"ISSUERS": [{"ISSUER": "https://sso.example.com/realms/{realm}", "AUDIENCE": "a"}]}
        with pytest.raises(CommandError, match="no issuer 'https://elsewhere.example.com/' is configured"):
            run("status", "--issuer", "https://elsewhere.example.com/")
