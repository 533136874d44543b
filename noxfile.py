"""Developer sessions over the support matrix: `nox -s tests` (Django 4.2 and 5.2), `lint`, `typecheck`, `docs`.

CI runs the same steps without nox (scripts/test.sh: lint, docs, the suite on Django 5.2, then on 4.2),
so that it needs no second copy of every dependency per session.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "docs", "tests"]
nox.options.reuse_existing_virtualenvs = True

DJANGO_VERSIONS = ["4.2", "5.2"]


@nox.session
@nox.parametrize("django", DJANGO_VERSIONS)
def tests(session: nox.Session, django: str) -> None:
    """The test suite on one Django series; needs a redis-server on 127.0.0.1:6379 (scripts/ensure-redis.sh)."""
    session.install("-e", ".[dev]", f"Django~={django}.0")
    session.run("python", "-c", f"import django; assert django.get_version().startswith('{django}.')")
    session.run("pytest", *session.posargs, env={"JWTGUARD_REQUIRE_REDIS": "1"})


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "jwtguard", "tests")
    session.run("ruff", "format", "--check", "jwtguard", "tests")


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[dev]")
    session.run("mypy")


@nox.session
def docs(session: nox.Session) -> None:
    session.install("-e", ".[docs]")
    session.run("python", "-m", "sphinx", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html")
