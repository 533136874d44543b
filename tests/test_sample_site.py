"""End to end: sample_site under gunicorn with 4 workers, a real issuer, a real shared cache, 400 requests.

The promise under test is the project's reason to exist: however many worker processes answer, the issuer
is asked for its key set once. The issuer is a ``FakeIssuer`` in this process (its counters are read
directly); the site runs in a gunicorn subprocess on a free loopback port, exactly as the demo runs it.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from django.core.management import CommandError, call_command

from jwtguard.testing import FakeIssuer, generate_key
from jwtguard.testing.issuer import DISCOVERY_PATH
from sample_site import serve
from tests.support.loopback import free_port, require_real_redis

ROOT = serve.ROOT
WORKERS = 4
REQUESTS = 400
THREADS = 8
START_TIMEOUT = 30.0


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, object]
    served_by: str | None


def call(port: int, path: str, token: str | None, timeout: float = 10.0) -> Answer:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
        response = conn.getresponse()
        raw = response.read()
        body = json.loads(raw) if raw else {}
        return Answer(response.status, body, response.getheader("X-Served-By"))
    finally:
        conn.close()


@dataclass
class Site:
    port: int
    process: subprocess.Popen[bytes]
    log: Path


def start_site(tmp_path: Path, env_overrides: dict[str, str]) -> Site:
    """sample_site under gunicorn, 4 sync workers, on a free port; waits (bounded) for /healthz."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("JWTGUARD_", "DJANGO_"))}
    env.pop("REDIS_URL", None)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "sample_site.settings",
            "SAMPLE_SITE_DB": str(tmp_path / "sample_site.sqlite3"),
            "CACHE_KEY_PREFIX": f"jwtguard-e2e-{uuid.uuid4().hex[:12]}",
            "PYTHONUNBUFFERED": "1",
            **env_overrides,
        }
    )
    port = free_port()
    env.update({"SAMPLE_SITE_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": str(WORKERS)})
    serve.prepare(env)
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        process = subprocess.Popen(serve.gunicorn_command(), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    site = Site(port, process, log)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise AssertionError(f"gunicorn exited with {process.returncode}:\n{log.read_text()}")
        try:
            if call(port, "/healthz", None, timeout=2).status == 200:
                return site
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop_site(site)
            raise AssertionError(f"sample_site did not answer within {START_TIMEOUT}s:\n{log.read_text()}")
        time.sleep(0.1)


def stop_site(site: Site) -> None:
    site.process.terminate()
    try:
        site.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        site.process.kill()
        site.process.wait(timeout=10)


def parent_pid(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


@pytest.fixture
def issuer() -> Iterator[FakeIssuer]:
    with FakeIssuer("RS256") as fake:
        yield fake


@pytest.fixture(
    params=[
        pytest.param("redis", marks=pytest.mark.redis),
        "sqlite",
    ]
)
def site(request: pytest.FixtureRequest, issuer: FakeIssuer, tmp_path: Path) -> Iterator[Site]:
    """Redis (the JWKS URL discovered from the issuer), or the SQLite database cache (JWKS URL given)."""
    env = {"JWTGUARD_ISSUER": issuer.issuer, "JWTGUARD_AUDIENCE": issuer.audience}
    if request.param == "redis":
        require_real_redis()
        env["REDIS_URL"] = "redis://127.0.0.1:6379/0"
    else:
        env["JWTGUARD_JWKS_URL"] = issuer.jwks_url
    started = start_site(tmp_path, env)
    try:
        yield started
    finally:
        stop_site(started)


@pytest.mark.slow
def test_400_requests_over_4_workers_cost_the_issuer_one_jwks_download(site: Site, issuer: FakeIssuer) -> None:
    good = issuer.mint(sub="alice", scope="read:friends")
    forged = issuer.mint(sub="mallory", key=generate_key("RS256", kid=issuer.signing_key.kid))
    # (path, token, expected status, expected body subset)
    cases: list[tuple[str, str | None, int, dict[str, object]]] = [
        ("/api/v1/friends", good, 200, {"user": "alice"}),
        ("/api/v1/friends/scoped", good, 200, {"user": "alice"}),
        ("/plain/friends", good, 200, {"user": "alice", "view": "plain"}),
        ("/async/friends", good, 200, {"user": "alice", "view": "async"}),
        ("/api/v1/friends", issuer.mint(sub="bob", scope="profile"), 200, {"user": "bob"}),
        ("/api/v1/friends/scoped", issuer.mint(sub="bob", scope="profile"), 403, {"code": "insufficient_scope"}),
        ("/api/v1/friends", issuer.mint(expires_in=-3600), 401, {"code": "token_expired"}),
        ("/api/v1/friends", issuer.mint(aud="https://another-api.example"), 401, {"code": "invalid_audience"}),
        ("/api/v1/friends", forged, 401, {"code": "invalid_signature"}),
        ("/api/v1/friends", None, 401, {}),
    ]
    answers: list[tuple[int, Answer | BaseException]] = []
    lock = threading.Lock()
    start = threading.Barrier(THREADS, timeout=10)

    def worker(offset: int) -> None:
        start.wait()  # every thread at once: the cold start races for the key set across the workers
        for index in range(offset, REQUESTS, THREADS):
            path, token, _, _ = cases[index % len(cases)]
            try:
                result: Answer | BaseException = call(site.port, path, token)
            except Exception as exc:
                result = exc
            with lock:
                answers.append((index, result))

    threads = [threading.Thread(target=worker, args=(offset,), daemon=True) for offset in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads), "requests still running after 30s"

    assert len(answers) == REQUESTS
    wrong = []
    served_by: Counter[str | None] = Counter()
    for index, answer in answers:
        path, _, status, expected = cases[index % len(cases)]
        if isinstance(answer, BaseException) or answer.status != status or not expected.items() <= answer.body.items():
            wrong.append((path, status, expected, answer))
        else:
            served_by[answer.served_by] += 1
    assert not wrong, f"{len(wrong)} wrong answers, e.g. {wrong[:3]}\n{site.log.read_text()[-3000:]}"

    # Several of the 4 workers answered (the kernel spreads the connections; all 4, almost always).
    pids = {int(pid) for pid in served_by if pid is not None}
    assert len(pids) >= 2, served_by
    assert all(parent_pid(pid) == site.process.pid for pid in pids)

    assert issuer.jwks_requests == 1, issuer.requests
    assert issuer.requests[DISCOVERY_PATH] <= 1


def site_settings(env: dict[str, str]) -> dict[str, Any]:
    """sample_site's CACHES and JWTGUARD as a fresh process reads them from ``env``."""
    code = (
        "import json; from sample_site import settings as s; "
        "print(json.dumps({'CACHES': s.CACHES, 'JWTGUARD': s.JWTGUARD}))"
    )
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("JWTGUARD_", "REDIS_URL"))}
    output = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**clean, **env}, check=True, timeout=60, capture_output=True
    ).stdout
    result: dict[str, Any] = json.loads(output)
    return result


def test_settings_come_from_the_environment() -> None:
    values = site_settings(
        {
            "JWTGUARD_ISSUER": "https://tenant.example.com/",
            "JWTGUARD_AUDIENCE": "https://a.example, https://b.example",
            "JWTGUARD_JWKS_URL": "https://tenant.example.com/keys",
            "REDIS_URL": "redis://cache.internal:6379/2",
            "JWTGUARD_DPOP": "required",
            "JWTGUARD_DPOP_PUBLIC_URL": "https://a.example",
        }
    )
    assert values["JWTGUARD"] == {
        "ISSUER": "https://tenant.example.com/",
        "AUDIENCE": ["https://a.example", "https://b.example"],
        "JWKS_URL": "https://tenant.example.com/keys",
        "DPOP": "required",
        "DPOP_PUBLIC_URL": "https://a.example",
        "RESOURCE_METADATA": {
            "resource": "https://a.example",  # the first audience, unless JWTGUARD_RESOURCE says otherwise
            "scopes_supported": ["read:friends"],
            "resource_name": "jwtguard sample_site",
        },
    }
    assert values["CACHES"]["default"]["BACKEND"] == "django_redis.cache.RedisCache"
    assert values["CACHES"]["default"]["LOCATION"] == "redis://cache.internal:6379/2"


def test_without_redis_the_cache_is_still_shared_by_the_workers_of_a_host() -> None:
    values = site_settings({})
    # Never LocMemCache: it is per process, so each worker would download the key set for itself.
    assert values["CACHES"]["default"]["BACKEND"] == "django.core.cache.backends.db.DatabaseCache"
    assert "JWKS_URL" not in values["JWTGUARD"]  # discovered from the issuer


def manage_check(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``python sample_site/manage.py check`` in a fresh process, as an operator runs it."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("JWTGUARD_", "REDIS_URL"))}
    return subprocess.run(
        [sys.executable, "sample_site/manage.py", "check", *args],
        cwd=ROOT,
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        timeout=120,
        capture_output=True,
        text=True,
    )


@pytest.mark.redis
def test_manage_check_on_sample_site_with_redis_says_nothing() -> None:
    require_real_redis()
    result = manage_check({"REDIS_URL": "redis://127.0.0.1:6379/0"})
    assert result.returncode == 0, result.stderr
    assert "jwtguard." not in result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_manage_check_on_sample_site_with_locmem_warns_per_process() -> None:
    result = manage_check({}, "--settings", "tests.sample_site_locmem")
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "(jwtguard.W001)" in output
    assert "jwtguard.E" not in output


def test_devtoken_mints_from_the_development_issuer(settings: Any) -> None:
    from sample_site.management.commands.devtoken import Command

    with FakeIssuer(allow_minting=True) as issuer:
        settings.JWTGUARD = issuer.settings()
        out = io.StringIO()
        call_command(Command(), sub="zoe", scope="read:friends", stdout=out)
        claims = jwt.decode(
            out.getvalue().strip(),
            issuer.signing_key.private_key.public_key(),
            algorithms=["RS256"],
            audience=issuer.audience,
        )
    assert claims["sub"] == "zoe"
    assert claims["scope"] == "read:friends"


def test_devtoken_refuses_a_real_issuer(settings: Any) -> None:
    from sample_site.management.commands.devtoken import Command

    settings.JWTGUARD = {"ISSUER": "https://tenant.example.com/", "AUDIENCE": "https://api.example.test"}
    with pytest.raises(CommandError, match="not a development issuer"):
        call_command(Command())


@pytest.mark.slow
def test_the_demo_prints_every_answer_and_exits_0() -> None:
    # The README's first command is scripts/demo.sh = bootstrap + this script; SQLite cache, the fallback path.
    result = subprocess.run(
        [sys.executable, "scripts/demo.py", "--cache", "sqlite"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "FAIL" not in out
    for expected in (
        '"code": "token_expired"',
        '"code": "invalid_audience"',
        '"code":"insufficient_scope"',
        '"code": "invalid_signature"',
        '"code": "unknown_kid"',
        "WWW-Authenticate: Bearer",
        '"code": "dpop_replayed"',
        '"code": "dpop_bound_token_as_bearer"',
        "DPoP: demo OK",
    ):
        assert expected in out
    assert re.search(r"answered by [2-4] worker processes; JWKS requests at the issuer: 1\n", out), out
    assert out.rstrip().endswith("demo OK")
