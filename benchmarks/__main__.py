"""``python -m benchmarks``: jwtguard against the floor and the alternatives; prints tables, writes JSON.

``bash benchmarks/run.sh`` installs what this needs (the ``bench`` extra, a Redis, wrk) and runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
SECTIONS = ("cpu", "fetches", "load", "rotation", "latency", "tenants")


def _table(title: str, columns: list[tuple[str, str, str]], rows: list[dict[str, Any]]) -> str:
    """A plain-text table: ``columns`` are (heading, key, format)."""
    cells = [[heading for heading, _, _ in columns]]
    for row in rows:
        cells.append([format(row[key], fmt) if fmt else str(row[key]) for _, key, fmt in columns])
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = [title, "-" * len(title)]
    for index, line in enumerate(cells):
        lines.append(
            "  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(line))
        )
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


CPU_COLUMNS = [
    ("contender", "contender", ""),
    ("us/call (median)", "median_us", ".1f"),
    ("ratio to floor", "ratio_to_floor", ".2f"),
    ("ratio IQR", "ratio_iqr", ".2f"),
    ("JWKS fetches/call", "fetches_per_call", ".2f"),
]


def render(results: dict[str, Any]) -> str:
    parts = []
    cpu = results.get("cpu")
    if cpu:
        for algorithm, rows in cpu["validate"].items():
            parts.append(_table(f"Per-call CPU, validating one valid {algorithm} token", CPU_COLUMNS, rows))
        for algorithm, rows in cpu["drf"].items():
            columns = [(h, k, f) if k != "ratio_to_floor" else ("ratio to DRF+floor", k, f) for h, k, f in CPU_COLUMNS]
            parts.append(_table(f"Per-request CPU, one DRF request ({algorithm}, APIRequestFactory)", columns, rows))
        for algorithm, rows in cpu.get("dpop", {}).items():
            columns = [(h, k, f) if k != "ratio_to_floor" else ("ratio to Bearer", k, f) for h, k, f in CPU_COLUMNS]
            title = f"Per-request CPU, DPoP against Bearer ({algorithm} token, ES256 proof, DPOP allowed, Redis)"
            parts.append(_table(title, columns, rows))
    fetches = results.get("fetches")
    if fetches:
        title = (
            f"JWKS fetches at the issuer: {fetches['workers']} processes x {fetches['requests_per_worker']} requests;"
            f" a cold start; {fetches['unknown_kids_per_worker']} unknown kids per process"
        )
        parts.append(
            _table(
                title,
                [
                    ("contender", "contender", ""),
                    ("steady", "steady", ""),
                    ("cold start", "cold_start", ""),
                    ("unknown-kid flood", "unknown_kid_flood", ""),
                    ("valid tokens refused", "refused_valid_tokens", ""),
                ],
                fetches["rows"],
            )
        )
    load = results.get("load")
    if load and "rows" in load:
        title = (
            f"Requests/s, one DRF view under gunicorn ({load['workers']} workers), wrk {load['connections']} "
            f"connections, {load['rounds']} x {load['duration_s']:g} s per contender"
        )
        parts.append(
            _table(
                title,
                [
                    ("authentication", "contender", ""),
                    ("req/s (median)", "rps", ".0f"),
                    ("ratio to none", "ratio_to_no_auth", ".2f"),
                    ("worker CPU us/request", "server_cpu_us_per_request", ".0f"),
                    ("auth's share (us)", "extra_cpu_us_over_no_auth", ".0f"),
                    ("JWKS fetches", "jwks_fetches", ""),
                    ("non-2xx", "non_2xx", ""),
                ],
                load["rows"],
            )
        )
    elif load:
        parts.append(f"Load benchmark skipped: {load['skipped']}")
    rotation = results.get("rotation")
    if rotation:
        parts.append(_render_rotation(rotation))
    latency = results.get("latency")
    if latency:
        title = (
            "A genuine token (key known, L1 rechecked every request) while forged kids flood an issuer taking "
            f"{latency['rows'][0]['fetch_s']:g} s per fetch ({latency['seconds']:g} s each)"
        )
        columns = [("mode", "mode", ""), ("fetch (s)", "fetch_s", "g")]
        for phase in ("calm", "flood"):
            columns += [(f"{phase} {q} (ms)", f"{phase}_{q}_ms", ".2f") for q in ("p50", "p99", "max")]
        parts.append(_table(title, [*columns, ("p99 ratio", "p99_ratio", ".2f")], latency["rows"]))
    tenants = results.get("tenants")
    if tenants:
        parts.append(render_tenants(tenants))
    return "\n\n".join(parts)


def render_tenants(t: dict[str, Any]) -> str:
    cpu = t["cpu"]
    rows = [
        {"what": "JWKS fetches (first pass, all workers)", "value": t["jwks_fetches"]},
        {"what": "discovery fetches (first pass)", "value": t["discovery_fetches"]},
        {"what": "most JWKS fetches of one issuer", "value": t["max_jwks_fetches_per_issuer"]},
        {"what": "JWKS fetches, second pass (evicted issuers back)", "value": t["jwks_fetches_second_pass"]},
        {"what": f"fetches for {t['untrusted_tokens']} untrusted tokens", "value": t["fetches_for_untrusted"]},
        {"what": f"source calls ({t['untrusted_issuers']} untrusted issuers)", "value": t["source_calls"]},
        {"what": "valid tokens refused", "value": t["refused_valid_tokens"]},
        {"what": "key providers held per worker (most)", "value": t["providers_held_per_worker"]},
        {"what": "RSS per worker at start (MB, most)", "value": t["rss_mb_at_start"]},
        {"what": f"RSS per worker with {t['issuers']} issuers (MB, most)", "value": t["rss_mb_with_issuers"]},
        {"what": "per-token CPU, one issuer (us)", "value": cpu["one_issuer_us"]},
        {"what": f"per-token CPU, {t['issuers']} issuers round-robin (us)", "value": cpu["many_issuers_us"]},
        {"what": f"ratio {t['issuers']} issuers / one issuer", "value": cpu["ratio"]},
        {
            "what": f"per-token CPU, every token an LRU miss (LRU {cpu['lru_for_misses']}) (us)",
            "value": cpu["lru_miss_us"],
        },
        {"what": "fetches during the CPU measurement", "value": cpu["fetches"]},
    ]
    title = f"Many issuers: {t['issuers']} realms, {t['workers']} processes sharing Redis, ISSUER_CACHE_SIZE {t['lru']}"
    return _table(title, [("", "what", ""), ("", "value", "")], rows)


def _render_rotation(rotation: dict[str, Any]) -> str:
    title = (
        f"Rotation under fire: gunicorn ({rotation['gunicorn_workers']} sync workers), {rotation['clients']} clients, "
        f"10 % forged kids, {rotation['seconds_per_phase']:g} s per phase, default settings"
    )
    rows = [{"phase": name, **rotation[name]} for name in ("calm", "rotation", "flood", "slow_issuer")]
    table = _table(
        title,
        [
            ("phase", "phase", ""),
            ("req/s", "rps", ".0f"),
            ("valid p50 (ms)", "valid_p50_ms", ".1f"),
            ("valid p99 (ms)", "valid_p99_ms", ".1f"),
            ("valid refused", "valid_refused", ""),
            ("forged accepted", "forged_accepted", ""),
            ("5xx", "server_errors", ""),
        ],
        rows,
    )
    turn, flood = rotation["rotation"], rotation["flood"]
    return (
        f"{table}\n"
        f"new-key tokens refused after the rotation: {turn['new_key_refused']} of {turn['new_key_tokens']}, "
        f"the last {turn['refused_for_s']:g} s after publication\n"
        f"JWKS requests under forged kids only: {flood['jwks_requests']} in {rotation['seconds_per_phase']:g} s "
        f"= {flood['jwks_per_minute']:g} per minute\n"
        f"slow issuer against calm: throughput x{rotation['slow_rps_ratio']:g}, "
        f"valid p99 x{rotation['slow_p99_ratio']:g}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds per CPU comparison")
    parser.add_argument("--sample-seconds", type=float, default=0.02, help="CPU seconds per sample")
    parser.add_argument("--workers", type=int, default=4, help="processes for the fetch counts")
    parser.add_argument("--requests", type=int, default=100, help="requests per process for the fetch counts")
    parser.add_argument("--flood", type=int, default=50, help="unknown-kid tokens per process")
    parser.add_argument("--duration", type=float, default=2, help="seconds per wrk run")
    parser.add_argument("--load-rounds", type=int, default=7, help="wrk runs per contender")
    parser.add_argument("--issuers", type=int, default=1000, help="realms for the many-issuers run")
    parser.add_argument("--tenant-workers", type=int, default=8, help="processes for the many-issuers run")
    parser.add_argument("--untrusted", type=int, default=10000, help="tokens naming untrusted issuers")
    parser.add_argument("--untrusted-issuers", type=int, default=1000, help="distinct untrusted issuers")
    parser.add_argument("--lru", type=int, default=100, help="ISSUER_CACHE_SIZE of the many-issuers run")
    parser.add_argument("--phase-seconds", type=float, default=4, help="seconds per phase of the rotation benchmark")
    parser.add_argument("--only", choices=SECTIONS, action="append", help="run only these")
    parser.add_argument("--quick", action="store_true", help="a smoke run: few rounds, short runs")
    parser.add_argument("--output", type=Path, default=None, help="JSON file (default: benchmarks/results/)")
    if "--quick" in (argv if argv is not None else sys.argv[1:]):
        # Smaller defaults; any option given explicitly still wins.
        parser.set_defaults(
            rounds=3,
            sample_seconds=0.005,
            requests=5,
            flood=3,
            duration=1,
            load_rounds=1,
            issuers=50,
            tenant_workers=2,
            untrusted=200,
            untrusted_issuers=50,
            lru=10,
            phase_seconds=1,
        )
    args = parser.parse_args(argv)
    sections = args.only or list(SECTIONS)

    from benchmarks import cpu, fetches, load, rotation, tenants
    from benchmarks.common import RemoteIssuer, configure_django, redis_cache, simple_jwt_settings

    started = time.time()
    results: dict[str, Any] = {
        "command": " ".join(["python -m benchmarks", *(argv if argv is not None else sys.argv[1:])]),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
    }
    with RemoteIssuer() as issuer:
        if "cpu" in sections:
            configure_django(
                jwtguard=issuer.jwtguard_settings(),
                simple_jwt=simple_jwt_settings(issuer),
                caches={"default": redis_cache()},
                **issuer.bench_settings(),
            )
            print("per-call CPU ...", file=sys.stderr, flush=True)
            results["cpu"] = cpu.run(issuer, rounds=args.rounds, sample_seconds=args.sample_seconds)
        if "fetches" in sections:
            print("JWKS fetch counts ...", file=sys.stderr, flush=True)
            results["fetches"] = fetches.run(issuer, workers=args.workers, requests=args.requests, flood=args.flood)
        if "load" in sections:
            print("requests per second under gunicorn ...", file=sys.stderr, flush=True)
            results["load"] = load.run(issuer, duration=args.duration, rounds=args.load_rounds)
        if "rotation" in sections:
            print("rotation under fire, gunicorn ...", file=sys.stderr, flush=True)
            results["rotation"] = rotation.run_site(issuer, seconds=args.phase_seconds)
        if "latency" in sections:
            print("a genuine token during a forged-kid flood ...", file=sys.stderr, flush=True)
            results["latency"] = rotation.run_latency(issuer, seconds=args.phase_seconds)
    if "tenants" in sections:
        print("many issuers ...", file=sys.stderr, flush=True)
        results["tenants"] = tenants.run(
            issuers=args.issuers,
            workers=args.tenant_workers,
            untrusted=args.untrusted,
            untrusted_issuers=args.untrusted_issuers,
            lru=args.lru,
            rounds=args.rounds,
        )
    results["seconds"] = round(time.time() - started, 1)
    print(render(results))
    print(f"\n({results['seconds']} s)")
    output = args.output or RESULTS / time.strftime("%Y%m%d-%H%M%S.json", time.localtime(started))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2))
    (output.parent / "latest.json").write_text(json.dumps(results, indent=2)) if args.output is None else None
    print(f"results: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
