"""TokenValidator: real tokens signed with real keys, checked against a real key set served over HTTP."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from jwtguard import exceptions, validate_token
from jwtguard.conf import get_settings
from jwtguard.signals import token_rejected
from jwtguard.testing import FakeIssuer
from jwtguard.validation import AccessToken, get_validator, parse
from tests.support.tokens import b64

Configure = Callable[..., None]
DUPLICATE_SUB = b'{"sub":"a","sub":"b"}'
RS256_HEADER = b'{"alg":"RS256"}'
SUB_A = b'{"sub":"a"}'


def rejection(raw: str) -> exceptions.JWTGuardError:
    with pytest.raises(exceptions.JWTGuardError) as caught:
        validate_token(raw)
    return caught.value


@pytest.fixture
def rejected_codes() -> Iterator[list[str]]:
    codes: list[str] = []

    def receive(sender: object, code: str, **kwargs: Any) -> None:
        codes.append(code)

    token_rejected.connect(receive)
    yield codes
    token_rejected.disconnect(receive)


@pytest.mark.parametrize(
    "algorithm", ["RS256", "RS384", "PS256", "ES256", "ES384", "ES512", "EdDSA", "Ed25519", "Ed448"]
)
def test_a_valid_token_of_each_algorithm_is_accepted(algorithm: str, configure: Configure) -> None:
    with FakeIssuer(algorithm) as issuer:
        configure(issuer)
        token = validate_token(issuer.mint(sub="alice", scope="read write"))
    assert isinstance(token, AccessToken)
    assert token.claims["sub"] == "alice"
    assert token.subject == "alice"
    assert token.header["alg"] == algorithm
    assert token.issuer.issuer == issuer.issuer


def test_the_key_set_is_fetched_once_for_many_tokens(jwtguard_settings: FakeIssuer) -> None:
    for n in range(50):
        validate_token(jwtguard_settings.mint(sub=f"user-{n}"))
    assert jwtguard_settings.jwks_requests == 1


def test_the_key_set_is_found_by_oidc_discovery(issuer: FakeIssuer, configure: Configure) -> None:
    configure(issuer, JWKS_URL=None)
    validate_token(issuer.mint())
    validate_token(issuer.mint())
    assert issuer.requests["/.well-known/openid-configuration"] == 1
    assert issuer.jwks_requests == 1


class TestTime:
    def test_expired_beyond_leeway(self, jwtguard_settings: FakeIssuer) -> None:
        error = rejection(jwtguard_settings.mint(exp=int(time.time()) - 61))
        assert (error.code, error.detail) == ("token_expired", "Bearer token is invalid")

    def test_expired_within_leeway_is_accepted(self, jwtguard_settings: FakeIssuer) -> None:
        validate_token(jwtguard_settings.mint(exp=int(time.time()) - 30))

    def test_leeway_zero_is_exact(self, issuer: FakeIssuer, configure: Configure) -> None:
        configure(issuer, LEEWAY=0)
        assert rejection(issuer.mint(exp=int(time.time()) - 1)).code == "token_expired"

    def test_not_before_in_the_future(self, jwtguard_settings: FakeIssuer) -> None:
        assert rejection(jwtguard_settings.mint(nbf=int(time.time()) + 120)).code == "token_not_yet_valid"

    def test_issued_in_the_future(self, jwtguard_settings: FakeIssuer) -> None:
        assert rejection(jwtguard_settings.mint(iat=int(time.time()) + 120)).code == "token_not_yet_valid"

    def test_exp_is_required(self, jwtguard_settings: FakeIssuer) -> None:
        error = rejection(jwtguard_settings.mint(exp=None))
        assert error.code == "missing_claim"

    @pytest.mark.parametrize("value", ["9999999999", True, False, [1], {"t": 1}])
    @pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
    def test_time_claims_of_the_wrong_type(self, jwtguard_settings: FakeIssuer, claim: str, value: Any) -> None:
        assert rejection(jwtguard_settings.mint(**{claim: value})).code == "invalid_claim"

    @pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
    def test_infinity_is_not_json(self, jwtguard_settings: FakeIssuer, claim: str) -> None:
        assert rejection(jwtguard_settings.mint(**{claim: float("inf")})).code == "malformed_token"

    def test_huge_integers_are_compared_exactly(self, jwtguard_settings: FakeIssuer) -> None:
        validate_token(jwtguard_settings.mint(exp=10**400))
        assert rejection(jwtguard_settings.mint(nbf=10**400)).code == "token_not_yet_valid"
        assert rejection(jwtguard_settings.mint(exp=-(10**400))).code == "token_expired"

    def test_float_times_are_numbers(self, jwtguard_settings: FakeIssuer) -> None:
        validate_token(jwtguard_settings.mint(exp=time.time() + 100.5, iat=time.time() - 0.5))


class TestClaims:
    @pytest.mark.parametrize("claim", ["sub", "jti", "azp", "client_id", "scope"])
    def test_string_claims_must_be_strings(self, jwtguard_settings: FakeIssuer, claim: str) -> None:
        assert rejection(jwtguard_settings.mint(**{claim: 12345})).code == "invalid_claim"

    def test_an_iss_that_is_not_a_string_names_no_issuer(self, jwtguard_settings: FakeIssuer) -> None:
        # Routed before the signature: a number is no configured issuer (issue 13: no fetch for it).
        assert rejection(jwtguard_settings.mint(iss=12345)).code == "invalid_issuer"
        assert jwtguard_settings.jwks_requests == 0

    @pytest.mark.parametrize("scp", [3, [1, "a"], {"a": 1}])
    def test_scp_must_be_a_string_or_list_of_strings(self, jwtguard_settings: FakeIssuer, scp: Any) -> None:
        assert rejection(jwtguard_settings.mint(scp=scp)).code == "invalid_claim"

    def test_iss_missing(self, jwtguard_settings: FakeIssuer) -> None:
        assert rejection(jwtguard_settings.mint(iss=None)).code == "missing_claim"

    @pytest.mark.parametrize("suffix", ["x", "/"])
    def test_iss_must_match_exactly(self, jwtguard_settings: FakeIssuer, suffix: str) -> None:
        error = rejection(jwtguard_settings.mint(iss=jwtguard_settings.issuer + suffix))
        assert (error.code, error.detail) == ("invalid_issuer", "Bearer token is invalid")

    def test_aud_missing(self, jwtguard_settings: FakeIssuer) -> None:
        assert rejection(jwtguard_settings.mint(aud=None)).code == "missing_claim"

    @pytest.mark.parametrize("aud", ["https://other.example", ["a", "b"], [], 7, [7], {"aud": 1}])
    def test_aud_must_name_our_audience(self, jwtguard_settings: FakeIssuer, aud: Any) -> None:
        assert rejection(jwtguard_settings.mint(aud=aud)).code == "invalid_audience"

    def test_aud_list_containing_ours_is_accepted(self, jwtguard_settings: FakeIssuer) -> None:
        validate_token(jwtguard_settings.mint(aud=["https://other.example", jwtguard_settings.audience]))

    def test_one_of_several_configured_audiences_is_enough(self, issuer: FakeIssuer, configure: Configure) -> None:
        configure(issuer, AUDIENCE=["first", issuer.audience])
        validate_token(issuer.mint())

    def test_required_claims(self, issuer: FakeIssuer, configure: Configure) -> None:
        configure(issuer, REQUIRED_CLAIMS=["sub", "jti"])
        assert rejection(issuer.mint()).code == "missing_claim"
        validate_token(issuer.mint(jti="abc"))

    def test_token_type(self, issuer: FakeIssuer, configure: Configure) -> None:
        configure(issuer, TOKEN_TYPE="at+jwt")
        assert rejection(issuer.mint(headers={"typ": "JWT"})).code == "invalid_token_type"
        validate_token(issuer.mint(headers={"typ": "at+jwt"}))
        validate_token(issuer.mint(headers={"typ": "application/AT+JWT"}))


class TestHeader:
    def test_no_kid_is_refused_without_any_fetch(self, jwtguard_settings: FakeIssuer) -> None:
        token = jwtguard_settings.mint(headers={"kid": None})
        error = rejection(token)
        assert (error.code, error.detail) == ("missing_kid", "JWT does not have a valid Key ID")
        assert jwtguard_settings.jwks_requests == 0

    @pytest.mark.parametrize("kid", [7, ["a"], "", "k" * 257])
    def test_unusable_kids_are_refused_without_any_fetch(self, jwtguard_settings: FakeIssuer, kid: Any) -> None:
        assert rejection(jwtguard_settings.mint(headers={"kid": kid})).code == "missing_kid"
        assert jwtguard_settings.jwks_requests == 0

    def test_unknown_kid(self, jwtguard_settings: FakeIssuer) -> None:
        error = rejection(jwtguard_settings.mint(headers={"kid": "not-published"}))
        assert (error.code, error.detail) == ("unknown_kid", "JWT does not have a valid Key ID")

    def test_algorithm_outside_the_allowlist_is_refused_before_any_fetch(
        self, issuer: FakeIssuer, configure: Configure
    ) -> None:
        configure(issuer, ALGORITHMS=["ES256"])
        assert rejection(issuer.mint()).code == "algorithm_not_allowed"
        assert issuer.jwks_requests == 0

    @pytest.mark.parametrize(
        "header", [{"crit": ["exp"]}, {"b64": False}, {"b64": "false"}, {"zip": "DEF"}, {"enc": "A128GCM"}]
    )
    def test_extensions_we_do_not_implement_are_refused(self, jwtguard_settings: FakeIssuer, header: Any) -> None:
        assert rejection(jwtguard_settings.mint(headers=header)).code == "unsupported_header"

    def test_the_signature_must_verify(self, jwtguard_settings: FakeIssuer) -> None:
        head, body, _ = jwtguard_settings.mint().split(".")
        other_body = b64(json.dumps({**json.loads(base64.urlsafe_b64decode(body + "==")), "sub": "admin"}).encode())
        error = rejection(f"{head}.{other_body}.{jwtguard_settings.mint().split('.')[2]}")
        assert (error.code, error.detail) == ("invalid_signature", "Bearer token is invalid")


class TestParse:
    def test_over_the_size_cap_nothing_is_decoded(self) -> None:
        with pytest.raises(exceptions.TokenTooLarge):
            parse("a" * 9000 + ".b.c", max_bytes=8192)

    @pytest.mark.parametrize(
        "raw",
        [
            "",
            "abc",
            "a.b",
            "a.b.c.d.e",
            "a.b.",
            ".b.c",
            "a b.c.d",
            "YQ==.YQ.YQ",
            "a+b.c.d",
            "é.b.c",
            "a.b.c\n",
            "abcde.YQ.YQ",
        ],
    )
    def test_anything_but_a_compact_jws_is_malformed(self, raw: str) -> None:
        with pytest.raises(exceptions.MalformedToken):
            parse(raw, max_bytes=8192)

    @pytest.mark.parametrize(
        "header",
        [
            b'{"alg":"RS256","alg":"none"}',
            b"[1,2]",
            b'"text"',
            b"null",
            b'{"alg":NaN}',
            b'{"alg":"RS256"',
            b"\xff\xfe{}",
            '{"alg":"RS256"}'.encode("utf-16"),
        ],
    )
    def test_the_header_must_be_a_json_object_without_duplicates(self, header: bytes) -> None:
        with pytest.raises(exceptions.MalformedToken):
            parse(f"{b64(header)}.{b64(b'{}')}.c2ln", max_bytes=8192)

    def test_duplicate_claims_are_malformed(self) -> None:
        with pytest.raises(exceptions.MalformedToken):
            parse(f"{b64(b'{}')}.{b64(DUPLICATE_SUB)}.c2ln", max_bytes=8192)

    def test_a_well_formed_token_is_split_once(self) -> None:
        parsed = parse(f"{b64(RS256_HEADER)}.{b64(SUB_A)}.c2ln", max_bytes=8192)
        assert parsed.header == {"alg": "RS256"}
        assert parsed.claims == {"sub": "a"}
        assert parsed.signature == b"sig"


def test_rejections_are_signalled_with_their_code(jwtguard_settings: FakeIssuer, rejected_codes: list[str]) -> None:
    rejection("not-a-token")
    rejection(jwtguard_settings.mint(exp=int(time.time()) - 3600))
    assert rejected_codes == ["malformed_token", "token_expired"]


def test_the_validator_is_rebuilt_when_settings_change(issuer: FakeIssuer, configure: Configure) -> None:
    configure(issuer)
    first = get_validator()
    assert get_validator() is first
    configure(issuer, LEEWAY=1)
    assert get_validator() is not first
    assert get_validator().settings.issuers[0].leeway == 1


class TestValidateLocal:
    """validate_local(): the same answers as validate() whenever no I/O is needed, else None (and no I/O)."""

    def test_cold_it_does_no_io_and_says_so(self, jwtguard_settings: FakeIssuer) -> None:
        assert get_validator().validate_local(jwtguard_settings.mint()) is None
        assert jwtguard_settings.jwks_requests == 0

    def test_warm_it_validates(self, jwtguard_settings: FakeIssuer) -> None:
        validate_token(jwtguard_settings.mint())
        token = get_validator().validate_local(jwtguard_settings.mint(sub="bob"))
        assert token is not None
        assert token.claims["sub"] == "bob"

    def test_refusals_that_need_no_key_are_raised(self, jwtguard_settings: FakeIssuer) -> None:
        with pytest.raises(exceptions.MalformedToken):
            get_validator().validate_local("not-a-token")

    def test_an_unknown_kid_is_left_to_validate(self, jwtguard_settings: FakeIssuer) -> None:
        validate_token(jwtguard_settings.mint())
        assert get_validator().validate_local(jwtguard_settings.mint(headers={"kid": "new"})) is None
        assert jwtguard_settings.jwks_requests == 1


class TestUnicode:
    @staticmethod
    def signed_with_sub(issuer: FakeIssuer, sub: str) -> str:
        # json.dumps escapes every non-ASCII character as \uXXXX, lone surrogates included.
        claims = {"iss": issuer.issuer, "aud": issuer.audience, "exp": int(time.time()) + 60, "sub": sub}
        return issuer.sign({"alg": "RS256", "kid": issuer.signing_key.kid}, json.dumps(claims).encode())

    def test_escaped_characters_are_fine(self, jwtguard_settings: FakeIssuer) -> None:
        token = self.signed_with_sub(jwtguard_settings, "\u00e9\U0001f600")
        assert "\\ud83d\\ude00" in base64.urlsafe_b64decode(token.split(".")[1] + "==").decode()
        assert validate_token(token).claims["sub"] == "\u00e9\U0001f600"

    @pytest.mark.parametrize("sub", ["\ud800", "a\udfffb", "\ude00\ud83d"])
    def test_a_lone_surrogate_is_malformed_even_when_signed(self, jwtguard_settings: FakeIssuer, sub: str) -> None:
        assert rejection(self.signed_with_sub(jwtguard_settings, sub)).code == "malformed_token"


@pytest.mark.unexpected_error
class TestUnexpectedErrors:
    """A bug inside validation is a refusal (invalid_token, logged), never a raw exception at any door."""

    @pytest.fixture
    def broken_verify(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def explode(self: Any, *args: Any) -> Any:
            raise ZeroDivisionError("a bug")

        monkeypatch.setattr("jwtguard.validation.TokenValidator.verify", explode)

    @pytest.mark.usefixtures("broken_verify")
    def test_validate_token_refuses(
        self, jwtguard_settings: FakeIssuer, rejected_codes: list[str], caplog: pytest.LogCaptureFixture
    ) -> None:
        error = rejection(jwtguard_settings.mint())
        assert type(error) is exceptions.TokenError
        assert (error.code, error.detail) == ("invalid_token", "Bearer token is invalid")
        assert isinstance(error.__cause__, ZeroDivisionError)
        assert rejected_codes == ["invalid_token"]
        assert "unexpected error while validating a token" in caplog.text

    @pytest.mark.usefixtures("broken_verify")
    def test_validate_local_refuses(self, jwtguard_settings: FakeIssuer) -> None:
        get_validator().provider(get_settings().issuers[0]).usable_keyset()  # warm: no I/O needed
        with pytest.raises(exceptions.TokenError):
            get_validator().validate_local(jwtguard_settings.mint())
