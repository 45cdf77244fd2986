"""The FastAPI app of `fakescope serve`: the page, the REST API, limits and JSON errors.

The model loads once (before the server starts, or in the lifespan when the app is built
without one); single-image requests are scored together by the micro-batching worker
(`batching.py`); explanations (predict's row + a map: Grad-CAM needs gradients and a model
copy per call) run in a one-thread pool of their own. Every refusal is JSON
`{"error": "..."}` with 400/413/415/422; an image that cannot be read is an error row in
/predict (HTTP 200, like `fakescope predict`), and a 422 from /explain.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import math
import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from fakescope.detector import Detector
from fakescope.errors import FakescopeError, ImageError
from fakescope.images import MAX_PIXELS
from fakescope.model_dir import (
    DEFAULT_MODEL,
    available_models,
)
from fakescope.serve.batching import BatchWorker, ExplainQueue, Overloaded, deadline
from fakescope.serve.limits import HEADER_TIMEOUT_S, BodyDeadline
from fakescope.serve.uploads import FIELD, ApiError, BodyLimit, read_files

log = logging.getLogger("fakescope.serve")

API = "/api/v1"
STATIC = Path(__file__).parent / "static"
ENV = "FAKESCOPE_SERVE"  # settings for worker processes started by uvicorn (--workers > 1)
# The page loads nothing from elsewhere; the browser enforces it. (/docs is FastAPI's Swagger
# UI, which loads its script from a CDN, so it is left without this header.)
PAGE_CSP = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
OVERLAY_MAX = 1024  # longest side of the overlay PNG sent back


@dataclass(frozen=True)
class ServeSettings:
    """Limits and batching; the CLI flags of `fakescope serve`."""

    model: str | None = None
    device: str = "auto"
    max_body_mb: float = 20.0
    max_files: int = 32
    batch_wait_ms: float = 5.0
    max_batch: int | None = None  # None: the Detector's batch size
    # docs/serve-limits.md: each limit, its flag and why
    max_queue: int = 256
    max_explain_queue: int = 4
    request_timeout_s: float = 60.0
    body_timeout_s: float = 60.0
    header_timeout_s: float = HEADER_TIMEOUT_S
    max_connections: int = 64

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1_000_000)


# ---- JSON ------------------------------------------------------------------------------------


def _finite(obj: Any) -> Any:
    """JSON has no NaN/inf: they become null (a metric that could not be computed)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    if obj is None or isinstance(obj, str | int | bool):
        return obj
    if hasattr(obj, "item"):  # numpy scalars
        return _finite(obj.item())
    return str(obj)


def json_response(obj: Any, status: int = 200, headers: dict | None = None) -> Response:
    body = json.dumps(_finite(obj), ensure_ascii=False, allow_nan=False)
    return Response(body, status, headers=headers, media_type="application/json")


def _error(status: int, message: str, **extra: Any) -> Response:
    return json_response({"error": message, **extra}, status)


# ---- model cards (written by the kinds of model: `fakescope.kinds`) -------------------------


def with_threshold(row: dict[str, Any], members: dict[str, Detector]) -> dict[str, Any]:
    """The row plus the `threshold` and `uncertain` band of the model that scored it (null for
    an image that was not scored), so a client draws each verdict against its own model."""
    m = members.get(row.get("model") or "")
    return {
        **row,
        "threshold": m.threshold if m else None,
        "uncertain": list(m.uncertain) if m and m.uncertain else None,
    }


def shipped_cards(loaded: str) -> list[dict[str, Any]]:
    """Every shipped model's card, from its config alone (nothing is loaded)."""
    from fakescope.kinds.load import describe

    cards = []
    for name in available_models():
        try:
            card = describe(name).card()
        except FakescopeError as e:
            log.warning("skipping shipped model %s: %s", name, e)
            continue
        card.update(default=name == DEFAULT_MODEL, loaded=name == loaded)
        cards.append(card)
    return cards


def _upload_doc(multiple: bool) -> dict[str, Any]:
    """OpenAPI request body for the hand-parsed multipart endpoints (so /docs can send files)."""
    binary = {"type": "string", "format": "binary"}
    schema = {"type": "array", "items": binary} if multiple else binary
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": [FIELD],
                        "properties": {FIELD: schema},
                    }
                }
            },
        }
    }


_ERRORS = {
    s: {"description": d, "content": {"application/json": {"example": {"error": "..."}}}}
    for s, d in (
        (400, "malformed request"),
        (413, "body over the size limit, or too many files"),
        (415, "not multipart/form-data"),
        (422, "no file in the field 'files' (explain: the image cannot be read)"),
        (408, "the body did not arrive within the body time limit"),
        (503, "server busy (queue full or request time limit): retry after Retry-After seconds"),
    )
}


# ---- the app ---------------------------------------------------------------------------------


def create_app(detector: Detector | None = None, settings: ServeSettings | None = None) -> FastAPI:
    """The app; `detector` is used as given, else `settings.model` is loaded at start-up."""
    settings = settings or ServeSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        det = detector
        if det is None:
            det = await asyncio.to_thread(Detector.load, settings.model, settings.device)
        worker = BatchWorker(
            det.predict_batch,
            settings.max_batch or det.batch_size,
            settings.batch_wait_ms / 1000,
            settings.max_queue,
        )
        explainer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fakescope-explain")
        worker.start()
        app.state.det, app.state.worker, app.state.explainer = det, worker, explainer
        app.state.explain_queue = ExplainQueue(explainer, settings.max_explain_queue)
        app.state.cards = shipped_cards(det.name)
        app.state.members = {m.name: m for m in det.members()}
        log.info("model %s loaded on %s", det.name, det.device)
        try:
            yield
        finally:
            # uvicorn has finished the requests in flight by now (graceful shutdown)
            worker.stop()
            explainer.shutdown(wait=True, cancel_futures=True)

    app = FastAPI(
        title="fakescope",
        summary="Tell whether an image was generated by AI.",
        version=_version(),
        lifespan=lifespan,
    )
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(BodyDeadline, seconds=settings.body_timeout_s)
    app.state.settings = settings
    _add_error_handlers(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _add_info_routes(app, settings)
    _add_scoring_routes(app, settings)
    return app


def _add_info_routes(app: FastAPI, settings: ServeSettings) -> None:
    """The page, /healthz and the model cards."""

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> Response:
        html = (STATIC / "index.html").read_bytes()
        return HTMLResponse(html, headers={"Content-Security-Policy": PAGE_CSP})

    @app.get("/healthz", summary="Liveness, the loaded model, limits and batching counters")
    async def healthz(request: Request) -> Response:
        st = request.app.state
        return json_response(
            {
                "status": "ok",
                "model": st.det.name,
                "limits": {
                    "max_body_bytes": settings.max_body_bytes,
                    "max_files": settings.max_files,
                    "max_pixels": MAX_PIXELS,
                    "max_queue": settings.max_queue,
                    "max_explain_queue": settings.max_explain_queue,
                    "request_timeout_s": settings.request_timeout_s,
                    "body_timeout_s": settings.body_timeout_s,
                    "header_timeout_s": settings.header_timeout_s,
                    "max_connections": settings.max_connections,
                },
                "batching": {
                    "max_batch": st.worker.max_batch,
                    "wait_ms": settings.batch_wait_ms,
                    "pending": st.worker.pending,
                    "batches": st.worker.batches,
                    "images": st.worker.images,
                    "largest_batch": st.worker.largest_batch,
                    "refused": st.worker.refused,
                    "timed_out": st.worker.timed_out,
                },
                "explain": {
                    "in_flight": st.explain_queue.in_flight,
                    "refused": st.explain_queue.refused,
                    "timed_out": st.explain_queue.timed_out,
                },
            }
        )

    @app.get(f"{API}/models", summary="Every shipped model's card")
    async def models(request: Request) -> Response:
        return json_response(request.app.state.cards)

    @app.get(f"{API}/model", summary="The loaded model's card")
    async def model(request: Request) -> Response:
        det = request.app.state.det
        return json_response({**det.card(), "device": str(det.device)})


def _add_scoring_routes(app: FastAPI, settings: ServeSettings) -> None:
    """POST /predict (micro-batched) and /explain (one image, one explanation at a time)."""

    @app.post(
        f"{API}/predict",
        summary="Score one or more images",
        description=(
            f"Multipart field `{FIELD}`, one or more files (at most {settings.max_files}, "
            f"{settings.max_body_mb:g} MB in all). Returns a JSON list of rows in upload order: "
            "the Detector's row (`path`, `prob_fake`, `label`, `error`, and any further fields "
            "such as `model`) plus `threshold` and `uncertain` (of the model that scored the "
            "image) and `filename`. A file that is not a readable image gets a row "
            "with `error` set and `prob_fake` null; the request still succeeds."
        ),
        openapi_extra=_upload_doc(multiple=True),
        responses=_ERRORS,
    )
    async def predict(request: Request) -> Response:
        uploads = await read_files(request, settings.max_files)
        until = deadline(settings.request_timeout_s)
        rows = await request.app.state.worker.score(uploads, until)
        members = request.app.state.members
        return json_response(
            [
                {**with_threshold(row, members), "filename": up.filename}
                for row, up in zip(rows, uploads, strict=True)
            ]
        )

    @app.post(
        f"{API}/explain",
        summary="predict's row with a map of the evidence over one image",
        description=(
            f"Multipart field `{FIELD}`, one file. Returns the heatmap blended over the image as "
            "`image/png`, or with `?format=json` an object with `png_base64`, `width`, `height` "
            "(of the PNG), `heatmap_width`, `heatmap_height`, `method` (a Grad-CAM method for "
            "thumbnail networks, `tile-scores` for tiled photo models), `shows` (what the map "
            "means), `context` (when the verdict is more than the pixels': metadata or scope) "
            "and the image's row fields, the same as /predict's. An unreadable image is a 422."
        ),
        openapi_extra=_upload_doc(multiple=False),
        responses={
            200: {"content": {"image/png": {}}},
            **_ERRORS,
            501: {"description": "the `explain` extra (grad-cam) is not installed"},
        },
    )
    async def explain(
        request: Request,
        fmt: Literal["png", "json"] = Query("png", alias="format", description="png or json"),
    ) -> Response:
        [upload] = await read_files(request, max_files=1)
        st = request.app.state
        until = deadline(settings.request_timeout_s)
        async with st.explain_queue.slot() as slot:  # 503 at once when the queue is full
            try:  # predict's row and a map, in one pass through the Detector
                ex = await slot.run(st.det.explain, upload, until)
            except ImageError as e:  # names the upload
                raise ApiError(422, str(e), filename=upload.filename) from None
            except FakescopeError as e:  # e.g. the explain extra is not installed
                raise ApiError(501, str(e)) from None
        row = ex.row
        png, size = _png(ex.overlay)
        if fmt == "png":
            return Response(png, media_type="image/png")
        h, w = ex.heatmap.shape[:2]
        return json_response(
            {
                "png_base64": base64.b64encode(png).decode("ascii"),
                "width": size[0],
                "height": size[1],
                "heatmap_width": int(w),
                "heatmap_height": int(h),
                "method": ex.method,
                "shows": ex.shows,
                "context": ex.context,
                **with_threshold(row, st.members),
                "filename": upload.filename,
            }
        )


def _png(image) -> tuple[bytes, tuple[int, int]]:
    if max(image.size) > OVERLAY_MAX:
        image = image.copy()
        image.thumbnail((OVERLAY_MAX, OVERLAY_MAX))
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue(), image.size


def _version() -> str:
    from fakescope._version import __version__

    return __version__


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return _error(exc.status, exc.message, **exc.extra)

    @app.exception_handler(Overloaded)
    async def overloaded(request: Request, exc: Overloaded) -> Response:
        resp = _error(503, exc.message)
        resp.headers["Retry-After"] = str(exc.retry_after_s)
        return resp

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        resp = _error(exc.status_code, str(exc.detail))
        if exc.headers:
            resp.headers.update(exc.headers)
        return resp

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        # FastAPI's default echoes the input and a list of dicts; one line names the problem
        parts = []
        for err in exc.errors():
            where = ".".join(str(x) for x in err.get("loc", ()) if x not in ("query", "body"))
            parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else err.get("msg"))
        return _error(422, "; ".join(p for p in parts if p) or "invalid request")

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, "internal server error (logged on the server)")


def configure_logging(level: str = "INFO") -> None:
    """The server's own lines (model loaded, worker stopped) beside uvicorn's, on stderr."""
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     fakescope: %(message)s"))
        log.addHandler(handler)
    log.setLevel(level.upper())


def app_from_env() -> FastAPI:
    """Factory for uvicorn worker processes (`--workers N`): settings from $FAKESCOPE_SERVE;
    each process loads the model once in its lifespan."""
    config = json.loads(os.environ.get(ENV, "{}"))
    configure_logging(config.pop("log_level", "info"))
    return create_app(settings=ServeSettings(**config))


def settings_env(settings: ServeSettings, log_level: str) -> str:
    return json.dumps({**asdict(settings), "log_level": log_level})
