"""Separate OS processes that validate tokens, for the tests of the shared key set.

Each worker is a ``multiprocessing`` *spawn* child (a fresh interpreter, like a gunicorn worker or a pod)
that configures Django on its own (``settings.configure``) with a real Redis as its cache and the test's
``FakeIssuer`` as its issuer, then obeys commands from the test: validate these tokens, keep validating
for a while, validate until a token is accepted or refused, validate a token among forged ones, report its
key-set state. Every command is
bounded in time; every answer is plain data (counts, seconds, timestamps).
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import time
import traceback
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

#: How long the test waits for a worker's answer before calling the run broken.
ANSWER_TIMEOUT = 60.0
START_TIMEOUT = 60.0
#: Log records at ERROR or above in this worker since its last answer (a bug or an outage nobody handled).
_LOGGED_ERRORS: list[str] = []


# -- the child's side ------------------------------------------------------------------------------------


def _configure(cache: dict[str, Any], jwtguard: dict[str, Any]) -> None:
    import os

    import django
    from django.conf import settings

    if os.environ.get("JWTGUARD_WORKER_LOG"):  # for debugging a run: every worker's jwtguard log on stderr
        logging.basicConfig(level=logging.DEBUG, format="%(relativeCreated)6.0f %(process)d %(message)s")
    logging.getLogger().addHandler(_ErrorsKept(logging.ERROR))
    settings.configure(
        SECRET_KEY="jwtguard-worker",
        USE_TZ=True,
        INSTALLED_APPS=[],
        CACHES={"default": cache},
        JWTGUARD=jwtguard,
    )
    django.setup()
    # Like a web worker, load the application before the first request: imports, settings, a connection.
    from django.core.cache import caches

    from jwtguard.validation import get_validator

    get_validator()
    caches["default"].get("jwtguard-worker-warm-up")


class _ErrorsKept(logging.Handler):
    """Keeps every record it sees (ERROR and above) for the next answer; at most 20, the first ones."""

    def emit(self, record: logging.LogRecord) -> None:
        if len(_LOGGED_ERRORS) < 20:
            _LOGGED_ERRORS.append(f"{record.name} {record.levelname}: {record.getMessage()}")


@dataclass
class Tally:
    valid: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    unavailable: int = 0
    errors: list[str] = field(default_factory=list)
    max_seconds: float = 0.0

    def validate(self, raw: str) -> bool:
        from jwtguard import validate_token
        from jwtguard.exceptions import KeySetUnavailable, TokenError

        started = time.monotonic()
        ok = False
        try:
            validate_token(raw)
            self.valid += 1
            ok = True
        except TokenError as exc:
            self.rejected[exc.code] += 1
        except KeySetUnavailable:
            self.unavailable += 1
        except Exception:  # a bug: counted and reported, never hidden
            if len(self.errors) < 5:
                self.errors.append(traceback.format_exc())
        self.max_seconds = max(self.max_seconds, time.monotonic() - started)
        return ok

    def answer(self, **extra: Any) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "rejected": dict(self.rejected),
            "unavailable": self.unavailable,
            "errors": self.errors,
            "max_seconds": self.max_seconds,
            **extra,
        }


def _provider() -> Any:
    from jwtguard.conf import get_settings
    from jwtguard.jwks import get_provider

    return get_provider(get_settings().issuers[0])


def _validate(arg: dict[str, Any], barrier: Any) -> dict[str, Any]:
    """Validate ``tokens`` once each, all workers released together when ``together``."""
    tally = Tally()
    if arg.get("together"):
        barrier.wait(timeout=ANSWER_TIMEOUT)
    started = time.time()
    for raw in arg["tokens"]:
        tally.validate(raw)
    return tally.answer(started=started, ended=time.time())


def _loop(arg: dict[str, Any], barrier: Any) -> dict[str, Any]:
    """Validate ``tokens`` round and round until the wall clock reads ``until``."""
    tally = Tally()
    tokens, pause = arg["tokens"], arg.get("pause", 0.01)
    index = 0
    while time.time() < arg["until"]:
        tally.validate(tokens[index % len(tokens)])
        index += 1
        time.sleep(pause)
    return tally.answer(requests=index)


def _until(arg: dict[str, Any], barrier: Any) -> dict[str, Any]:
    """Validate one token until its outcome is ``accepted`` (True or False), for at most ``seconds``."""
    tally = Tally()
    deadline = time.monotonic() + arg["seconds"]
    while time.monotonic() < deadline:
        if tally.validate(arg["token"]) == arg["accepted"]:
            return tally.answer(reached_at=time.time())
        time.sleep(arg.get("pause", 0.02))
    return tally.answer(reached_at=None)


def _mixed(arg: dict[str, Any], barrier: Any) -> dict[str, Any]:
    """Validate ``forged`` tokens round and round until the wall clock reads ``until``; from ``use_at`` on, also
    ``token`` after each of them. Reports both tallies, when ``token`` was first accepted, and how often it was
    refused after that."""
    forged, genuine = Tally(), Tally()
    first_accepted: float | None = None
    refused_after = index = 0
    while time.time() < arg["until"]:
        forged.validate(arg["forged"][index % len(arg["forged"])])
        index += 1
        if time.time() >= arg.get("use_at", 0.0):
            accepted = genuine.validate(arg["token"])
            if accepted and first_accepted is None:
                first_accepted = time.time()
            elif not accepted and first_accepted is not None:
                refused_after += 1
        time.sleep(arg.get("pause", 0.005))
    return {
        "forged": forged.answer(),
        "genuine": genuine.answer(first_accepted=first_accepted, refused_after=refused_after),
    }


def _state(arg: dict[str, Any], barrier: Any) -> dict[str, Any]:
    """What this process holds (L1) and what the shared cache holds (L2), after one ordinary lookup."""
    provider = _provider()
    time.sleep(arg.get("settle", 0.0))
    provider.usable_keyset()
    l1 = provider._keyset
    entry = provider.cache.get(provider.entry_key)
    return {
        "l1_fetched_at": None if l1 is None else l1.fetched_at,
        "l1_kids": None if l1 is None else sorted(l1.keys),
        "l2_fetched_at": entry.get("fetched_at") if isinstance(entry, dict) else None,
        "cache_down": provider.cache.is_down,
        "stats": asdict(provider.counters()),
    }


COMMANDS = {"validate": _validate, "loop": _loop, "until": _until, "mixed": _mixed, "state": _state}


def serve(cache: dict[str, Any], jwtguard: dict[str, Any], inbox: Any, outbox: Any, barrier: Any) -> None:
    """The worker's main: configure Django, say ready, then answer commands until told to stop."""
    import os

    _configure(cache, jwtguard)
    outbox.put(("ready", os.getpid()))
    while True:
        command, arg = inbox.get(timeout=300)
        if command == "stop":
            return
        try:
            answer = COMMANDS[command](arg, barrier)
            outbox.put(("ok", {**answer, "logged_errors": _LOGGED_ERRORS[:]}))
            _LOGGED_ERRORS.clear()
        except Exception:
            outbox.put(("failed", traceback.format_exc()))


# -- the test's side -------------------------------------------------------------------------------------


class Cluster:
    """``size`` spawned workers sharing one cache; ``send`` a command to each, then ``collect`` the answers."""

    def __init__(self, size: int, *, cache: dict[str, Any], jwtguard: dict[str, Any]) -> None:
        context = multiprocessing.get_context("spawn")
        self.barrier = context.Barrier(size)
        self.inboxes = [context.Queue() for _ in range(size)]
        self.outboxes = [context.Queue() for _ in range(size)]
        self.processes = [
            context.Process(
                target=serve,
                args=(cache, jwtguard, self.inboxes[i], self.outboxes[i], self.barrier),
                name=f"jwtguard-worker-{i}",
                daemon=True,
            )
            for i in range(size)
        ]

    def __enter__(self) -> Cluster:
        for process in self.processes:
            process.start()
        for outbox in self.outboxes:
            kind, _ = outbox.get(timeout=START_TIMEOUT)
            assert kind == "ready"
        return self

    def __exit__(self, *exc_info: object) -> None:
        for inbox in self.inboxes:
            inbox.put(("stop", None))
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)

    def send(self, command: str, args: list[dict[str, Any]] | dict[str, Any]) -> None:
        """One command to every worker: ``args`` is one dict for all, or a list with one dict per worker."""
        per_worker = args if isinstance(args, list) else [args] * len(self.inboxes)
        assert len(per_worker) == len(self.inboxes)
        for inbox, arg in zip(self.inboxes, per_worker, strict=True):
            inbox.put((command, arg))

    def collect(self, timeout: float = ANSWER_TIMEOUT) -> list[dict[str, Any]]:
        answers = []
        deadline = time.monotonic() + timeout
        for index, outbox in enumerate(self.outboxes):
            try:
                kind, answer = outbox.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"worker {index} did not answer within {timeout}s") from None
            if kind != "ok":
                raise AssertionError(f"worker {index} failed:\n{answer}")
            answers.append(answer)
        return answers

    def ask(self, command: str, args: list[dict[str, Any]] | dict[str, Any]) -> list[dict[str, Any]]:
        self.send(command, args)
        return self.collect()


def totals(answers: list[dict[str, Any]]) -> dict[str, Any]:
    """The workers' tallies added up (errors listed, max_seconds the worst)."""
    rejected: Counter[str] = Counter()
    for answer in answers:
        rejected.update(answer["rejected"])
    return {
        "valid": sum(a["valid"] for a in answers),
        "rejected": dict(rejected),
        "unavailable": sum(a["unavailable"] for a in answers),
        "errors": [e for a in answers for e in a["errors"]],
        "logged_errors": [e for a in answers for e in a.get("logged_errors", [])],
        "max_seconds": max(a["max_seconds"] for a in answers),
    }
