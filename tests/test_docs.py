"""The docs say what the code does: the settings reference, the recipes' settings, the rejection codes."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import random
import re
import shutil
import socket
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import caches
from django.core.checks import INFO

import jwtguard
from jwtguard import exceptions, validate_token
from jwtguard.checks import check_settings
from jwtguard.conf import GLOBAL_DEFAULTS, ISSUER_DEFAULTS, get_settings, parse_settings, reset
from jwtguard.jwks import get_provider
from jwtguard.testing import FakeIssuer
from tests.support.loopback import redis_answers

DOCS = Path(__file__).resolve().parents[1] / "docs"
RECIPE_PAGES = [
    "quickstart.md",
    "settings.md",
    "providers.md",
    "migrating.md",
    "tenants.md",
    "dpop.md",
    "resource-metadata.md",
]


def sections(page: str, level: str) -> dict[str, str]:
    """``{name: body}`` for every heading ``<level> `name``` of a page."""
    text = (DOCS / page).read_text()
    parts = re.split(rf"^{level} `([^`]+)`\s*$", text, flags=re.MULTILINE)
    names, bodies = parts[1::2], parts[2::2]
    assert len(names) == len(set(names)), f"{page}: a heading is repeated"
    return {name: re.split(r"^#{1,3} ", body, flags=re.MULTILINE)[0] for name, body in zip(names, bodies, strict=True)}


def python_blocks(page: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), flags=re.DOTALL)


class TestSettingsReference:
    reference = sections("settings.md", "###")

    def test_every_setting_has_one_heading_and_no_other(self) -> None:
        assert sorted(self.reference) == sorted({**ISSUER_DEFAULTS, **GLOBAL_DEFAULTS})

    @pytest.mark.parametrize("key", sorted({**ISSUER_DEFAULTS, **GLOBAL_DEFAULTS}))
    def test_type_default_and_scope_are_given_and_the_default_is_the_codes(self, key: str) -> None:
        body = self.reference.get(key, "")
        assert re.search(r"^- \*\*Type:\*\* \S", body, flags=re.MULTILINE), f"{key}: no type"
        default = re.search(r"^- \*\*Default:\*\* `([^`]*)`", body, flags=re.MULTILINE)
        assert default, f"{key}: no default"
        expected = ISSUER_DEFAULTS.get(key, GLOBAL_DEFAULTS.get(key))
        assert ast.literal_eval(default.group(1)) == expected, f"{key}: the docs say {default.group(1)}"
        scope = "per issuer" if key in ISSUER_DEFAULTS else "global"
        assert f"- **Scope:** {scope}" in body, f"{key}: scope is {scope}"


@pytest.mark.parametrize(
    "block",
    [
        pytest.param(block, id=f"{page}-{index}")
        for page in RECIPE_PAGES
        for index, block in enumerate(python_blocks(page))
        if "JWTGUARD = {" in block
    ],
)
def test_documented_settings_are_valid_and_pass_the_checks(block: str, settings: Any) -> None:
    namespace: dict[str, Any] = {}
    exec(block, namespace)
    parsed = parse_settings(namespace["JWTGUARD"])
    assert parsed.issuers or parsed.patterns or parsed.issuer_source
    settings.JWTGUARD = namespace["JWTGUARD"]
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://x"}}
    # Infos are advice, not problems: I001 names an audience that looks like a client id where the identity
    # provider cannot type its access tokens (Entra ID's v2 application id); the recipe says what to do instead.
    assert [message for message in check_settings() if message.level > INFO] == []


def rejection_codes() -> set[str]:
    """The codes of every ``TokenError`` subclass in the package (each module imported, so none is missed)."""
    for module in pkgutil.walk_packages(jwtguard.__path__, "jwtguard."):
        importlib.import_module(module.name)
    codes = set()
    pending: list[type[exceptions.JWTGuardError]] = [exceptions.TokenError]
    while pending:
        cls = pending.pop()
        codes.add(cls.code)
        pending.extend(cls.__subclasses__())
    return codes


def test_troubleshooting_has_a_section_per_rejection_code() -> None:
    documented = set(sections("troubleshooting.md", "##"))
    unavailable = {exceptions.KeySetUnavailable.code, exceptions.IssuerSourceUnavailable.code}
    expected = rejection_codes() | {"insufficient_scope"} | unavailable
    assert "token_expired" in expected
    assert expected - documented == set(), "undocumented codes"
    assert documented - expected == set(), "documented codes that do not exist"


def test_every_page_is_in_the_toctree() -> None:
    index = (DOCS / "index.md").read_text()
    listed = set(re.findall(r"^([a-z][a-z0-9-]*)$", index, flags=re.MULTILINE))
    pages = {page.stem for page in DOCS.glob("*.md")} - {"index"}
    assert pages <= listed


def cluster_ports(count: int) -> list[int]:
    """Free ports whose cluster-bus port (port + 10000) is free too: an ephemeral port may be too high for that."""
    ports: list[int] = []
    for candidate in random.sample(range(20000, 30000), 200):
        if len(ports) == count:
            break
        if all(port_is_free(p) for p in (candidate, candidate + 10000)):
            ports.append(candidate)
    assert len(ports) == count, "no free ports for a Redis Cluster"
    return ports


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class RedisCluster3:
    """Three redis-server nodes on free loopback ports joined into one Redis Cluster (no replicas)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.ports = cluster_ports(3)
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
        if server is None or cli is None:
            pytest.skip("redis-server and redis-cli are needed for a cluster")
        for port in self.ports:
            node_dir = self.workdir / str(port)
            node_dir.mkdir()
            self.processes.append(
                subprocess.Popen(
                    [
                        server,
                        "--port",
                        str(port),
                        "--bind",
                        "127.0.0.1",
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--dir",
                        str(node_dir),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        deadline = time.monotonic() + 10
        while not all(redis_answers(port=port) for port in self.ports):
            assert all(p.poll() is None for p in self.processes), "a redis-server node exited"
            assert time.monotonic() < deadline, "redis-server nodes did not start"
            time.sleep(0.05)
        nodes = [f"127.0.0.1:{port}" for port in self.ports]
        subprocess.run(
            [cli, "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=30,
        )
        while (
            b"cluster_state:ok"
            not in subprocess.run(
                [cli, "-p", str(self.ports[0]), "cluster", "info"], capture_output=True, timeout=5
            ).stdout
        ):
            assert time.monotonic() < deadline + 20, "the cluster did not become ready"
            time.sleep(0.1)

    def stop(self) -> None:
        for process in self.processes:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[RedisCluster3]:
    cluster = RedisCluster3(tmp_path)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster_recipe(monkeypatch: pytest.MonkeyPatch) -> str:
    """The Redis Cluster backend exactly as docs/caches.md gives it, importable as a module."""
    (backend,) = [block for block in python_blocks("caches.md") if "class RedisClusterCache(" in block]
    module = types.ModuleType("docs_cluster_recipe")
    exec(compile(backend, str(DOCS / "caches.md"), "exec"), module.__dict__)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return f"{module.__name__}.RedisClusterCache"


@pytest.mark.slow
@pytest.mark.redis
def test_the_redis_cluster_recipe_shares_the_key_set(
    redis_cluster: RedisCluster3, cluster_recipe: str, issuer: FakeIssuer, settings: Any
) -> None:
    (caches_block,) = [block for block in python_blocks("caches.md") if "myproject.cache.RedisClusterCache" in block]
    documented = ast.literal_eval(caches_block.split("=", 1)[1].strip())["default"]
    settings.CACHES = {
        "default": {
            **documented,
            "BACKEND": cluster_recipe,
            "LOCATION": f"redis://127.0.0.1:{redis_cluster.ports[1]}",
            "KEY_PREFIX": "jwtguard-cluster-test",
        }
    }
    settings.JWTGUARD = issuer.settings()
    assert check_settings() == []
    cache = caches["default"]
    # Keys land on different nodes: the client follows the cluster's slots rather than one server.
    for n in range(20):
        cache.set(f"k{n}", n, 30)
    assert [cache.get(f"k{n}") for n in range(20)] == list(range(20))
    assert cache.add("lock", 1, 30) is True
    assert cache.add("lock", 2, 30) is False

    validate_token(issuer.mint())
    reset()  # another process: it reads the key set from the cluster
    validate_token(issuer.mint())
    assert issuer.jwks_requests == 1
    provider = get_provider(get_settings().issuers[0])
    assert provider.cache.is_down is False
    assert cache.get(provider.entry_key)["url"] == issuer.jwks_url
