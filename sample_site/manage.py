#!/usr/bin/env python
"""Django's command-line utility for sample_site; run from anywhere (``python sample_site/manage.py ...``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    # The project package is ``sample_site`` at the repository root: make that root importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sample_site.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
