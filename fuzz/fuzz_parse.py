"""Coverage-guided fuzzing of jwtguard's token handling with atheris (libFuzzer). On demand, not in CI.

    .venv/bin/pip install -e '.[fuzz]'                          # atheris (Linux/macOS wheels)
    .venv/bin/python fuzz/fuzz_parse.py                         # until stopped (Ctrl-C)
    .venv/bin/python fuzz/fuzz_parse.py -max_total_time=300     # libFuzzer flags pass through
    .venv/bin/python fuzz/fuzz_parse.py fuzz/artifacts/crash-…  # replay one input

Seeds come from tests/fuzz_corpus/ (committed, and replayed by the test suite); inputs that find new
coverage go to fuzz/corpus/ and crashes to fuzz/artifacts/ (both ignored by git). A crash is any exception
other than a ``TokenError`` (what a 401 is made of), or a token accepted that this harness did not sign.

The first byte of an input picks how the rest becomes a token, so that mutations reach past base64url:

* 0: the token text itself (bytes as latin-1, as WSGI hands header values over);
* 1: header JSON, claims JSON and signature bytes, separated by 0xFF, each base64url-encoded;
* 2: header JSON and claims JSON, separated by 0xFF, signed with the harness's ES256 or EdDSA key
  (kid "es" or "ed"), so mutated claims reach the claim checks behind a valid signature.
"""

from __future__ import annotations

import base64
import contextlib
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "tests" / "fuzz_corpus"
WORK = ROOT / "fuzz" / "corpus"
ARTIFACTS = ROOT / "fuzz" / "artifacts"
DICTIONARY = ROOT / "fuzz" / "jwt.dict"

ISSUER = "https://issuer.fuzz.example/"
AUDIENCE = "https://api.fuzz.example"
#: A fixed clock, so that a crash found with a time claim replays the same way later.
NOW = 1_700_000_000
MAX_TOKEN_BYTES = 8192


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class Harness:
    """A validator with an in-memory key set (no Django settings, no cache, no network)."""

    def __init__(self) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
        from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

        from jwtguard.conf import parse_settings
        from jwtguard.exceptions import UnknownKeyId
        from jwtguard.jwks import KeySet, parse_jwks
        from jwtguard.validation import TokenValidator

        self.es = ec.generate_private_key(ec.SECP256R1())
        self.ed = ed25519.Ed25519PrivateKey.generate()
        rs = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwks = {
            "keys": [
                {**RSAAlgorithm.to_jwk(rs.public_key(), as_dict=True), "kid": "rs", "alg": "RS256"},
                {**ECAlgorithm.to_jwk(self.es.public_key(), as_dict=True), "kid": "es", "alg": "ES256"},
                {**OKPAlgorithm.to_jwk(self.ed.public_key(), as_dict=True), "kid": "ed"},
            ]
        }
        settings = parse_settings(
            {
                "ISSUER": ISSUER,
                "AUDIENCE": AUDIENCE,
                "JWKS_URL": "https://issuer.fuzz.example/jwks",
                "ALGORITHMS": ["RS256", "ES256", "EdDSA"],
                "MAX_TOKEN_BYTES": MAX_TOKEN_BYTES,
            }
        )
        config = settings.issuers[0]
        keyset = KeySet(
            keys=parse_jwks(jwks, config.algorithms, source="fuzz"),
            document=jwks,
            url="https://issuer.fuzz.example/jwks",
            fetched_at=float(NOW),
            fresh_for=1e12,
            max_stale=0.0,
        )

        class StaticKeys:
            def get_key(self, kid: str, alg: str) -> Any:
                key = keyset.find(kid, alg)
                if key is None:
                    raise UnknownKeyId(f"no key {kid!r}")
                return key

        keys = StaticKeys()
        self.validator = TokenValidator(settings, provider_for=lambda config: keys, clock=lambda: float(NOW))  # type: ignore[arg-type,return-value]

    def token(self, data: bytes) -> tuple[str, bool]:
        """The token an input stands for, and whether this harness signed it."""
        mode, rest = (data[0] % 3, data[1:]) if data else (0, b"")
        if mode == 0:
            return rest.decode("latin-1"), False
        if mode == 1:
            parts = (rest.split(b"\xff", 2) + [b"", b""])[:3]
            return ".".join(_b64(part) for part in parts), False
        header, _, claims = rest.partition(b"\xff")
        signing_input = f"{_b64(header)}.{_b64(claims)}".encode()
        signature = self.ed.sign(signing_input) if b'"ed"' in header else self._es256(signing_input)
        return f"{signing_input.decode()}.{_b64(signature)}", True

    def _es256(self, signing_input: bytes) -> bytes:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        r, s = decode_dss_signature(self.es.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def check(self, data: bytes) -> None:
        """Raise if jwtguard does anything but refuse with a ``TokenError`` or accept what we signed."""
        from jwtguard.edge import bearer_token
        from jwtguard.exceptions import MalformedToken, TokenError
        from jwtguard.validation import parse

        raw, signed_here = self.token(data)
        with contextlib.suppress(TokenError):
            bearer_token("Bearer " + raw, strict=False)
        with contextlib.suppress(MalformedToken):
            parse(raw, max_bytes=MAX_TOKEN_BYTES)
        try:
            self.validator.validate(raw)
        except TokenError:
            return
        if not signed_here:
            raise AssertionError(f"a token this harness did not sign was accepted: {raw!r}")


_harness: Harness | None = None


def check(data: bytes) -> None:
    """One input through the harness (the atheris entry point, and what the test suite replays)."""
    global _harness
    if _harness is None:
        _harness = Harness()
    _harness.check(data)


def main(argv: list[str]) -> None:
    import atheris  # type: ignore[import-untyped]

    with atheris.instrument_imports(include=["jwtguard"]):
        import jwtguard.edge
        import jwtguard.jwks
        import jwtguard.validation  # noqa: F401
    args = list(argv)
    if not any(not arg.startswith("-") for arg in args[1:]):
        WORK.mkdir(parents=True, exist_ok=True)
        args += [str(WORK), str(SEEDS)]  # new units go to the first directory, never to the committed seeds
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for flag, value in (("-dict", DICTIONARY), ("-artifact_prefix", f"{ARTIFACTS}/"), ("-max_len", 9000)):
        if not any(arg.startswith(flag + "=") for arg in args):
            args.append(f"{flag}={value}")
    check(b"")  # build the harness (key generation) before the clock starts
    atheris.Setup(args, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
