"""A smoke run of the benchmark entry point, so that it does not rot: tiny sizes, no timing asserted.

What it does assert are counts, which do not depend on the machine: jwtguard's processes share one fetch
through Redis, and the article's approach fetches once per request.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.loopback import require_real_redis

ROOT = Path(__file__).resolve().parent.parent
WORKERS, REQUESTS = 2, 2


def run_module(arguments: list[str]) -> subprocess.CompletedProcess[str]:
    """``python -m <arguments>`` from the repository root, which must succeed within two minutes."""
    completed = subprocess.run(
        [sys.executable, "-m", *arguments], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed


@pytest.mark.slow
@pytest.mark.redis
def test_the_benchmark_entry_point_runs_and_counts_fetches(tmp_path: Path) -> None:
    require_real_redis()
    output = tmp_path / "results.json"
    completed = run_module(
        [
            "benchmarks",
            "--quick",
            "--only",
            "cpu",
            "--only",
            "fetches",
            "--rounds",
            "1",
            "--sample-seconds",
            "0.001",
            "--workers",
            str(WORKERS),
            "--requests",
            str(REQUESTS),
            "--flood",
            "2",
            "--output",
            str(output),
        ]
    )
    assert "Per-call CPU, validating one valid RS256 token" in completed.stdout
    results = json.loads(output.read_text())
    for algorithm in ("RS256", "ES256", "EdDSA"):
        rows = {row["contender"]: row for row in results["cpu"]["validate"][algorithm]}
        assert rows["floor: jwt.decode, key preloaded"]["ratio_to_floor"] == 1.0
        assert rows["jwtguard validate_token"]["fetches_per_call"] == 0
        assert rows["article: PyJWKClient per request"]["fetches_per_call"] == 1
    dpop = {row["contender"]: row for row in results["cpu"]["dpop"]["RS256"]}
    assert dpop["DRF view + jwtguard, Bearer token"]["ratio_to_floor"] == 1.0
    assert dpop["DRF view + jwtguard, DPoP token + proof"]["median_us"] > 0  # every DPoP request answered 200
    fetches = {row["contender"]: row for row in results["fetches"]["rows"]}
    assert fetches["jwtguard (shared Redis)"]["steady"] == 1
    assert fetches["jwtguard (shared Redis)"]["cold_start"] == 1
    # One window; a second only if the flood outlasts the cooldown (1 s) on a slow machine.
    assert fetches["jwtguard (shared Redis)"]["unknown_kid_flood"] <= 2
    assert fetches["PyJWKClient singleton"]["steady"] == WORKERS
    assert fetches["article: PyJWKClient per request"]["steady"] == WORKERS * REQUESTS
    assert all(row["refused_valid_tokens"] == 0 for row in fetches.values())


@pytest.mark.slow
def test_the_token_cache_benchmark_runs() -> None:
    completed = run_module(["benchmarks.tokencache", "--rounds", "1", "--sample-seconds", "0.001"])
    for shape in ("usual", "8 KiB of tiny claims"):
        assert f"{shape}: on, repeated token (hit)" in completed.stdout
        assert f"{shape}: on, new token each call (miss)" in completed.stdout


@pytest.mark.slow
@pytest.mark.redis
def test_the_many_issuers_benchmark_counts_one_fetch_per_issuer_and_none_for_untrusted(tmp_path: Path) -> None:
    require_real_redis()
    output = tmp_path / "results.json"
    issuers, untrusted_issuers = 50, 20
    completed = run_module(
        [
            "benchmarks",
            "--quick",
            "--only",
            "tenants",
            "--issuers",
            str(issuers),
            "--tenant-workers",
            "2",
            "--untrusted",
            "200",
            "--untrusted-issuers",
            str(untrusted_issuers),
            "--lru",
            "10",
            "--rounds",
            "1",
            "--output",
            str(output),
        ]
    )
    assert "Many issuers: 50 realms, 2 processes sharing Redis" in completed.stdout
    tenants = json.loads(output.read_text())["tenants"]
    assert tenants["jwks_fetches"] == issuers
    assert tenants["discovery_fetches"] == issuers
    assert tenants["max_jwks_fetches_per_issuer"] == 1
    assert tenants["jwks_fetches_second_pass"] == 0
    assert tenants["fetches_for_untrusted"] == 0
    assert tenants["source_calls"] == untrusted_issuers
    assert tenants["refused_valid_tokens"] == 0
    assert tenants["untrusted_refusals"] == {"invalid_issuer": 200}
    assert tenants["providers_held_per_worker"] == 10
    assert tenants["cpu"]["fetches"] == 0


@pytest.mark.slow
@pytest.mark.redis
def test_the_rotation_benchmark_runs_and_holds_the_bounds(tmp_path: Path) -> None:
    """Issue 18's scenario and the flood latency, one second per phase: counts and bounds, no timing ratio."""
    require_real_redis()
    output = tmp_path / "results.json"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--quick",
            "--only",
            "rotation",
            "--only",
            "latency",
            "--output",
            str(output),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "Rotation under fire" in completed.stdout
    rotation = json.loads(output.read_text())["rotation"]
    for phase in ("calm", "rotation", "flood", "slow_issuer"):
        assert rotation[phase]["forged_accepted"] == 0
        assert rotation[phase]["server_errors"] == 0
    assert rotation["calm"]["valid_refused"] == rotation["slow_issuer"]["valid_refused"] == 0
    assert rotation["rotation"]["new_key_tokens"] > 0
    assert rotation["rotation"]["refused_for_s"] <= 2.0
    assert rotation["flood"]["jwks_requests"] <= rotation["seconds_per_phase"] / 1 + 1  # one per 1 s window
