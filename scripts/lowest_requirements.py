"""Prints the lowest version pyproject.toml admits for each runtime dependency, as ``name==version`` pins.

The oldest supported pair of the test matrix installs these (scripts/venv.sh ... lowest), so every floor that
pyproject.toml states is one the suite has passed on. Runtime dependencies only: Django's series comes from the
matrix; the dev tools (linters, stubs, test runners) stay free to be the newest.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

#: The extras users install beside the runtime dependencies (jwtguard[drf,redis,ninja,channels]); Django's
#: series comes from the matrix.
EXTRAS = ("drf", "redis", "ninja", "channels")
FLOOR = re.compile(r'"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?>=([0-9][0-9A-Za-z.]*)[^"]*"')


def section(text: str, start: str) -> str:
    """The text of a TOML array that begins with ``start`` (our pyproject keeps one item per line)."""
    begin = text.index(start)
    return text[begin : text.index("]\n", begin)]


def main() -> int:
    text = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    arrays = [section(text, "dependencies = [")] + [section(text, f"{extra} = [") for extra in EXTRAS]
    pins = {}
    for array in arrays:
        for name, version in FLOOR.findall(array):
            if name.lower() != "django":
                pins[name] = version
    if not pins:
        print("no floors found in pyproject.toml", file=sys.stderr)
        return 1
    print("\n".join(f"{name}=={version}" for name, version in sorted(pins.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
