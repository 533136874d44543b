"""panva's oidc-provider (npm) in a Node process the test starts and stops: ``oidc_provider.mjs`` configured
with the test's keys, clients and resources, on a loopback port; it reports each request it answers, so a
test can count the fetches jwtguard made."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import threading
import urllib.error
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import pytest

from tests.real_issuers import DIRECT, TIMEOUT, Client, request_token

HERE = Path(__file__).parent
SCRIPT = HERE / "oidc_provider.mjs"
INSTALLED = HERE / "node_modules" / "oidc-provider" / "package.json"
REQUIRE = os.environ.get("JWTGUARD_REQUIRE_REAL_ISSUERS") == "1"
INSTALL_HINT = "run scripts/install-real-issuers.sh"


def node_or_skip() -> str:
    """The node binary; without one the test skips, unless this run must have the real issuers; with one, a
    missing install fails (a skip would hide that the suite did not run what it says it runs)."""
    node = shutil.which("node")
    if node is None:
        if REQUIRE:
            pytest.fail("JWTGUARD_REQUIRE_REAL_ISSUERS=1 but node is not installed")
        pytest.skip("node is not installed: the oidc-provider tests need Node.js 20 or later")
    if not INSTALLED.is_file():
        pytest.fail(f"oidc-provider is not installed in {INSTALLED.parent.parent}: {INSTALL_HINT}")
    return node


class OidcProvider:
    """One oidc-provider process; ``restart`` brings it back on the same port with other keys (a rotation is
    deployed that way: oidc-provider reads its key set at start)."""

    def __init__(
        self,
        workdir: Path,
        *,
        keys: list[dict[str, Any]],
        clients: list[Client],
        resources: Mapping[str, Mapping[str, Any]],
    ) -> None:
        self.workdir = workdir
        self.keys = keys
        self.clients = {client.client_id: client for client in clients}
        self.resources = resources
        self.port = 0
        self.issuer = ""
        #: (method, path) -> requests answered, since the process started.
        self.requests: Counter[tuple[str, str]] = Counter()
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._seen = threading.Condition()
        self._barriers = 0

    @property
    def token_url(self) -> str:
        return f"{self.issuer}/token"

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/jwks"

    def count(self, path: str) -> int:
        """Requests answered at ``path``, every one jwtguard made before this call included."""
        self._barrier()
        with self._seen:
            return sum(n for (_, seen), n in self.requests.items() if seen == path)

    def _barrier(self) -> None:
        """The provider reports a request before answering it, and in order; the report of a request of ours,
        once read, means every earlier report has been read too."""
        self._barriers += 1
        path = f"/__barrier/{self._barriers}"
        try:
            DIRECT.open(self.issuer + path, timeout=TIMEOUT).close()
        except urllib.error.HTTPError as exc:  # oidc-provider has no such route, which is the point
            if exc.code != 404:
                raise
        with self._seen:
            if not self._seen.wait_for(lambda: ("GET", path) in self.requests, TIMEOUT):
                raise RuntimeError(f"oidc-provider did not report {path}")
            del self.requests["GET", path]

    def start(self) -> None:
        node = node_or_skip()
        config = self.workdir / "oidc-provider.json"
        config.write_text(
            json.dumps(
                {
                    "port": self.port,
                    "keys": self.keys,
                    "clients": [
                        {"client_id": c.client_id, "client_secret": c.client_secret, "alg": c.alg}
                        for c in self.clients.values()
                    ],
                    "resources": self.resources,
                }
            )
        )
        self.requests.clear()
        self.issuer = ""
        ready = threading.Event()
        stderr = (self.workdir / "oidc-provider.stderr").open("w")
        self._process = subprocess.Popen(
            [node, str(SCRIPT), str(config)],
            cwd=HERE,
            stdin=subprocess.PIPE,  # closed at stop(): the script exits when its stdin ends
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        stderr.close()
        assert self._process.stdout is not None
        self._reader = threading.Thread(target=self._read_events, args=(self._process.stdout, ready), daemon=True)
        self._reader.start()
        started = ready.wait(TIMEOUT)
        if not started or not self.issuer:
            self.stop()
            what = "exited at start" if started else f"did not start within {TIMEOUT:.0f} s"
            raise RuntimeError(f"oidc-provider {what}: {self.stderr()}")

    def _read_events(self, stdout: IO[str], ready: threading.Event) -> None:
        for line in stdout:
            event = json.loads(line)
            if event["event"] == "ready":
                self.port, self.issuer = event["port"], event["issuer"]
                ready.set()
            elif event["event"] == "request":
                with self._seen:
                    self.requests[event["method"], event["path"]] += 1
                    self._seen.notify_all()
        ready.set()  # the process is gone: start() must not wait out its timeout (it sees no issuer)

    def stderr(self) -> str:
        return (self.workdir / "oidc-provider.stderr").read_text()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        assert process.stdin is not None
        assert process.stdout is not None
        with contextlib.suppress(BrokenPipeError):
            process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        if self._reader is not None:
            self._reader.join(timeout=5)  # it ends at the end of the process's output
        process.stdout.close()

    def restart(self, keys: list[dict[str, Any]]) -> None:
        """Stop, and start again on the same port and issuer with ``keys``."""
        self.stop()
        self.keys = keys
        self.start()

    def token(self, client_id: str, resource: str, scope: str) -> str:
        """An access token for ``resource`` with ``scope``, obtained at the token endpoint like any client would."""
        return self.token_answer(client_id, resource, scope)["access_token"]  # type: ignore[no-any-return]

    def token_answer(
        self, client_id: str, resource: str, scope: str, *, dpop_proof: str | None = None
    ) -> dict[str, Any]:
        """The token endpoint's whole answer; with ``dpop_proof`` (RFC 9449 5), a token bound to its key."""
        headers = {"DPoP": dpop_proof} if dpop_proof is not None else None
        return request_token(self.token_url, self.clients[client_id], headers=headers, resource=resource, scope=scope)
