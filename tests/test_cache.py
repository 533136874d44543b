"""``SharedCache``: the Django cache as jwtguard uses it, and the process-local stand-in when it fails."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache

from jwtguard import cache as cache_module
from jwtguard.cache import SharedCache
from tests.support import replica
from tests.support.loopback import RedisServer

CALLS: list[str] = []


class BrokenCache(BaseCache):
    """A Django cache backend whose every operation raises, like a Redis that is down."""

    def __init__(self, location: str, params: dict[str, Any]) -> None:
        super().__init__(params)

    def _fail(self, operation: str) -> Any:
        CALLS.append(operation)
        raise ConnectionError(f"cache is down ({operation})")

    def get(self, key: Any, default: Any = None, version: Any = None) -> Any:
        return self._fail("get")

    def set(self, key: Any, value: Any, timeout: Any = None, version: Any = None) -> None:
        self._fail("set")

    def add(self, key: Any, value: Any, timeout: Any = None, version: Any = None) -> bool:
        return bool(self._fail("add"))

    def delete(self, key: Any, version: Any = None) -> bool:
        return bool(self._fail("delete"))


@pytest.fixture(autouse=True)
def _probe_afresh() -> None:
    """Forget what earlier tests learned about whether ``add`` sticks (learned once per process otherwise)."""
    cache_module._add_sticks.clear()


@pytest.fixture
def broken(settings: Any) -> SharedCache:
    settings.CACHES = {**settings.CACHES, "broken": {"BACKEND": "tests.test_cache.BrokenCache"}}
    CALLS.clear()
    return SharedCache("broken")


class TestOnAWorkingCache:
    def test_get_set_add_delete(self, shared_cache: str) -> None:
        cache = SharedCache("default")
        assert cache.get("k") is None
        cache.set("k", {"v": 1}, 60)
        assert cache.get("k") == {"v": 1}
        assert caches["default"].get("k") == {"v": 1}
        assert cache.add("k", "other", 60) is False
        assert cache.add("fresh", "mine", 60) is True
        assert cache.get("fresh") == "mine"
        cache.delete("k")
        assert cache.get("k") is None
        assert not cache.is_down

    def test_add_is_atomic_between_two_instances(self, shared_cache: str) -> None:
        one, two = SharedCache("default"), SharedCache("default")
        assert one.add("lock", "one", 60) is True
        assert two.add("lock", "two", 60) is False
        assert two.get("lock") == "one"

    def test_a_fractional_timeout_is_rounded_up_never_down(self, shared_cache: str) -> None:
        # A cooldown of 1.5 s must not become 1 s: the backend counts whole seconds.
        cache = SharedCache("default")
        cache.add("cooldown", "x", 1.5)
        time.sleep(1.2)
        assert caches["default"].get("cooldown") == "x"

    def test_a_sub_second_timeout_is_one_second(self, shared_cache: str) -> None:
        cache = SharedCache("default")
        cache.set("short", "x", 0.01)
        assert caches["default"].get("short") == "x"

    def test_incr_counts_across_instances(self, shared_cache: str) -> None:
        one, two = SharedCache("default"), SharedCache("default")
        assert [one.incr("count", 60), two.incr("count", 60), one.incr("count", 60)] == [1, 2, 3]

    def test_incr_answers_from_the_writes_not_from_a_replica_read(self, settings: Any) -> None:
        settings.CACHES = {"default": {"BACKEND": "tests.support.replica.LaggingReplicaCache", "LOCATION": "incr"}}
        one, two = SharedCache("default"), SharedCache("default")
        try:
            assert [one.incr("count", 60), two.incr("count", 60)] == [1, 2]
            assert one.get("count") is None  # the replica has not caught up: a read-then-set would count 1, 1
        finally:
            replica.empty("incr")

    def test_incr_on_a_cache_that_keeps_nothing_counts_in_this_process(self, settings: Any) -> None:
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
        cache = SharedCache("default")
        assert [cache.incr("count", 60), cache.incr("count", 60)] == [1, 2]


class TestWhenTheCacheRaises:
    def test_every_operation_falls_back_to_process_memory(self, broken: SharedCache) -> None:
        broken.set("k", "v", 60)
        assert broken.get("k") == "v"
        assert broken.add("k", "other", 60) is False
        assert broken.add("lock", "mine", 60) is True
        assert broken.add("lock", "again", 60) is False
        broken.delete("lock")
        assert broken.add("lock", "again", 60) is True
        assert broken.is_down

    def test_incr_falls_back_to_process_memory(self, broken: SharedCache) -> None:
        assert [broken.incr("count", 60), broken.incr("count", 60)] == [1, 2]
        assert broken.is_down

    def test_local_entries_expire(self, broken: SharedCache) -> None:
        broken.set("k", "v", 0.05)
        assert broken.add("lock", "mine", 0.05) is True
        time.sleep(0.1)
        assert broken.get("k") is None
        assert broken.add("lock", "again", 60) is True

    def test_warns_once_per_interval(self, broken: SharedCache, caplog: pytest.LogCaptureFixture) -> None:
        with caplog.at_level(logging.WARNING, logger="jwtguard"):
            for _ in range(20):
                broken.get("k")
                broken._retry_at = 0.0  # try the backend every time
        warnings = [r.getMessage() for r in caplog.records if "failed on" in r.getMessage()]
        assert warnings == [
            "jwtguard: cache 'broken' failed on get (ConnectionError: cache is down (get)); "
            "using this process's memory until it answers"
        ]
        assert CALLS.count("get") == 20

    def test_skips_the_backend_for_a_while_after_a_failure(self, broken: SharedCache) -> None:
        broken.get("k")
        for _ in range(50):
            broken.get("k")
            broken.set("k", "v", 60)
            broken.add("a", "v", 60)
            broken.delete("a")
        assert CALLS == ["get"]

    def test_tries_again_after_the_retry_interval(self, broken: SharedCache, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(cache_module, "RETRY_INTERVAL", 0.05)
        broken.get("k")
        time.sleep(0.06)
        broken.add("k", "v", 60)
        assert CALLS == ["get", "add"]

    def test_an_unknown_alias_is_an_outage_not_an_exception(self, settings: Any) -> None:
        cache = SharedCache("no-such-alias")
        cache.set("k", "v", 60)
        assert cache.get("k") == "v"
        assert cache.is_down

    def test_recovery_is_logged_and_sharing_resumes(
        self, settings: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(cache_module, "RETRY_INTERVAL", 0.0)
        working = settings.CACHES["default"]
        settings.CACHES = {"default": working, "flaky": {"BACKEND": "tests.test_cache.BrokenCache"}}
        cache = SharedCache("flaky")
        cache.set("only-here", "local", 60)
        assert cache.is_down
        settings.CACHES = {"default": working, "flaky": working}
        with caplog.at_level(logging.WARNING, logger="jwtguard"):
            assert cache.get("only-here") is None  # the real cache answers: its answer wins
        assert not cache.is_down
        assert any("cache 'flaky' answers again" in r.getMessage() for r in caplog.records)
        cache.set("shared", "v", 60)
        assert SharedCache("flaky").get("shared") == "v"


@pytest.mark.redis
@pytest.mark.slow
class TestARealRedisThatStops:
    @pytest.fixture
    def on_private_redis(self, redis_server: RedisServer, settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(cache_module, "RETRY_INTERVAL", 0.0)
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": redis_server.url,
                "OPTIONS": {"socket_timeout": 0.5, "socket_connect_timeout": 0.5},
            }
        }

    def test_survives_a_restart(self, redis_server: RedisServer, on_private_redis: None) -> None:
        one, two = SharedCache("default"), SharedCache("default")
        one.set("k", "before", 60)
        assert two.get("k") == "before"

        redis_server.stop()
        started = time.monotonic()
        one.set("k", "during", 60)
        assert one.get("k") == "during"  # this process's memory
        assert two.get("k") is None  # another process never saw it
        assert one.add("lock", "one", 60) is True
        assert time.monotonic() - started < 2
        assert one.is_down

        redis_server.start()
        assert two.add("lock", "two", 60) is True  # the restarted Redis is empty
        assert one.add("lock", "one", 60) is False  # ... and shared again
        one.set("k", "after", 60)
        assert two.get("k") == "after"
        assert not one.is_down


class ForgetfulCache(BaseCache):
    """A cache that keeps nothing and says yes to every ``add``, like DummyCache but not one by class."""

    def __init__(self, location: str, params: dict[str, Any]) -> None:
        super().__init__(params)

    def get(self, key: Any, default: Any = None, version: Any = None) -> Any:
        CALLS.append("get")
        return default

    def set(self, key: Any, value: Any, timeout: Any = None, version: Any = None) -> None:
        CALLS.append("set")

    def add(self, key: Any, value: Any, timeout: Any = None, version: Any = None) -> bool:
        CALLS.append("add")
        return True

    def delete(self, key: Any, version: Any = None) -> bool:
        CALLS.append("delete")
        return False


class TestWhenAddDoesNotStick:
    """A cache whose ``add`` always succeeds would let every request win the lock and the cooldown: such a cache
    is per-process, and this process's memory answers for it."""

    @pytest.mark.parametrize(
        "backend", ["django.core.cache.backends.dummy.DummyCache", "tests.test_cache.ForgetfulCache"]
    )
    def test_lock_and_values_hold_in_process_memory(
        self, settings: Any, caplog: pytest.LogCaptureFixture, backend: str
    ) -> None:
        settings.CACHES = {**settings.CACHES, "nothing": {"BACKEND": backend}}
        CALLS.clear()
        cache = SharedCache("nothing")
        with caplog.at_level(logging.WARNING, logger="jwtguard"):
            assert cache.add("lock", "mine", 60) is True
            assert cache.add("lock", "again", 60) is False
        cache.set("k", "v", 60)
        assert cache.get("k") == "v"
        assert cache.get("lock") == "mine"
        assert cache.per_process
        assert not cache.is_down
        assert "does not keep what is added to it" in caplog.text
        # DummyCache is known by its class; another cache is probed once (add, add, delete), then left alone.
        probed = [] if "Dummy" in backend else ["add", "add", "delete"]
        assert probed == CALLS

    def test_the_probe_runs_once_per_process_and_configuration(self, settings: Any) -> None:
        settings.CACHES = {**settings.CACHES, "nothing": {"BACKEND": "tests.test_cache.ForgetfulCache"}}
        CALLS.clear()
        for _ in range(3):
            assert SharedCache("nothing").add("lock", "mine", 60) is True  # each provider's first add
        assert CALLS == ["add", "add", "delete"]

    def test_a_cache_that_keeps_what_is_added_is_shared(self, shared_cache: str) -> None:
        cache = SharedCache("default")
        assert cache.add("lock", "mine", 60) is True
        assert not cache.per_process
        assert SharedCache("default").add("lock", "theirs", 60) is False
        assert caches["default"].get("lock") == "mine"


class TestFlappingCache:
    def test_answers_again_is_rate_limited_like_failed(
        self, settings: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(cache_module, "RETRY_INTERVAL", 0.0)
        working = settings.CACHES["default"]
        broken = {"BACKEND": "tests.test_cache.BrokenCache"}
        cache = SharedCache("flaky")
        with caplog.at_level(logging.WARNING, logger="jwtguard"):
            for _ in range(5):
                settings.CACHES = {"default": working, "flaky": broken}
                cache.get("k")
                assert cache.is_down
                settings.CACHES = {"default": working, "flaky": working}
                cache.get("k")
                assert not cache.is_down
        messages = [r.getMessage() for r in caplog.records]
        assert len([m for m in messages if "answers again" in m]) == 1
        assert len([m for m in messages if "failed on get" in m]) == 1


@pytest.mark.redis
@pytest.mark.slow
class TestDjangoRedisIgnoringExceptions:
    """django-redis with ``IGNORE_EXCEPTIONS`` answers ``None`` to everything while Redis is down: jwtguard goes
    to its client, which raises, so the outage is one like any other."""

    @pytest.fixture(params=["option", "setting"])
    def ignoring(self, request: pytest.FixtureRequest, redis_server: RedisServer, settings: Any) -> RedisServer:
        options: dict[str, Any] = {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5}
        if request.param == "option":
            options["IGNORE_EXCEPTIONS"] = True
        else:
            settings.DJANGO_REDIS_IGNORE_EXCEPTIONS = True
        settings.CACHES = {
            "default": {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": redis_server.url,
                "OPTIONS": options,
            }
        }
        return redis_server

    def test_a_silent_outage_falls_back_to_process_memory(self, ignoring: RedisServer) -> None:
        cache = SharedCache("default")
        assert cache.add("lock", "mine", 60) is True
        assert SharedCache("default").add("lock", "theirs", 60) is False  # shared while Redis answers
        ignoring.stop()
        assert caches["default"].add("other", "x", 60) is None  # what django-redis itself answers
        fresh = SharedCache("default")
        assert fresh.add("lock", "new", 60) is True
        assert fresh.add("lock", "again", 60) is False
        assert fresh.is_down
        assert not fresh.per_process
