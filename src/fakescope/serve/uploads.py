"""Uploads in memory: a streaming multipart parser and the request-body limit.

Starlette's own form parser spools files over 1 MB to temporary files on disk; uploads here
never touch the disk, so the parts are collected in memory by python-multipart's streaming
parser, and the body limit (checked on Content-Length before anything is read, and again on
every chunk for bodies sent without one) bounds that memory per request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fakescope.serve.batching import NamedBytes

FIELD = "files"
MAX_FIELDS = 64  # non-file form fields are ignored, but not without bound


class ApiError(Exception):
    """A request the server refuses: the status and one clear message, sent as JSON."""

    def __init__(self, status: int, message: str, **extra: object):
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


def too_large(max_bytes: int) -> ApiError:
    return ApiError(413, f"request body over the limit of {max_bytes / 1e6:g} MB")


@dataclass
class _Part:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    data: bytearray = field(default_factory=bytearray)
    name: str = ""
    filename: str | None = None


def _decode(value: bytes) -> str:
    """Header parameters arrive as latin-1 bytes; browsers put UTF-8 names in them."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


async def read_files(request: Request, max_files: int) -> list[NamedBytes]:
    """The files of the multipart field `files`, in upload order, as bytes in memory.

    415 when the body is not multipart/form-data; 400 when it is malformed; 413 for more than
    `max_files` files; 422 when there is no file in the field `files`."""
    ctype, params = parse_options_header(request.headers.get("content-type"))
    if ctype != b"multipart/form-data":
        got = ctype.decode("latin-1") or "no content type"
        raise ApiError(
            415, f"send the images as multipart/form-data in the field '{FIELD}' (got {got})"
        )
    boundary = params.get(b"boundary")
    if not boundary:
        raise ApiError(400, "multipart body without a boundary")

    parts: list[_Part] = []
    current = _Part()
    header_name, header_value = bytearray(), bytearray()
    files = fields = 0
    done = False

    def on_part_begin() -> None:
        nonlocal current
        current = _Part()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_name.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        current.headers[bytes(header_name).lower()] = bytes(header_value)
        header_name.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        nonlocal files, fields
        _, options = parse_options_header(current.headers.get(b"content-disposition"))
        if b"name" not in options:
            raise ApiError(400, "a multipart part has no field name")
        current.name = _decode(options[b"name"])
        if b"filename" in options:
            current.filename = _decode(options[b"filename"])
            files += 1
            if files > max_files:
                s = "s" if max_files != 1 else ""
                raise ApiError(413, f"more than {max_files} file{s} in one request")
        else:
            fields += 1
            if fields > MAX_FIELDS:
                raise ApiError(400, f"more than {MAX_FIELDS} form fields")

    def on_part_data(data: bytes, start: int, end: int) -> None:
        current.data.extend(data[start:end])

    def on_part_end() -> None:
        parts.append(current)

    def on_end() -> None:
        nonlocal done
        done = True

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_end": on_end,
        },
    )
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as e:
        raise ApiError(400, f"malformed multipart body: {e}") from None
    if not done:
        raise ApiError(400, "incomplete multipart body (no closing boundary)")

    uploads: list[NamedBytes] = []
    for p in parts:
        if p.name != FIELD:
            continue
        if p.filename is None:
            raise ApiError(422, f"the field '{FIELD}' must hold files, not text")
        uploads.append(NamedBytes(p.data, p.filename or "upload"))
        p.data = bytearray()  # free each part as soon as it is copied
    if not uploads:
        others = sorted({p.name for p in parts})
        got = f" (got {', '.join(repr(n) for n in others)})" if others else ""
        raise ApiError(422, f"no file in the field '{FIELD}'{got}")
    return uploads


class BodyLimit:
    """ASGI middleware: 413 for a body over `max_bytes`, before or while it is read."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not length.isdigit():
                await _send_error(send, ApiError(400, "invalid Content-Length header"))
                return
            if int(length) > self.max_bytes:
                await _send_error(send, too_large(self.max_bytes))
                return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise too_large(self.max_bytes)  # answered by the app's ApiError handler
            return message

        await self.app(scope, limited, send)


async def _send_error(send: Send, err: ApiError) -> None:
    body = json.dumps({"error": err.message}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": err.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
