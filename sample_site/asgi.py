"""ASGI entry point (``uvicorn sample_site.asgi:application``, ``daphne sample_site.asgi:application``).

HTTP goes to Django, where the async view runs natively; with Channels installed (``jwtguard[channels]``),
WebSockets go to ``routing.websocket_application`` (a JWT-authenticated echo, ``/ws/echo``).
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sample_site.settings")
# Set up Django before anything imports a consumer (consumers may import models).
django_application = get_asgi_application()
application: Any = django_application

if importlib.util.find_spec("channels") is not None:
    from channels.routing import ProtocolTypeRouter  # type: ignore[import-untyped]

    from sample_site.routing import websocket_application

    application = ProtocolTypeRouter({"http": django_application, "websocket": websocket_application})
