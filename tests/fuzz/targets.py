"""What the fuzzer feeds: each target takes one input (bytes and a file name) and says how it
ended. "ok" (a row or a result) and "error" (one clean error: an `ImageError`, an error row, a
`FakescopeError`, a 4xx JSON answer) are both fine; "crash" is anything else (an unexpected
exception, a 500, an error message with a traceback or several lines, a row that breaks the
row contract) and carries the traceback.

Targets run inside a worker process (`tests.fuzz.runner`); models and the test client are
loaded once per process.
"""

from __future__ import annotations

import itertools
import json
import math
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

SMALL_MODEL = "cifake-resnet10s"
MAX_MEMBERS = 64  # archive members read per input (a mutated listing can name thousands)


@dataclass
class Outcome:
    status: str  # "ok", "error" or "crash"
    detail: str = ""


class Broken(Exception):
    """A result that breaks the contract (not an exception the code raised itself)."""


def _clean_message(msg: str) -> str:
    if not msg or "\n" in msg or "Traceback" in msg:
        raise Broken(f"error message is not one clean line: {msg!r}")
    return msg


def _check_row(row: dict[str, Any]) -> str:
    """'ok' or 'error' for a Detector row; Broken when it breaks the row contract."""
    if row.get("error"):
        _clean_message(row["error"])
        if row.get("prob_fake") is not None:
            raise Broken(f"error row with a score: {row}")
        return "error"
    p = row.get("prob_fake")
    if not isinstance(p, float) or not math.isfinite(p) or not 0.0 <= p <= 1.0:
        raise Broken(f"row without a valid prob_fake: {row}")
    if row.get("label") not in ("real", "fake", "uncertain"):
        raise Broken(f"row without a valid label: {row}")
    json.dumps(row, allow_nan=False)
    return "ok"


def _write(tmp: Path, name: str, data: bytes) -> Path:
    path = tmp / Path(name).name
    path.write_bytes(data)
    return path


# ---- cheap targets (no model) ----------------------------------------------------------------


def decode(data: bytes, name: str, tmp: Path) -> str:
    """The input rule: `to_model_input` (thumbnail models) and `load_rgb` (tile models)."""
    from fakescope.errors import ImageError
    from fakescope.images import load_rgb, to_model_input

    try:
        a = to_model_input(data, 32)
        b = load_rgb(data)
    except ImageError as e:
        _clean_message(str(e))
        return "error"
    if a.shape != (32, 32, 3) or b.ndim != 3 or b.shape[2] != 3:
        raise Broken(f"decoded shapes {a.shape}, {b.shape}")
    return "ok"


def evidence(data: bytes, name: str, tmp: Path) -> str:
    """`read_evidence` of the bytes and of the file (it promises never to raise)."""
    from fakescope.provenance.readers import read_evidence

    a = read_evidence(data)
    b = read_evidence(_write(tmp, name, data))
    if a.to_dict() != b.to_dict():
        raise Broken(f"bytes and file give different evidence: {a.summary()} / {b.summary()}")
    json.dumps(a.to_dict(), allow_nan=False)
    return "ok" if a.items else "error"


def _archive_refs(data: bytes, name: str, tmp: Path) -> list[dict[str, str]] | None:
    """scan's driver listing of an archive (None: refused with one clean error)."""
    from fakescope.errors import FakescopeError
    from fakescope.scan import iter_refs

    path = _write(tmp, name, data)
    try:
        return [r for r in itertools.islice(iter_refs([str(path)]), MAX_MEMBERS) if "src" in r]
    except FakescopeError as e:
        _clean_message(str(e))
        return None


def archive(data: bytes, name: str, tmp: Path) -> str:
    """scan of an archive without a model: the driver's listing, then each member read as a
    scan worker reads it (`Scorer._member`, and its error handling) and decoded."""
    from fakescope.errors import ImageError
    from fakescope.images import to_model_input
    from fakescope.scan import READ_ERRORS, Scorer

    refs = _archive_refs(data, name, tmp)
    if refs is None:
        return "error"
    reader = Scorer.__new__(Scorer)  # the worker's reading code, without loading a model
    reader._archives = {}
    status = "ok"
    try:
        for ref in refs:
            try:
                member = reader._member(ref["src"], ref["member"])
                to_model_input(member, 32)
            except (*READ_ERRORS, MemoryError):
                status = "error"  # Scorer.score turns these into an error row
            except ImageError as e:
                _clean_message(str(e))
                status = "error"
    finally:
        for arc in reader._archives.values():
            arc.close()
    return status


# ---- model targets ---------------------------------------------------------------------------


@cache
def detector(model: str | None):
    from fakescope.detector import Detector

    return Detector.load(model, device="cpu")


def _predict(model: str | None, data: bytes) -> str:
    rows = detector(model).predict_batch([data])
    if len(rows) != 1:
        raise Broken(f"{len(rows)} rows for one image")
    return _check_row(rows[0])


def predict_small(data: bytes, name: str, tmp: Path) -> str:
    return _predict(SMALL_MODEL, data)


def predict_default(data: bytes, name: str, tmp: Path) -> str:
    return _predict(None, data)


def inspect(data: bytes, name: str, tmp: Path) -> str:
    """`fakescope inspect`'s rows: pixels (small model) plus metadata evidence of a file."""
    from fakescope.cli.inspect import inspect_rows

    rows = list(inspect_rows(detector(SMALL_MODEL), [str(_write(tmp, name, data))]))
    if len(rows) != 1:
        raise Broken(f"{len(rows)} rows for one file")
    json.dumps(rows[0], allow_nan=False)
    return _check_row(rows[0])


@cache
def _scorer():
    from fakescope.scan import Scorer

    return Scorer(SMALL_MODEL, "cpu", 64)


def scan(data: bytes, name: str, tmp: Path) -> str:
    """scan of an archive with a model: the driver's listing, then a scan worker's `score`."""
    refs = _archive_refs(data, name, tmp)
    if refs is None:
        return "error"
    scorer = _scorer()
    try:
        rows = scorer.score(refs)
    finally:
        for arc in scorer._archives.values():
            arc.close()
        scorer._archives.clear()
    if len(rows) != len(refs):
        raise Broken(f"{len(rows)} rows for {len(refs)} members")
    return "error" if not rows or any(_check_row(r) == "error" for r in rows) else "ok"


@cache
def _client():
    from fastapi.testclient import TestClient

    from fakescope.serve.app import ServeSettings, create_app

    client = TestClient(create_app(detector(SMALL_MODEL), ServeSettings(batch_wait_ms=0)))
    client.__enter__()  # runs the lifespan (batch worker) for the life of the process
    return client


def rest(data: bytes, name: str, tmp: Path) -> str:
    """POST /api/v1/predict through the whole app (multipart parser, batching, rows)."""
    r = _client().post("/api/v1/predict", files=[("files", (name, data))])
    if r.status_code >= 500:
        raise Broken(f"HTTP {r.status_code}: {r.text[:300]}")
    body = r.json()
    if r.status_code != 200:
        _clean_message(body["error"])
        return "error"
    if len(body) != 1:
        raise Broken(f"{len(body)} rows for one upload")
    if body[0].get("error", "").startswith("internal error"):  # the Detector raised
        raise Broken(f"the batch worker caught an exception: {body[0]['error']}")
    return _check_row(body[0])


def selftest(data: bytes, name: str, tmp: Path) -> str:
    """The runner's own check: b"hang" sleeps, b"die" kills the process, b"raise" raises."""
    import os
    import time

    if data == b"hang":
        time.sleep(3600)
    if data == b"die":
        os._exit(3)
    if data == b"raise":
        raise ValueError("boom")
    return "ok"


TARGETS: dict[str, Callable[[bytes, str, Path], str]] = {
    "decode": decode,
    "evidence": evidence,
    "archive": archive,
    "predict_small": predict_small,
    "predict_default": predict_default,
    "inspect": inspect,
    "scan": scan,
    "rest": rest,
}
CHEAP = ("decode", "evidence", "archive")
SELFTEST = {"_selftest": selftest}  # not fuzzed: the runner looks targets up here too
ARCHIVE_TARGETS = ("archive", "scan")
WARM: dict[str, Callable[[], object]] = {
    "predict_small": lambda: detector(SMALL_MODEL),
    "predict_default": lambda: detector(None),
    "inspect": lambda: detector(SMALL_MODEL),
    "scan": _scorer,
    "rest": _client,
}


def run_target(target: str, data: bytes, name: str, tmp: Path) -> Outcome:
    """One input through one target, never raising: a crash is an Outcome with its traceback."""
    try:
        return Outcome((TARGETS | SELFTEST)[target](data, name, tmp))
    except Exception:  # noqa: BLE001 - that is what the fuzzer looks for
        return Outcome("crash", traceback.format_exc(limit=-8))
