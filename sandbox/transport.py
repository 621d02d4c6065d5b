"""In-process httpx transports for the sandbox app that keep dropped connections real.

httpx's own ASGITransport hands back whatever the app sent, so a response announced with a
Content-Length and then cut off would arrive as a short body. These transports check the
body against Content-Length (and catch the sandbox's drop signal) and raise
`httpx.RemoteProtocolError`, which is what an httpx client sees from a real socket.

`SyncASGITransport` serves a sync `httpx.Client`: it runs the app on one long-lived event
loop in a background thread and hands each request over to it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any, TypedDict, Unpack

import anyio
import httpx
from starlette.types import ASGIApp, Message

from sandbox.faults import ConnectionDropped

__all__ = ["SandboxASGITransport", "SyncASGITransport"]

_Answer = tuple[int, list[tuple[bytes, bytes]], bytes]
_INCOMPLETE = "peer closed connection without sending complete message body"


def _scope(request: httpx.Request, client: tuple[str, int]) -> dict[str, Any]:
    url = request.url
    port = url.port or (443 if url.scheme == "https" else 80)
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": request.method,
        "headers": [(k.lower(), v) for k, v in request.headers.raw],
        "scheme": url.scheme,
        "path": url.path,
        "raw_path": url.raw_path.split(b"?")[0],
        "query_string": url.query,
        "server": (url.host, port),
        "client": client,
        "root_path": "",
    }


async def _call_app(
    app: ASGIApp,
    request: httpx.Request,
    body: bytes,
    client: tuple[str, int],
    raise_app_exceptions: bool,
) -> _Answer:
    """Run one request through the app; RemoteProtocolError if the answer was cut off."""
    sent_request = False
    done = anyio.Event()
    status: int | None = None
    headers: list[tuple[bytes, bytes]] = []
    chunks: list[bytes] = []
    complete = False

    async def receive() -> Message:
        nonlocal sent_request
        if not sent_request:
            sent_request = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status, headers, complete
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body" and not complete:
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                complete = True
                done.set()

    try:
        await app(_scope(request, client), receive, send)
    except ConnectionDropped as exc:
        raise httpx.RemoteProtocolError(_INCOMPLETE, request=request) from exc
    except Exception:
        # A real server would have answered 500 or closed the socket; tests prefer the cause.
        if raise_app_exceptions or status is None or not complete:
            raise
    finally:
        done.set()

    content = b"".join(chunks)
    if status is None:
        raise httpx.RemoteProtocolError(
            "server disconnected without sending a response", request=request
        )
    declared = next((v for k, v in headers if k.lower() == b"content-length"), None)
    if not complete or (declared is not None and int(declared) != len(content)):
        raise httpx.RemoteProtocolError(_INCOMPLETE, request=request)
    return status, headers, content


class _Options(TypedDict, total=False):
    """The keyword options of both transports (see `_InProcess`)."""

    client: tuple[str, int]
    raise_app_exceptions: bool


class _InProcess:
    """What both transports hold: the app, the client address it sees, how app errors surface."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        client: tuple[str, int] = ("127.0.0.1", 50000),
        raise_app_exceptions: bool = True,
    ) -> None:
        self.app = app
        self.client = client
        self.raise_app_exceptions = raise_app_exceptions

    async def _serve(self, request: httpx.Request, body: bytes) -> httpx.Response:
        status, headers, content = await _call_app(
            self.app, request, body, self.client, self.raise_app_exceptions
        )
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(content))


class SandboxASGITransport(_InProcess, httpx.AsyncBaseTransport):
    """Async in-process transport: an httpx.AsyncClient talks to the app without a socket."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Serve one request in the caller's event loop."""
        return await self._serve(request, await request.aread())


class SyncASGITransport(_InProcess, httpx.BaseTransport):
    """Sync in-process transport: one background event loop serves every request of a Client."""

    def __init__(self, app: ASGIApp, **options: Unpack[_Options]) -> None:
        super().__init__(app, **options)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=self._run_loop, args=(loop,), name="sandbox-asgi-loop", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        loop.run_forever()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Hand the request to the loop thread and wait for the whole answer."""
        body = request.read()
        loop = self._ensure_loop()
        future = asyncio.run_coroutine_threadsafe(self._serve(request, body), loop)
        timeouts = request.extensions.get("timeout") or {}
        # The whole exchange happens at once in-process, so the read timeout bounds it all.
        wait = timeouts.get("read")
        try:
            return future.result(timeout=wait)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise httpx.ReadTimeout("sandbox app did not answer in time", request=request) from None

    def close(self) -> None:
        """Stop the loop thread; a later request starts a new one."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5.0)
        if not thread.is_alive():
            loop.close()
