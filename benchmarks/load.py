"""Requests per second of one DRF view under gunicorn (4 workers), measured with wrk, per authentication class.

The same view answers at ``/bench/<contender>``; the runs of each round go in a rotating order, and each run
is bounded (``--duration`` seconds). jwtguard's workers share the real Redis under this run's key prefix.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.common import RemoteIssuer, free_port, redis_cache, simple_jwt_settings

ROOT = Path(__file__).resolve().parent.parent
PATHS = {
    "none": "no authentication",
    "floor": "floor class (jwt.decode, key preloaded)",
    "jwtguard": "jwtguard class",
    "jwtguard-cache": "jwtguard class, token cache",
    "article": "article's class (PyJWKClient per request)",
}
GUNICORN_WORKERS = 4


def wrk_binary() -> str | None:
    return shutil.which("wrk")


def _wait_until_up(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("gunicorn exited before answering")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer {url} within {timeout}s")


def _settled_count(issuer: RemoteIssuer, quiet: float = 0.3, timeout: float = 10) -> int:
    """The issuer's JWKS count once it stops moving: requests wrk left queued in gunicorn finish first."""
    count = issuer.jwks_requests()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = issuer.jwks_requests()
        if now == count:
            break
        count = now
    return count


def _worker_cpu_seconds(master: int) -> float:
    """CPU (user + system) spent so far by the gunicorn workers of ``master``, read from /proc."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # a process that ended meanwhile
            continue
        if int(fields[1]) == master:  # field 4, the parent pid
            ticks += int(fields[11]) + int(fields[12])  # fields 14 and 15: utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def _get(url: str, token: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


def _wrk(url: str, token: str, duration: float, connections: int, threads: int) -> tuple[float, int, int]:
    """(requests per second, requests done, non-2xx answers) of one bounded wrk run."""
    wrk = wrk_binary()
    assert wrk is not None
    output = subprocess.run(
        [
            wrk,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "--timeout",
            "5s",
            "-H",
            f"Authorization: Bearer {token}",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=duration + 30,
        check=True,
    ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    done = re.search(r"(\d+) requests in", output)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if rps is None or done is None:
        raise RuntimeError(f"cannot read wrk's output:\n{output}")
    return float(rps.group(1)), int(done.group(1)), int(errors.group(1)) if errors else 0


@contextlib.contextmanager
def gunicorn_site(config: dict[str, Any], workers: int = GUNICORN_WORKERS) -> Iterator[tuple[str, int]]:
    """The benchmark site under gunicorn (``workers`` sync workers) with ``config`` as its Django settings:
    yields its ``/bench/`` URL and the master's pid once it answers; stopped on the way out."""
    port = free_port()
    base = f"http://127.0.0.1:{port}/bench/"
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(config, handle)
    env = {**os.environ, "BENCH_SITE_CONFIG": handle.name, "DJANGO_SETTINGS_MODULE": "benchmarks.site.settings"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "benchmarks.site.wsgi:application",
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        _wait_until_up(base + "none", process)
        yield base, process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        os.unlink(handle.name)


def run(
    issuer: RemoteIssuer, *, duration: float, rounds: int, connections: int = 16, threads: int = 2
) -> dict[str, Any]:
    if wrk_binary() is None:
        return {"skipped": "wrk is not installed (benchmarks/run.sh installs it with apt-get)"}
    config = {
        "jwtguard": issuer.jwtguard_settings(),
        "simple_jwt": simple_jwt_settings(issuer),
        "caches": {"default": redis_cache()},
        **issuer.bench_settings(),
    }
    token = issuer.mint("RS256", sub="bench-user", scope="read")
    runs: dict[str, list[float]] = {name: [] for name in PATHS}
    fetches: dict[str, int] = dict.fromkeys(PATHS, 0)
    errors: dict[str, int] = dict.fromkeys(PATHS, 0)
    # The workers' CPU per request: unlike requests per second, hardly moved by other load on the machine.
    cpu: dict[str, list[float]] = {name: [] for name in PATHS}
    with gunicorn_site(config) as (base, master):
        before = issuer.jwks_requests()
        for name in PATHS:
            if _get(base + name, token) != 200:
                raise RuntimeError(f"/bench/{name} refused the benchmark token")
        # Warm every worker of every path (each gunicorn worker reads the key set once).
        for name in PATHS:
            _wrk(base + name, token, 1, connections, threads)  # result unused: a warm-up
        warm_fetches = _settled_count(issuer) - before
        names = list(PATHS)
        for round_number in range(rounds):
            shift = round_number % len(names)
            for name in names[shift:] + names[:shift]:
                before = _settled_count(issuer)
                cpu_before = _worker_cpu_seconds(master)
                rps, done, non_2xx = _wrk(base + name, token, duration, connections, threads)
                fetches[name] += _settled_count(issuer) - before
                cpu[name].append((_worker_cpu_seconds(master) - cpu_before) / max(done, 1) * 1e6)
                errors[name] += non_2xx
                runs[name].append(rps)
    # Ratios within each round (the same minutes of this machine), then their median.
    ratios = {name: [rps / none for rps, none in zip(runs[name], runs["none"], strict=True)] for name in PATHS}
    rows = [
        {
            "contender": label,
            "path": f"/bench/{name}",
            "rps": round(statistics.median(runs[name]), 1),
            "runs": runs[name],
            "ratio_to_no_auth": round(statistics.median(ratios[name]), 3),
            "ratios": [round(ratio, 3) for ratio in ratios[name]],
            "server_cpu_us_per_request": round(statistics.median(cpu[name]), 1),
            "server_cpu_runs": [round(value, 1) for value in cpu[name]],
            "extra_cpu_us_over_no_auth": round(statistics.median(cpu[name]) - statistics.median(cpu["none"]), 1),
            "jwks_fetches": fetches[name],
            "non_2xx": errors[name],
        }
        for name, label in PATHS.items()
    ]
    return {
        "workers": GUNICORN_WORKERS,
        "duration_s": duration,
        "rounds": rounds,
        "connections": connections,
        "wrk_threads": threads,
        "warmup_fetches_all_paths": warm_fetches,
        "rows": rows,
    }
