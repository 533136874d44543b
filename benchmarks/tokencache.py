"""``python -m benchmarks.tokencache``: what the verified-token cache gains on a repeated token and costs on a new one.

The question it answers (docs/performance.md): should the cache be on by default? A repeated token is a hit;
a token seen once is a miss that the cache makes dearer (the entry is measured, stored, and evicts another).
Both are timed against the same calls with the cache off, in interleaved rounds of one process (ratios taken
within each round), for a usual token and for an 8 KiB token of many tiny claims (the costliest to measure).
The issuer is jwtguard.testing's FakeIssuer on loopback; its key set is fetched once, before any timing.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable, Iterator
from typing import Any

from benchmarks.common import interleaved

#: Distinct tokens cycled through by the "new token each call" contenders: more than any cache below holds,
#: so each of their calls is a miss.
POOL = 600
#: The budget of the cache that the misses go through: holds far fewer tokens than ``POOL``.
MISS_BUDGET = 256 * 1024

SHAPES = ("usual", "8 KiB of tiny claims")


def _claims(shape: str, index: int) -> dict[str, Any]:
    if shape == "usual":
        return {"sub": f"user-{index}", "scope": "read write", "azp": "client-1", "jti": f"jti-{index}"}
    # ~610 one-digit claims: the JSON payload is about 6 KiB, the token about 8 KiB.
    return {"sub": f"user-{index}", **{f"c{n}": n % 10 for n in range(610)}}


def _validator(cache_bytes: int) -> Any:
    from django.conf import settings

    from jwtguard.conf import parse_settings
    from jwtguard.validation import TokenValidator

    return TokenValidator(parse_settings({**settings.JWTGUARD, "TOKEN_CACHE_BYTES": cache_bytes}))


def contenders(issuer: Any, shape: str) -> dict[str, Callable[[], object]]:
    """Per shape: cache off and on, for one repeated token and for a new token each call."""
    pool = [issuer.mint(**_claims(shape, index)) for index in range(POOL)]
    repeated = pool[0]
    off, on, small = _validator(0), _validator(16 * 1024 * 1024), _validator(MISS_BUDGET)

    def cycling(validate: Callable[[str], object]) -> Callable[[], object]:
        tokens: Iterator[str] = itertools.cycle(pool)
        return lambda: validate(next(tokens))

    return {
        f"{shape}: off, repeated token": lambda: off.validate(repeated),
        f"{shape}: on, repeated token (hit)": lambda: on.validate(repeated),
        f"{shape}: off, new token each call": cycling(off.validate),
        f"{shape}: on, new token each call (miss)": cycling(small.validate),
    }


def run(rounds: int, sample_seconds: float) -> list[dict[str, Any]]:
    from django.conf import settings

    from jwtguard.testing import FakeIssuer

    rows: list[dict[str, Any]] = []
    with FakeIssuer("RS256") as issuer:
        settings.JWTGUARD = issuer.settings()
        for shape in SHAPES:
            functions = contenders(issuer, shape)
            names = list(functions)
            # A miss is judged against the same new tokens with the cache off; a hit against the repeated one.
            for baseline, contender in ((names[0], names[1]), (names[2], names[3])):
                samples = interleaved(
                    {baseline: functions[baseline], contender: functions[contender]},
                    baseline=baseline,
                    rounds=rounds,
                    sample_seconds=sample_seconds,
                )
                for name in (baseline, contender):
                    rows.append(
                        {
                            "contender": name,
                            "median_us": round(samples[name].median_us, 2),
                            "ratio_to_off": round(samples[name].ratio, 3),
                        }
                    )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tokencache", description=__doc__)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--sample-seconds", type=float, default=0.02)
    options = parser.parse_args(argv)
    import django
    from django.conf import settings

    settings.configure(
        SECRET_KEY="bench",
        USE_TZ=True,
        INSTALLED_APPS=[],
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
        JWTGUARD={},
    )
    django.setup()
    rows = run(options.rounds, options.sample_seconds)
    width = max(len(row["contender"]) for row in rows)
    print(f"{'contender':<{width}}  {'us/call':>8}  {'ratio to cache off':>18}")
    for row in rows:
        print(f"{row['contender']:<{width}}  {row['median_us']:>8.1f}  {row['ratio_to_off']:>18.2f}")


if __name__ == "__main__":
    main()
