"""Run the app under uvicorn: bind first (a clear error for a busy port), then serve.

Slow clients: uvicorn's protocol is `limits.HeaderDeadline` (headers within
--header-timeout-s), its `limit_concurrency` is --max-connections, idle kept-alive connections
close after `KEEP_ALIVE_S`, and a request line plus headers over `MAX_HEADER_BYTES` is a 400
(docs/serve-limits.md lists every limit).

SIGTERM and Ctrl-C stop uvicorn gracefully: it stops accepting, finishes the requests in
flight (up to `GRACE_S`), then the lifespan stops the batch worker.
"""

from __future__ import annotations

import os
import socket
import sys

from fakescope.errors import FakescopeError, missing_extra

GRACE_S = 10
KEEP_ALIVE_S = 5  # uvicorn's default, stated here because docs/serve-limits.md promises it
MAX_HEADER_BYTES = 16 * 1024  # h11's default bound on an incomplete request line + headers


def require_serve():
    """uvicorn, after checking every package of the `serve` extra: a missing one is one error
    line naming the extra (FakescopeError), never an ImportError traceback."""
    for module, package in (
        ("fastapi", "fastapi"),
        ("uvicorn", "uvicorn"),
        ("python_multipart", "python-multipart"),
    ):
        try:
            __import__(module)
        except ImportError:
            raise missing_extra(package, "serve") from None
    import uvicorn

    return uvicorn


def _bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise FakescopeError(f"cannot resolve host {host!r}: {e.strerror}") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as e:
        sock.close()
        raise FakescopeError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.set_inheritable(True)
    return sock


def run_server(
    host: str,
    port: int,
    settings,
    workers: int = 1,
    access_log: bool = True,
    quiet: bool = False,
) -> int:
    """Serve until stopped; returns the exit status (130 after Ctrl-C)."""
    uvicorn = require_serve()
    from fakescope.detector import Detector
    from fakescope.serve.app import ENV, configure_logging, create_app, settings_env

    if workers < 1:
        raise FakescopeError("--workers must be at least 1")
    if settings.max_files < 1 or settings.max_body_mb <= 0 or settings.batch_wait_ms < 0:
        raise FakescopeError("--max-files and --max-body-mb must be positive")
    if settings.max_queue < settings.max_files:
        raise FakescopeError("--max-queue must be at least --max-files (one full request)")
    from fakescope.serve.limits import HEADER_ENV

    # read by HeaderDeadline in each server process (uvicorn builds the protocol itself)
    os.environ[HEADER_ENV] = str(settings.header_timeout_s)
    # load once here: a bad --model is one error line, not a failed start-up with a traceback
    det = Detector.load(settings.model, device=settings.device)
    sock = _bind(host, port)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    log_level = "warning" if quiet else "info"
    print(
        f"fakescope: serving {det.name} on http://{shown}:{bound}/ "
        f"(API docs at /docs; Ctrl-C to stop)",
        file=sys.stderr,
        flush=True,
    )
    configure_logging(log_level)
    common = dict(
        log_level=log_level,
        access_log=access_log,
        timeout_graceful_shutdown=GRACE_S,
        server_header=False,
        http="fakescope.serve.limits:HeaderDeadline",
        limit_concurrency=settings.max_connections,
        timeout_keep_alive=KEEP_ALIVE_S,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
    )
    try:
        if workers == 1:
            config = uvicorn.Config(create_app(det, settings), **common)
            uvicorn.Server(config).run(sockets=[sock])
        else:
            # each worker process imports the app factory and loads the model itself
            sock.close()
            if port == 0:
                raise FakescopeError("--port 0 needs --workers 1")
            del det
            os.environ[ENV] = settings_env(settings, log_level)
            uvicorn.run(
                "fakescope.serve.app:app_from_env",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                **common,
            )
    except KeyboardInterrupt:
        return 130
    return 0
