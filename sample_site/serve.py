"""Starting sample_site the one way the demo and the end-to-end test (and, in shell, the Dockerfile) do."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def gunicorn_command(python: str = sys.executable) -> list[str]:
    """gunicorn with ``gunicorn_conf`` (``SAMPLE_SITE_BIND``, ``WEB_CONCURRENCY`` workers); run from ``ROOT``."""
    return [python, "-m", "gunicorn", "--config=python:sample_site.gunicorn_conf", "sample_site.wsgi:application"]


def prepare(env: Mapping[str, str], python: str = sys.executable) -> None:
    """Without ``REDIS_URL`` the cache is a table of the SQLite database: create it (idempotent)."""
    if not env.get("REDIS_URL"):
        subprocess.run(
            [python, "sample_site/manage.py", "createcachetable"], cwd=ROOT, env=dict(env), check=True, timeout=60
        )
