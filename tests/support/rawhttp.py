"""A raw-socket HTTP server on 127.0.0.1 for what ``FakeIssuer`` cannot express: answers written byte by
byte (a status line trickled, a chunked stream, a body cut short), and the request headers as received."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)  # names in lower case


Handler = Callable[[Request, socket.socket, threading.Event], None]


def answer(status: int = 200, body: bytes = b"", headers: tuple[tuple[str, str], ...] = ()) -> Handler:
    """A complete answer with a Content-Length, then the connection closed."""

    def handle(request: Request, conn: socket.socket, stopping: threading.Event) -> None:
        head = f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\nConnection: close\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers)
        conn.sendall(head.encode() + b"\r\n" + body)

    return handle


def json_answer(document: Any, headers: tuple[tuple[str, str], ...] = ()) -> Handler:
    return answer(200, json.dumps(document).encode(), (("Content-Type", "application/json"), *headers))


def raw(data: bytes, *, interval: float = 0.0, then_hang: bool = False) -> Handler:
    """Write ``data`` as is (one byte per ``interval`` when given), then close, or hang until the server stops."""

    def handle(request: Request, conn: socket.socket, stopping: threading.Event) -> None:
        if interval:
            for index in range(len(data)):
                if stopping.is_set():
                    return
                conn.sendall(data[index : index + 1])
                time.sleep(interval)
        else:
            conn.sendall(data)
        if then_hang:
            stopping.wait(60)

    return handle


def hang() -> Handler:
    """Accept, read the request, never answer."""
    return raw(b"", then_hang=True)


class ScriptedServer:
    """Serves ``routes`` (path -> handler) on a free loopback port and records every request it reads."""

    def __init__(self, routes: dict[str, Handler] | None = None) -> None:
        self.routes: dict[str, Handler] = dict(routes or {})
        self.requests: list[Request] = []
        self._stopping = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port = int(self._listener.getsockname()[1])
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def paths(self) -> list[str]:
        return [request.path for request in self.requests]

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self._listener.close()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                lines = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                request = Request(method, path, headers)
                self.requests.append(request)
                handler = self.routes.get(path.split("?")[0], answer(404, b'{"error": "not found"}'))
                handler(request, conn, self._stopping)
            except OSError:
                return


def delayed(seconds: float, handler: Handler) -> Handler:
    """``handler``'s answer, after ``seconds`` of silence."""

    def handle(request: Request, conn: socket.socket, stopping: threading.Event) -> None:
        if not stopping.wait(seconds):
            handler(request, conn, stopping)

    return handle


#: The ways an answer's end can be told (RFC 9112 section 6.3), each of which a fetch must read to the end.
FRAMINGS = ("http/1.0", "http/1.0-until-close", "close", "close-until-close", "chunked", "keep-alive")


def frame(body: bytes, framing: str) -> tuple[bytes, bool]:
    """A 200 answer carrying ``body`` framed as ``framing``, and whether the server then keeps the connection."""
    head = {
        "http/1.0": f"HTTP/1.0 200 OK\r\nContent-Length: {len(body)}\r\n",
        "http/1.0-until-close": "HTTP/1.0 200 OK\r\n",
        "close": f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nConnection: close\r\n",
        "close-until-close": "HTTP/1.1 200 OK\r\nConnection: close\r\n",
        "chunked": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n",
        "keep-alive": f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nConnection: keep-alive\r\n",
    }[framing]
    if framing == "chunked":
        half = len(body) // 2
        body = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:half], body[half:])) + b"0\r\n\r\n"
    data = (head + "Content-Type: application/json\r\n\r\n").encode() + body
    return data, framing in ("chunked", "keep-alive")


def framed_json(document: Any, framing: str) -> Handler:
    """``document`` as JSON, framed as ``framing``; a kept connection stays open until the client closes it."""
    data, keep = frame(json.dumps(document).encode(), framing)

    def handle(request: Request, conn: socket.socket, stopping: threading.Event) -> None:
        conn.sendall(data)
        if keep:
            conn.settimeout(0.05)
            deadline = time.monotonic() + 5
            while not stopping.is_set() and time.monotonic() < deadline:
                try:
                    if not conn.recv(4096):
                        return
                except TimeoutError:
                    continue

    return handle
