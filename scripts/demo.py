"""jwtguard's demo: a local issuer and sample_site under gunicorn (4 workers), called with good and bad tokens.

Run through ``bash scripts/demo.sh`` (which installs what is needed first). Everything listens on 127.0.0.1,
on free ports; everything started here is stopped on exit, Ctrl-C included. ``--serve`` keeps it running.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jwtguard.conf import ISSUER_DEFAULTS  # noqa: E402
from sample_site import serve  # noqa: E402 - the repository root is importable only from here on

AUDIENCE = "https://api.example.test"
WORKERS = 4
START_TIMEOUT = 60.0
REQUEST_TIMEOUT = 15.0
CONCURRENT_CLIENTS = 8


class DemoFailed(Exception):
    """Raised when a step of the demo does not go as promised."""


@dataclass
class Answer:
    status: int
    body: str
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_answers(port: int = 6379) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def get(port: int, path: str, token: str | None = None, timeout: float = REQUEST_TIMEOUT) -> Answer:
    return get_with(port, path, {"Authorization": f"Bearer {token}"} if token is not None else {}, timeout)


def get_with(port: int, path: str, headers: dict[str, str], timeout: float = REQUEST_TIMEOUT) -> Answer:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read().decode("utf-8", "replace")
        return Answer(response.status, body, {name.lower(): value for name, value in response.getheaders()})
    finally:
        conn.close()


def wait_until_answers(port: int, path: str, process: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DemoFailed(f"{what} exited with {process.returncode}; its log:\n{tail(log)}")
        try:
            if get(port, path, timeout=2).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise DemoFailed(f"{what} did not answer on 127.0.0.1:{port}{path} within {START_TIMEOUT:.0f}s:\n{tail(log)}")


def tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def spawn(command: list[str], log: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], Path]:
    """Start ``command`` from the repository root in a process group of its own, output to ``log``."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return process, log


def stop(process: subprocess.Popen[bytes]) -> None:
    """TERM the process group, then KILL what is left after a few seconds."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@dataclass
class Stack:
    """What the demo started: the issuer and the site, with their ports."""

    issuer_port: int
    site_port: int
    cache: str
    workdir: Path
    #: The site's environment, for a second server of the same site (the WebSocket step's ASGI server).
    env: dict[str, str] = field(default_factory=dict)

    @property
    def issuer_url(self) -> str:
        return f"http://127.0.0.1:{self.issuer_port}/"

    def mint(self, **claims: Any) -> str:
        answer = get(self.issuer_port, "/mint?" + urlencode({k: str(v) for k, v in claims.items()}))
        if answer.status != 200:
            raise DemoFailed(f"the issuer would not mint: {answer.status} {answer.body}")
        return str(answer.json()["access_token"])

    def jwks_requests(self) -> int:
        return int(get(self.issuer_port, "/stats").json()["jwks_requests"])


@contextmanager
def running_stack(workers: int = WORKERS, cache_choice: str = "auto") -> Iterator[Stack]:
    """Start the development issuer and sample_site under gunicorn; stop both however the block ends."""
    workdir = Path(tempfile.mkdtemp(prefix="jwtguard-demo-"))
    issuer_port, site_port = free_port(), free_port()
    # Only what the demo sets: a DJANGO_SETTINGS_MODULE or JWTGUARD_* of the caller's must not leak in.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("JWTGUARD_", "DJANGO_", "REDIS_URL"))}
    env = {
        **inherited,
        "DJANGO_SETTINGS_MODULE": "sample_site.settings",
        "PYTHONUNBUFFERED": "1",
        "JWTGUARD_ISSUER": f"http://127.0.0.1:{issuer_port}/",
        "JWTGUARD_AUDIENCE": AUDIENCE,
        # The API's identifier in its RFC 9728 metadata: where this run's clients call it.
        "JWTGUARD_RESOURCE": f"http://127.0.0.1:{site_port}",
        "SAMPLE_SITE_DB": str(workdir / "sample_site.sqlite3"),
        # A fresh prefix: a Redis shared with earlier runs must not hand this run their key sets.
        "CACHE_KEY_PREFIX": f"jwtguard-demo-{uuid.uuid4().hex[:8]}",
    }
    if cache_choice == "redis" or (cache_choice == "auto" and redis_answers()):
        env["REDIS_URL"] = "redis://127.0.0.1:6379/0"
        cache = "Redis at 127.0.0.1:6379 (django-redis)"
    else:
        cache = "Django's database cache on SQLite, shared by the workers on this host"
        if cache_choice == "auto":
            cache += " (no Redis answered at 127.0.0.1:6379)"
    env["SAMPLE_SITE_BIND"] = f"127.0.0.1:{site_port}"
    env["WEB_CONCURRENCY"] = str(workers)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        issuer_command = [sys.executable, "-m", "jwtguard.testing.issuer", "--port", str(issuer_port)]
        issuer, issuer_log = spawn(issuer_command + ["--audience", AUDIENCE], workdir / "issuer.log", env)
        processes.append(issuer)
        wait_until_answers(issuer_port, "/.well-known/openid-configuration", issuer, issuer_log, "the issuer")
        serve.prepare(env)
        site, site_log = spawn(serve.gunicorn_command(), workdir / "sample_site.log", env)
        processes.append(site)
        wait_until_answers(site_port, "/healthz", site, site_log, "sample_site")
        yield Stack(issuer_port=issuer_port, site_port=site_port, cache=cache, workdir=workdir, env=env)
    finally:
        for process in reversed(processes):
            stop(process)
        shutil.rmtree(workdir, ignore_errors=True)


def forge(real_token: str, kid: str | None = None) -> str:
    """An attacker's token: the same claims, signed with the attacker's own key, under ``kid`` (default: the
    issuer's real kid, copied from a genuine token's header)."""
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    header = jwt.get_unverified_header(real_token)
    claims = jwt.decode(real_token, options={"verify_signature": False})
    attacker_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, attacker_key, algorithm="RS256", headers={"kid": kid or header["kid"]})


@dataclass(frozen=True)
class Case:
    label: str
    path: str
    token: str
    status: int
    code: str | None


def show(case: Case, answer: Answer) -> bool:
    ok = answer.status == case.status
    if case.code is not None:
        ok = ok and f'"code":"{case.code}"' in answer.body.replace(" ", "")
    mark = "ok " if ok else "FAIL"
    print(f"[{mark}] {case.label}\n       GET {case.path} -> {answer.status}  {answer.body}")
    if "www-authenticate" in answer.headers:
        print(f"       WWW-Authenticate: {answer.headers['www-authenticate']}")
    return ok


def run_demo(stack: Stack) -> bool:
    print(f"issuer:      {stack.issuer_url}  (development issuer, NOT for production)")
    print(f"sample_site: http://127.0.0.1:{stack.site_port}/  (gunicorn, {WORKERS} workers)")
    print(f"shared cache: {stack.cache}\n")

    good = stack.mint(sub="alice", scope="read:friends")
    cases = [
        Case("valid token", "/api/v1/friends", good, 200, None),
        Case("valid token, scope read:friends", "/api/v1/friends/scoped", good, 200, None),
        Case("valid token, plain Django view (middleware)", "/plain/friends", good, 200, None),
        Case("valid token, async view", "/async/friends", good, 200, None),
        Case("expired token", "/api/v1/friends", stack.mint(sub="alice", expires_in=-3600), 401, "token_expired"),
        Case(
            "wrong audience",
            "/api/v1/friends",
            stack.mint(sub="alice", aud="https://another-api.example"),
            401,
            "invalid_audience",
        ),
        Case("missing scope", "/api/v1/friends/scoped", stack.mint(sub="bob", scope="profile"), 403, None),
        Case("forged: the issuer's kid, the attacker's key", "/api/v1/friends", forge(good), 401, "invalid_signature"),
    ]
    ok = all(show(case, get(stack.site_port, case.path, case.token)) for case in cases)

    # The point of jwtguard: many requests, every worker, one download of the key set. Sent from 8 threads
    # at once: one at a time, a single idle worker could win every connection.
    start = threading.Barrier(CONCURRENT_CLIENTS)

    def client() -> list[Answer]:
        start.wait(REQUEST_TIMEOUT)
        return [get(stack.site_port, "/api/v1/friends", good) for _ in range(40 // CONCURRENT_CLIENTS)]

    with ThreadPoolExecutor(CONCURRENT_CLIENTS) as pool:
        answers = [answer for batch in pool.map(lambda _: client(), range(CONCURRENT_CLIENTS)) for answer in batch]
    ok = ok and all(answer.status == 200 for answer in answers)
    pids = {answer.headers.get("x-served-by") for answer in answers}
    requests_so_far = len(cases) + len(answers)
    jwks = stack.jwks_requests()
    print(f"\n{requests_so_far} requests answered by {len(pids)} worker processes; JWKS requests at the issuer: {jwks}")
    ok = ok and jwks == 1

    forged_kid = Case("forged kid (not in the key set)", "/api/v1/friends", forge(good, kid="forged-kid"), 401, None)
    print()
    began = time.monotonic()
    ok = show(forged_kid, get(stack.site_port, forged_kid.path, forged_kid.token)) and ok
    for index in range(20):
        answer = get(stack.site_port, "/api/v1/friends", forge(good, kid=f"forged-kid-{index}"))
        ok = ok and answer.status == 401
    took = time.monotonic() - began
    after = stack.jwks_requests()
    # One unknown-kid window per JWKS_REFRESH_COOLDOWN for the whole site (the sample site keeps the default);
    # a window may cost a second fetch (a routine fetch in flight, or the database cache's non-atomic add on an
    # expired row: docs/shared-cache.md, docs/caches.md).
    cooldown = ISSUER_DEFAULTS["JWKS_REFRESH_COOLDOWN"]
    windows = 1 + int(took // cooldown)
    print(
        f"21 tokens with unknown kids in {took:.1f} s -> 401; JWKS requests at the issuer: {after - jwks} more "
        f"(one window per JWKS_REFRESH_COOLDOWN = {cooldown} s for the whole site, at most two fetches each: "
        f"{windows} windows in {took:.1f} s)"
    )
    ok = ok and 1 <= after - jwks <= 2 * windows
    print("\ndemo OK" if ok else "\ndemo FAILED: an answer above is not the expected one")
    return ok


# -- DPoP (RFC 9449) and the protected resource metadata (RFC 9728) -------------------------------------------


def run_dpop_demo(stack: Stack) -> bool:
    """A DPoP-bound token with its proof is accepted once; its replay is refused by every worker, whichever
    answers (the proof's jti is spent in the shared cache); the bound token as Bearer is refused."""
    from jwtguard.testing import DPoPKey

    print("\nDPoP (RFC 9449), /api/v1/friends/dpop:")
    key = DPoPKey("ES256")
    token = stack.mint(sub="alice", dpop_jkt=key.thumbprint)
    path = "/api/v1/friends/dpop"
    proof = key.proof("GET", f"http://127.0.0.1:{stack.site_port}{path}", access_token=token)
    dpop = {"Authorization": f"DPoP {token}", "DPoP": proof}
    ok = show(Case("DPoP token with a fresh proof", path, token, 200, None), get_with(stack.site_port, path, dpop))
    with ThreadPoolExecutor(CONCURRENT_CLIENTS) as pool:
        replays = list(pool.map(lambda _: get_with(stack.site_port, path, dpop), range(CONCURRENT_CLIENTS)))
    ok = show(Case("the same proof again (a replay)", path, token, 401, "dpop_replayed"), replays[0]) and ok
    workers = {answer.headers.get("x-served-by") for answer in replays}
    refused = all(a.status == 401 and "dpop_replayed" in a.body for a in replays)
    print(f"       {len(replays)} replays, answered by {len(workers)} worker processes: all refused: {refused}")
    bearer = Case("the bound token sent as Bearer", path, token, 401, "dpop_bound_token_as_bearer")
    ok = show(bearer, get(stack.site_port, path, token)) and ok and refused
    metadata = get(stack.site_port, "/.well-known/oauth-protected-resource")
    print(
        f"[{'ok ' if metadata.status == 200 else 'FAIL'}] RFC 9728 metadata\n       GET "
        f"/.well-known/oauth-protected-resource -> {metadata.status}  {metadata.body}"
    )
    ok = ok and metadata.status == 200 and metadata.json()["dpop_signing_alg_values_supported"] is not None
    print("\nDPoP: demo OK" if ok else "\nDPoP: demo FAILED: an answer above is not the expected one")
    return ok


# -- Django Ninja (jwtguard[ninja]) ----------------------------------------------------------------------------


def run_ninja_demo(stack: Stack) -> bool:
    """The sample's Ninja router answers like its DRF views: same tokens, same codes, same key set."""
    print("\nDjango Ninja router (/ninja/, jwtguard.contrib.ninja.JWTAuth):")
    before = stack.jwks_requests()
    good = stack.mint(sub="alice", scope="read:friends")
    cases = [
        Case("Ninja: valid token", "/ninja/friends", good, 200, None),
        Case("Ninja: valid token, async operation, scope read:friends", "/ninja/friends/scoped", good, 200, None),
        Case("Ninja: expired token", "/ninja/friends", stack.mint(sub="alice", expires_in=-3600), 401, "token_expired"),
        Case("Ninja: missing scope", "/ninja/friends/scoped", stack.mint(sub="bob", scope="profile"), 403, None),
        Case("Ninja: forged kid", "/ninja/friends", forge(good, kid="forged-ninja-kid"), 401, None),
    ]
    ok = all(show(case, get(stack.site_port, case.path, case.token)) for case in cases)
    after = stack.jwks_requests()
    print(f"JWKS requests at the issuer during the Ninja step: {after - before} (the shared key set serves it too)")
    ok = ok and after - before <= 1
    print("\nDjango Ninja: demo OK" if ok else "\nDjango Ninja: demo FAILED: an answer above is not the expected one")
    return ok


# -- WebSockets: sample_site's echo under an ASGI server, behind jwtguard.contrib.channels ----------------------


def run_websocket_demo(stack: Stack) -> bool:
    """The same site under Uvicorn: its WebSocket echo with a header token and a browser's subprotocol token,
    a refused token's close code, refreshes over the socket; the key set still comes from the shared cache."""
    import importlib.util

    if any(importlib.util.find_spec(name) is None for name in ("channels", "uvicorn", "websockets")):
        print("\n(WebSocket step skipped: it needs channels, uvicorn and websockets, as in the dev extra)")
        return True
    jwks = stack.jwks_requests()
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port)]
    process, log = spawn([*command, "sample_site.asgi:application"], stack.workdir / "uvicorn.log", stack.env)
    try:
        wait_until_answers(port, "/healthz", process, log, "sample_site under uvicorn")
        print(
            f"\nWebSockets: sample_site's echo under uvicorn (ASGI, jwtguard.contrib.channels), ws://127.0.0.1:{port}/ws/echo"
        )
        ok = websocket_cases(f"ws://127.0.0.1:{port}/ws/echo", stack)
    finally:
        stop(process)
    after = stack.jwks_requests()
    print(f"JWKS requests at the issuer: {after} (the ASGI server read the key set the gunicorn workers shared)")
    ok = ok and after == jwks
    print("\nWebSockets: demo OK" if ok else "\nWebSockets: demo FAILED: an answer above is not the expected one")
    return ok


def websocket_cases(url: str, stack: Stack) -> bool:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    def open_socket(token: str, *, browser: bool = False) -> Any:
        how: dict[str, Any] = {"additional_headers": {"Authorization": f"Bearer {token}"}}
        if browser:  # new WebSocket(url, ["bearer-token", token]): a browser cannot set Authorization
            how = {"subprotocols": ["bearer-token", token]}
        return connect(url, open_timeout=REQUEST_TIMEOUT, close_timeout=REQUEST_TIMEOUT, proxy=None, **how)

    def say(ws: Any, content: Any) -> Any:
        ws.send(json.dumps(content))
        return json.loads(ws.recv(timeout=REQUEST_TIMEOUT))

    def line(ok: bool, label: str, detail: str) -> bool:
        print(f"[{'ok ' if ok else 'FAIL'}] {label}\n       {detail}")
        return ok

    alice = stack.mint(sub="alice", scope="read:friends")
    results = []
    with open_socket(alice) as ws:
        answer = say(ws, {"hello": "server"})
        results.append(line(answer.get("user") == "alice", "Authorization header", f"echo -> {answer}"))
        refreshed = say(ws, {"type": "jwtguard.refresh", "token": stack.mint(sub="alice", scope="read:friends")})
        results.append(line(refreshed.get("type") == "jwtguard.refreshed", "refresh, same subject", f"{refreshed}"))
        refused = say(ws, {"type": "jwtguard.refresh", "token": stack.mint(sub="mallory")})
        ok = refused.get("code") == "subject_mismatch"
        results.append(line(ok, "refresh, another subject", f"{refused}"))
    with open_socket(alice, browser=True) as ws:
        answer = say(ws, "hi")
        ok = ws.subprotocol == "bearer-token" and answer.get("user") == "alice"
        results.append(line(ok, "Sec-WebSocket-Protocol: bearer-token, <jwt>", f"subprotocol {ws.subprotocol!r}"))
    with open_socket(stack.mint(sub="alice", expires_in=-3600), browser=True) as ws:
        try:
            ws.recv(timeout=REQUEST_TIMEOUT)
            results.append(line(False, "expired token", "the server did not close the connection"))
        except ConnectionClosed as closed:
            code, reason = (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd else (None, "")
            ok = (code, reason) == (4401, "token_expired")
            results.append(line(ok, "expired token", f"closed: code {code}, reason {reason!r}"))
    return all(results)


def keep_serving(stack: Stack, seconds: float | None) -> None:
    token = stack.mint(sub="alice", scope="read:friends")
    site = f"http://127.0.0.1:{stack.site_port}"
    print(
        f"""sample_site is running at {site} (gunicorn, {WORKERS} workers); the issuer at {stack.issuer_url}
shared cache: {stack.cache}

Mint a token (development issuer: it signs whatever you ask) and call the API:

  TOKEN=$(curl -s '{stack.issuer_url}mint?sub=alice&scope=read:friends' \\
          | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  curl -i -H "Authorization: Bearer $TOKEN" {site}/api/v1/friends
  curl -i -H "Authorization: Bearer $TOKEN" {site}/api/v1/friends/scoped
  curl -i -H "Authorization: Bearer $TOKEN" {site}/plain/friends
  curl -i -H "Authorization: Bearer $TOKEN" {site}/async/friends
  curl -i {site}/readyz
  curl -s {stack.issuer_url}stats        # how often the site fetched the key set

A token for alice, valid 5 minutes:
  {token}

Ctrl-C stops everything."""
        + (f" (It stops by itself after {seconds:.0f}s.)" if seconds else ""),
        flush=True,
    )
    deadline = None if seconds is None else time.monotonic() + seconds
    while deadline is None or time.monotonic() < deadline:
        time.sleep(0.5)


def _stop_on_signal(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bash scripts/demo.sh", description=__doc__)
    parser.add_argument("--serve", action="store_true", help="keep the issuer and the site running until Ctrl-C")
    parser.add_argument("--serve-for", type=float, default=None, metavar="SECONDS", help="with --serve: stop after")
    parser.add_argument(
        "--cache",
        choices=["auto", "redis", "sqlite"],
        default="auto",
        help="the shared cache: Redis at 127.0.0.1:6379 when one answers (auto), or the SQLite database cache",
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_on_signal)
    signal.signal(signal.SIGHUP, _stop_on_signal)
    try:
        with running_stack(cache_choice=args.cache) as stack:
            if args.serve:
                keep_serving(stack, args.serve_for)
                return 0
            passed = run_demo(stack) and run_dpop_demo(stack) and run_ninja_demo(stack)
            return 0 if passed and run_websocket_demo(stack) else 1
    except DemoFailed as exc:
        print(f"demo FAILED: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopped", file=sys.stderr)
        return 0 if args.serve else 130


if __name__ == "__main__":
    sys.exit(main())
