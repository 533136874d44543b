"""A WebSocket echo that reports who it speaks with: the Channels side of sample_site (see ``asgi.py``).

``JWTAuthMiddleware`` in front of it (``routing.py``) has verified the token before ``connect``; a refresh
sent by the client moves the connection's deadline on without this consumer hearing of it.
"""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer  # type: ignore[import-untyped]


class EchoConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]  # channels ships no type hints
    """Answers each JSON message with itself, the caller's user id and the scopes of the current token."""

    async def connect(self) -> None:
        await self.accept()

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        claims = self.scope["auth"]
        await self.send_json({"echo": content, "user": str(self.scope["user"]), "scope": claims.get("scope")})
