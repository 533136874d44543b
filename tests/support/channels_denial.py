"""An ASGI application for tests/test_channels.py: sample_site's echo behind ``denial="http"``.

Served by Uvicorn (which offers the ``websocket.http.response`` extension) with ``channels_settings``.
"""

from __future__ import annotations

import django

django.setup()  # before the consumer is imported, as an asgi.py does

from jwtguard.contrib.channels import JWTAuthMiddleware  # noqa: E402
from sample_site.consumers import EchoConsumer  # noqa: E402

application = JWTAuthMiddleware(EchoConsumer.as_asgi(), required=True, denial="http")
