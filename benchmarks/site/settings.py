"""Settings of the load-benchmark site: those of every benchmark process, from the JSON file the runner wrote."""

from __future__ import annotations

import json
import os
from pathlib import Path

from benchmarks.common import django_settings

globals().update(django_settings(**json.loads(Path(os.environ["BENCH_SITE_CONFIG"]).read_text())))
ROOT_URLCONF = "benchmarks.site.urls"
