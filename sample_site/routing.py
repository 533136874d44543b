"""The WebSocket routes of sample_site, every one behind jwtguard's Channels middleware."""

from __future__ import annotations

from channels.routing import URLRouter  # type: ignore[import-untyped]
from django.urls import path

from jwtguard.contrib.channels import JWTAuthMiddleware
from sample_site.consumers import EchoConsumer

# required=True: a socket without a token is closed with 4401 before EchoConsumer sees it.
websocket_application = JWTAuthMiddleware(URLRouter([path("ws/echo", EchoConsumer.as_asgi())]), required=True)
