"""Settings of the ASGI server tests/test_channels.py starts: the suite's own, with ``JWTGUARD`` from the test.

``JWTGUARD_SETTINGS_JSON`` holds the ``JWTGUARD`` dict (a ``FakeIssuer``'s settings, ``LEEWAY`` 0 for the
expiry test); the application served is sample_site's (``sample_site.asgi:application``).
"""

from __future__ import annotations

import json
import os
from typing import Any

from tests.settings import *  # noqa: F403 - the suite's settings, one key replaced

JWTGUARD: dict[str, Any] = json.loads(os.environ["JWTGUARD_SETTINGS_JSON"])
