"""A replicated Redis as deployed, on loopback: a primary, a replica and three sentinels, each a redis-server
of the test's own (``redis-server <conf> --sentinel`` runs a sentinel), in directories of their own.

The test kills the primary, waits for the sentinels to promote the replica, restarts the old primary empty
on its old port and waits for the sentinels to turn it into a replica of the new primary and for it to sync.
Every wait has a deadline; ``stop`` ends every process it started, whatever happened.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.support.loopback import REQUIRE_REDIS, free_port, redis_answers

SERVICE = "mymaster"
DOCS = Path(__file__).resolve().parents[2] / "docs"
#: Short enough for a test, long enough for a loaded 2-core machine not to see a busy primary as down.
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000


def documented_cache() -> dict[str, Any]:
    """The jwtguard alias exactly as docs/caches.md's Sentinel recipe gives it (``CACHES["jwtguard"] = {...}``)."""
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / "caches.md").read_text(), flags=re.DOTALL)
    (block,) = [b for b in blocks if "SentinelConnectionFactory" in b and 'CACHES["jwtguard"]' in b]
    assignment = block.split("\nJWTGUARD", 1)[0]  # the alias, without the JWTGUARD line that follows it
    cache: dict[str, Any] = ast.literal_eval(assignment.split("=", 1)[1].strip())
    return cache


def _wait(condition: Callable[[], bool], seconds: float, what: str) -> float:
    """Poll ``condition`` every 50 ms until it holds; the time it took, or a failure naming ``what``."""
    started = time.monotonic()
    while True:
        try:
            if condition():
                return time.monotonic() - started
        except redis.RedisError:
            pass
        if time.monotonic() - started > seconds:
            raise AssertionError(f"{what}: not within {seconds}s")
        time.sleep(0.05)


def _client(port: int) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=1, socket_connect_timeout=1)


def _info(port: int, section: str) -> dict[str, object]:
    with _client(port) as client:
        return dict(client.info(section))


class Sentinels:
    """A primary, a replica and three sentinels watching them as ``SERVICE`` (quorum 2)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.binary = shutil.which("redis-server") or ""
        ports: set[int] = set()
        while len(ports) < 5:  # free_port may hand out a port twice once it is released
            ports.add(free_port())
        self.primary_port, self.replica_port, *self.sentinel_ports = sorted(ports)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def sentinels(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", port) for port in self.sentinel_ports]

    # -- processes --------------------------------------------------------------------------------------

    def _spawn(self, name: str, args: list[str]) -> None:
        log = (self.workdir / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen([self.binary, *args], stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def start_server(self, name: str, port: int, *replica_of: str) -> None:
        """A redis-server with nothing on disk to load: its directory is emptied first."""
        directory = self.workdir / name
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        args += ["--dir", str(directory)]
        if replica_of:
            args += ["--replicaof", *replica_of]
        self._spawn(name, args)
        _wait(lambda: redis_answers(port=port), 10, f"redis-server {name} answering on {port}")

    def _start_sentinel(self, index: int, port: int) -> None:
        directory = self.workdir / f"sentinel-{index}"
        directory.mkdir(parents=True)
        conf = directory / "sentinel.conf"  # a sentinel rewrites its own configuration file
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {directory}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary_port} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        name = f"sentinel-{index}"
        self._spawn(name, [str(conf), "--sentinel"])
        process = self.processes[name]
        _wait(lambda: process.poll() is not None or redis_answers(port=port), 10, f"{name} answering on {port}")
        if process.poll() is not None:
            reason = (self.workdir / f"{name}.log").read_text(errors="replace").strip()[-300:]
            message = f"redis-server cannot run a sentinel ({self.binary} <conf> --sentinel): {reason}"
            if REQUIRE_REDIS:
                pytest.fail(f"JWTGUARD_REQUIRE_REDIS=1 but {message}")
            pytest.skip(message)

    def start(self) -> None:
        if not self.binary:
            if REQUIRE_REDIS:
                pytest.fail("JWTGUARD_REQUIRE_REDIS=1 but redis-server is not installed")
            pytest.skip("redis-server is not installed (it runs the sentinels too)")
        self.start_server("primary", self.primary_port)
        self.start_server("replica", self.replica_port, "127.0.0.1", str(self.primary_port))
        _wait(self.replica_synced(self.replica_port), 20, "the replica's first sync")
        for index, port in enumerate(self.sentinel_ports):
            self._start_sentinel(index, port)
        _wait(self._sentinels_agree, 30, "three sentinels knowing each other and the replica")

    def _sentinels_agree(self) -> bool:
        for port in self.sentinel_ports:
            with _client(port) as client:
                state = client.sentinel_master(SERVICE)
            if int(state["num-other-sentinels"]) != 2 or int(state["num-slaves"]) != 1:
                return False
        return True

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
        for process in self.processes.values():
            process.wait(timeout=10)
        self.processes.clear()

    # -- the failover ----------------------------------------------------------------------------------

    def kill(self, name: str) -> None:
        process = self.processes.pop(name)
        process.kill()
        process.wait(timeout=10)

    def primary_by_sentinels(self) -> set[int]:
        """The primary's port as each sentinel names it (one port when they agree)."""
        ports = set()
        for port in self.sentinel_ports:
            with _client(port) as client:
                _host, primary = client.sentinel_get_master_addr_by_name(SERVICE)
            ports.add(int(primary))
        return ports

    def promoted(self, port: int) -> Callable[[], bool]:
        """Every sentinel names ``port`` the primary, and it says so itself."""

        def check() -> bool:
            try:
                return self.primary_by_sentinels() == {port} and _info(port, "replication")["role"] == "master"
            except redis.RedisError:
                return False

        return check

    def replica_synced(self, port: int) -> Callable[[], bool]:
        """``port`` replicates a primary, its link is up and no sync is under way."""

        def check() -> bool:
            try:
                info = _info(port, "replication")
            except redis.RedisError:
                return False
            return (
                info["role"] == "slave"
                and info.get("master_link_status") == "up"
                and not int(str(info.get("master_sync_in_progress", 1)))
            )

        return check

    wait = staticmethod(_wait)
