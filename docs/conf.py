"""Sphinx configuration: furo theme, MyST Markdown pages; CI builds with -W (warnings are errors)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

project = "jwtguard"
author = "jwtguard developers"
copyright = "jwtguard developers"
# The version lives in one place: jwtguard/__init__.py (read as text, so building needs no Django set-up).
release = re.search(r'^__version__ = "([^"]+)"', (ROOT / "jwtguard" / "__init__.py").read_text(), re.M).group(1)  # type: ignore[union-attr]
version = release

extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

myst_enable_extensions = ["colon_fence", "deflist"]
# Headings down to ### get anchors, so pages can link to `settings.md#leeway`.
myst_heading_anchors = 3

html_theme = "furo"
html_title = f"jwtguard {release}"
html_show_sourcelink = False
