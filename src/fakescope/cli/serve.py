"""`fakescope serve`: the web page and REST API (`fakescope.serve`; the `serve` extra)."""

from __future__ import annotations

from fakescope import argtypes
from fakescope.cli.options import add_common_args, subcommand


def add_parser(sub) -> None:
    s = subcommand(
        sub,
        "serve",
        "web page and REST API (needs the 'serve' extra)",
        "fakescope serve",
        "fakescope serve --host 0.0.0.0 --port 8080 --workers 2 --max-body-mb 10",
        details="Open http://127.0.0.1:8000/ for the page; the API is under /api/v1 "
        "(OpenAPI docs at /docs).",
    )
    add_common_args(s)
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback)")
    s.add_argument(
        "--port",
        type=argtypes.non_negative_int,
        default=8000,
        help="port (default 8000; 0 picks a free port)",
    )
    s.add_argument(
        "--workers",
        type=argtypes.positive_int,
        default=1,
        help="server processes, each loads the model (default 1)",
    )
    limits = s.add_argument_group("limits (each explained in docs/serve-limits.md)")
    limits.add_argument(
        "--max-body-mb",
        type=argtypes.positive_float,
        default=20.0,
        help="request body limit in MB (default 20)",
    )
    limits.add_argument(
        "--max-files", type=argtypes.positive_int, default=32, help="files per request (default 32)"
    )
    s.add_argument(
        "--batch-wait-ms",
        type=argtypes.positive_float,
        default=5.0,
        help="how long the worker waits to fill a micro-batch (default 5)",
    )
    limits.add_argument(
        "--max-queue",
        type=argtypes.positive_int,
        default=256,
        help="images queued or being scored; a request beyond gets 503 + Retry-After (default 256)",
    )
    limits.add_argument(
        "--max-explain-queue",
        type=argtypes.positive_int,
        default=4,
        help="explain calls waiting or running (one runs at a time); beyond: 503 (default 4)",
    )
    limits.add_argument(
        "--request-timeout-s",
        type=argtypes.positive_float,
        default=60.0,
        help="time to wait for and score a request's images (explain: and its heatmap) "
        "once its body is read; past it 503 (default 60)",
    )
    limits.add_argument(
        "--body-timeout-s",
        type=argtypes.positive_float,
        default=60.0,
        help="time for the whole body to arrive after the headers; past it 408 and the "
        "connection is closed (default 60)",
    )
    limits.add_argument(
        "--header-timeout-s",
        type=argtypes.positive_float,
        default=10.0,
        help="time for the request line and headers to arrive; past it the connection is "
        "closed (default 10)",
    )
    limits.add_argument(
        "--max-connections",
        type=argtypes.positive_int,
        default=64,
        help="open connections (and requests in progress) per server process; a request "
        "beyond gets 503; with --max-body-mb it bounds the memory of bodies being received "
        "(default 64)",
    )
    s.add_argument("--no-access-log", action="store_true", help="no line per request")
    s.set_defaults(func=run)


def run(args) -> int:
    from fakescope.serve.server import require_serve

    require_serve()  # before the app module, which imports FastAPI at its top
    from fakescope.serve.app import ServeSettings
    from fakescope.serve.server import run_server

    settings = ServeSettings(
        model=args.model,
        device=args.device,
        max_body_mb=args.max_body_mb,
        max_files=args.max_files,
        batch_wait_ms=args.batch_wait_ms,
        max_queue=args.max_queue,
        max_explain_queue=args.max_explain_queue,
        request_timeout_s=args.request_timeout_s,
        body_timeout_s=args.body_timeout_s,
        header_timeout_s=args.header_timeout_s,
        max_connections=args.max_connections,
    )
    return run_server(
        args.host, args.port, settings, args.workers, not args.no_access_log, args.quiet
    )
