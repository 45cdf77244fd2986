"""Time limits for slow clients (docs/serve-limits.md).

A client that sends its request a byte at a time must not hold the server: the request line
and headers must arrive within `header_timeout_s` of the connection opening (or of the previous
response on a kept-alive connection), else the connection is closed (uvicorn has no such limit:
`HeaderDeadline` adds it to its h11 protocol); the body must arrive within `body_timeout_s` of
the headers, else the request gets 408 and the connection is closed (`BodyDeadline`). Neither
waits in a thread: a slow connection costs a socket and a few KB, not a worker.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import h11
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from fakescope.serve.uploads import ApiError

HEADER_ENV = "FAKESCOPE_HEADER_TIMEOUT_S"
HEADER_TIMEOUT_S = 10.0
CLOSE = (b"connection", b"close")


class BodyDeadline:
    """ASGI middleware: 408 when the whole body has not arrived `seconds` after the headers."""

    def __init__(self, app: ASGIApp, seconds: float):
        self.app, self.seconds = app, seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        until = time.monotonic() + self.seconds
        body_done = timed_out = False

        async def timed() -> Message:
            nonlocal body_done, timed_out
            if body_done:  # later calls wait for a disconnect: not the client's body any more
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(0.0, until - time.monotonic()))
            except TimeoutError:
                timed_out = True
                raise ApiError(
                    408, f"request body not received within {self.seconds:g} s"
                ) from None  # answered by the app's ApiError handler
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def closing(message: Message) -> None:
            if timed_out and message["type"] == "http.response.start":
                # the rest of the body is never read: the connection cannot carry another request
                message = {**message, "headers": [*message.get("headers", []), CLOSE]}
            await send(message)

        await self.app(scope, timed, closing)


class HeaderDeadline(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request line and headers are not
    complete `$FAKESCOPE_HEADER_TIMEOUT_S` seconds after it opened or after its previous
    response (an environment variable: uvicorn builds the protocol itself, in every worker
    process; `run_server` sets it)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.header_timeout_s = float(os.environ.get(HEADER_ENV, HEADER_TIMEOUT_S))
        self._header_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._too_slow)

    def _too_slow(self) -> None:
        self._header_timer = None
        # IDLE: no complete request line and headers yet (a request in progress is not)
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.logger.info(
                "closing a connection: headers not received within %gs", self.header_timeout_s
            )
            self.transport.close()

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        super().connection_lost(exc)
