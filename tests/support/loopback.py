"""What tests reach on loopback besides an issuer: a free port, the shared redis-server at 127.0.0.1:6379
(namespaced per test), and a redis-server of a test's own that it may stop and restart."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REQUIRE_REDIS = os.environ.get("JWTGUARD_REQUIRE_REDIS") == "1"


def redis_answers(host: str = REDIS_HOST, port: int = REDIS_PORT) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def require_real_redis() -> None:
    if not redis_answers():
        if REQUIRE_REDIS:
            pytest.fail(f"JWTGUARD_REQUIRE_REDIS=1 but no redis-server answers at {REDIS_HOST}:{REDIS_PORT}")
        pytest.skip(f"no redis-server at {REDIS_HOST}:{REDIS_PORT}")


def real_redis_cache(location: str = f"redis://{REDIS_HOST}:{REDIS_PORT}/0") -> dict[str, Any]:
    """A Django cache on a real Redis, namespaced per test so tests never see each other's keys."""
    return {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": location,
        "KEY_PREFIX": f"jwtguard-test-{uuid.uuid4().hex[:12]}",
        "OPTIONS": {"socket_timeout": 0.5, "socket_connect_timeout": 0.5},
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A redis-server of the test's own on a free loopback port, which the test may stop and restart."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            if REQUIRE_REDIS:
                pytest.fail("redis-server is not installed")
            pytest.skip("redis-server is not installed")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not redis_answers(port=self.port):
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None
