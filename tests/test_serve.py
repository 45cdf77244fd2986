"""`fakescope serve`: the REST API on every kind of image and bad request, limits, micro-batching
under concurrency, the page's self-containment, and the server process (start, SIGTERM)."""

from __future__ import annotations

import io
import json
import re
import socket
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

with warnings.catch_warnings():  # starlette's note about httpx2, once per session
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402

from fakescope.cli import main  # noqa: E402
from fakescope.detector import Detector  # noqa: E402
from fakescope.model_dir import DEFAULT_MODEL
from fakescope.serve.app import STATIC, ServeSettings, create_app  # noqa: E402
from tests.hostile import bomb_png, invalid_files, rgb, valid_files  # noqa: E402
from tests.serve_util import running_server  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
PREDICT, EXPLAIN = "/api/v1/predict", "/api/v1/explain"
REFUSALS = {400, 413, 415, 422}


@pytest.fixture(scope="module")
def det() -> Detector:
    return Detector.load(DEFAULT_MODEL, device="cpu")


@pytest.fixture(scope="module")
def client(det):
    with TestClient(create_app(det)) as c:
        yield c


@pytest.fixture(scope="module")
def small(det):
    """Tight limits: 1 MB bodies, 4 files."""
    with TestClient(create_app(det, ServeSettings(max_body_mb=1, max_files=4))) as c:
        yield c


def _png(seed: int, size: int = 32) -> bytes:
    """A smooth random picture (8×8 noise upsampled): each seed gets its own score. Pure
    per-pixel noise is far outside what the int8 CIFAKE graph was calibrated on and saturates
    it to one score, which would hide mix-ups."""
    buf = io.BytesIO()
    rgb(8, 8, seed).resize((size, size), Image.Resampling.BICUBIC).save(buf, "PNG")
    return buf.getvalue()


def _files(named: dict[str, bytes]) -> list[tuple]:
    return [("files", (name, data, "application/octet-stream")) for name, data in named.items()]


def _expected(det: Detector, named: dict[str, bytes]) -> list[dict]:
    """What the Detector itself says for the same bytes."""
    return det.predict_batch(list(named.values()))


def _is_error(r, status: int) -> str:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) >= {"error"} and body["error"], body
    assert "Traceback" not in r.text and "detail" not in body
    return body["error"]


# ---- predict ---------------------------------------------------------------------------------


def test_every_mode_and_format_scored_in_upload_order(client, det):
    named = valid_files()  # 20 files: 16-bit, 32-bit int, float, CMYK, palette, LA, GIF, ...
    r = client.post(PREDICT, files=_files(named))
    assert r.status_code == 200, r.text
    rows = r.json()
    assert [row["filename"] for row in rows] == list(named)
    for row, want in zip(rows, _expected(det, named), strict=True):
        assert row["error"] == "", row
        assert row["label"] in ("real", "fake", "uncertain")
        assert row["prob_fake"] == pytest.approx(want["prob_fake"], abs=1e-5)
        assert row["path"] == row["filename"]  # the row names the upload, not "<image>"


def test_single_files_match_the_batch(client, det):
    for name, data in list(valid_files().items())[:6]:
        [row] = client.post(PREDICT, files=_files({name: data})).json()
        assert row["prob_fake"] == pytest.approx(det.predict(data)["prob_fake"], abs=1e-5)


def test_hostile_files_are_error_rows_never_500(client, det):
    """Unreadable images are rows with `error` (HTTP 200), alone or among good files."""
    bad = invalid_files()
    for name, data in bad.items():
        r = client.post(PREDICT, files=_files({name: data}))
        assert r.status_code == 200, (name, r.text)
        [row] = r.json()
        assert row["error"] and row["prob_fake"] is None and row["label"] is None, row
        assert row["filename"] == name
    mixed = {}
    for i, (name, data) in enumerate(bad.items()):
        mixed[name] = data
        mixed[f"good{i}.png"] = _png(i)
    rows = client.post(PREDICT, files=_files(mixed)).json()
    assert [r["filename"] for r in rows] == list(mixed)
    for row, want in zip(rows, _expected(det, mixed), strict=True):
        assert row["error"] == want["error"]
        assert row["prob_fake"] == pytest.approx(want["prob_fake"], abs=1e-5)
    bomb = next(r for r in rows if r["filename"] == "bomb.png")
    assert "limit" in bomb["error"]  # the same pixel limit as predict


def test_non_ascii_filenames_survive(client):
    name = "name with spaces é ü 画像.jpg"
    [row] = client.post(PREDICT, files=_files({name: valid_files()[name]})).json()
    assert row["filename"] == name and row["error"] == ""


# ---- bad requests ----------------------------------------------------------------------------


def test_body_over_the_limit_is_413(small):
    big = {"big.png": b"\0" * 1_100_000}
    assert "limit of 1 MB" in _is_error(small.post(PREDICT, files=_files(big)), 413)

    def chunks():  # no Content-Length: the limit must hold while the body streams in
        head = b'--b\r\nContent-Disposition: form-data; name="files"; filename="x.png"\r\n\r\n'
        yield head
        for _ in range(40):
            yield b"\0" * 50_000

    r = small.post(
        PREDICT, content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"}
    )
    _is_error(r, 413)


def test_too_many_files_is_413(small):
    named = {f"{i}.png": _png(i) for i in range(5)}
    assert "more than 4 files" in _is_error(small.post(PREDICT, files=_files(named)), 413)
    assert small.post(PREDICT, files=_files(dict(list(named.items())[:4]))).status_code == 200
    two = dict(list(named.items())[:2])
    assert "more than 1 file" in _is_error(small.post(EXPLAIN, files=_files(two)), 413)


def test_no_file_wrong_field_not_multipart(client):
    assert "got 'file'" in _is_error(
        client.post(PREDICT, files=[("file", ("a.png", _png(0), "image/png"))]), 422
    )
    text = client.post(PREDICT, data={"files": "not a file"}, files=[("x", ("a", b"1", "a/b"))])
    assert "must hold files" in _is_error(text, 422)
    _is_error(client.post(PREDICT, data={"other": "x"}, files=[("x", ("a", b"1", "a/b"))]), 422)
    _is_error(client.post(PREDICT, json={"files": ["a.png"]}), 415)
    _is_error(client.post(PREDICT, content=_png(0), headers={"content-type": "image/png"}), 415)
    _is_error(client.post(PREDICT), 415)
    _is_error(client.post(EXPLAIN, json={}), 415)


@pytest.mark.parametrize(
    "body, ctype",
    [
        (b"garbage", "multipart/form-data"),  # no boundary
        (b"garbage without any boundary", "multipart/form-data; boundary=zz"),
        (
            b"--zz\r\nContent-Disposition: form-data\r\n\r\nx\r\n--zz--\r\n",
            "multipart/form-data; boundary=zz",
        ),
        (
            b'--zz\r\nContent-Disposition: form-data; name="files"; filename="a"\r\n\r\nabc',
            "multipart/form-data; boundary=zz",
        ),
        (b"--zz--\r\n", "multipart/form-data; boundary=zz"),
        (b"", "multipart/form-data; boundary=zz"),
    ],
)
def test_malformed_multipart_is_a_clear_refusal(client, body, ctype):
    r = client.post(PREDICT, content=body, headers={"content-type": ctype})
    assert r.status_code in REFUSALS
    _is_error(r, r.status_code)


def test_validation_errors_are_one_line(client):
    msg = _is_error(client.post(EXPLAIN + "?format=xml", files=_files({"a.png": _png(0)})), 422)
    assert msg.startswith("format:")
    _is_error(client.get("/api/v1/nothing"), 404)
    _is_error(client.get(PREDICT), 405)


def test_uploads_never_touch_the_disk(client, monkeypatch):
    """Starlette's form parser would spool this 3 MB upload to a temporary file."""

    def refuse(*a, **k):
        raise AssertionError("an upload was written to a temporary file")

    for name in ("SpooledTemporaryFile", "TemporaryFile", "NamedTemporaryFile", "mkstemp"):
        monkeypatch.setattr(tempfile, name, refuse)
    big = np.random.default_rng(0).integers(0, 255, (1000, 1000, 3), np.uint8)
    buf = io.BytesIO()
    Image.fromarray(big).save(buf, "PNG")
    assert len(buf.getvalue()) > 2_000_000
    [row] = client.post(PREDICT, files=_files({"big.png": buf.getvalue()})).json()
    assert row["error"] == "" and 0 <= row["prob_fake"] <= 1


# ---- explain ---------------------------------------------------------------------------------


def test_explain_png_and_json(client, det):
    pytest.importorskip("pytorch_grad_cam")
    data = valid_files()["photo.jpg"]
    r = client.post(EXPLAIN, files=_files({"photo.jpg": data}))
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    png = Image.open(io.BytesIO(r.content))
    assert png.format == "PNG" and png.mode == "RGB"
    j = client.post(EXPLAIN + "?format=json", files=_files({"photo.jpg": data})).json()
    assert (j["width"], j["height"]) == png.size and j["heatmap_width"] > 0
    assert j["filename"] == "photo.jpg" and j["error"] == ""
    assert j["prob_fake"] == pytest.approx(det.predict(data)["prob_fake"], abs=1e-5)
    import base64

    assert base64.b64decode(j["png_base64"]) == r.content


def test_explain_unreadable_is_422(client):
    for name, data in list(invalid_files().items()) + [("bomb.png", bomb_png())]:
        msg = _is_error(client.post(EXPLAIN, files=_files({name: data})), 422)
        assert msg.startswith(name)


# ---- concurrency -----------------------------------------------------------------------------


def test_concurrent_requests_get_their_own_rows_in_order(det):
    """24 clients at once: each gets its own image's score; the worker scored them together."""
    images = {f"img{i:02d}.png": _png(100 + i) for i in range(24)}
    want = {
        name: row["prob_fake"] for name, row in zip(images, _expected(det, images), strict=True)
    }
    assert len({round(v, 4) for v in want.values()}) > 12  # distinct answers, so mix-ups show
    settings = ServeSettings(batch_wait_ms=200)  # wide window: the requests must coalesce
    with TestClient(create_app(det, settings)) as c, ThreadPoolExecutor(24) as pool:

        def one(item):
            name, data = item
            return name, c.post(PREDICT, files=_files({name: data}))

        def multi(k):
            names = list(images)[k::4]
            return names, c.post(PREDICT, files=_files({n: images[n] for n in names}))

        singles = list(pool.map(one, images.items()))
        multis = list(pool.map(multi, range(4)))
        stats = c.get("/healthz").json()["batching"]
    for name, r in singles:
        [row] = r.json()
        assert row["filename"] == name
        assert row["prob_fake"] == pytest.approx(want[name], abs=1e-5)
    for names, r in multis:
        rows = r.json()
        assert [row["filename"] for row in rows] == names
        assert [row["prob_fake"] for row in rows] == pytest.approx(
            [want[n] for n in names], abs=1e-5
        )
    assert stats["images"] == 48 and stats["largest_batch"] > 1, stats
    assert stats["batches"] < 48


def test_rows_carry_the_threshold_of_the_model_that_scored_them(client, det):
    """Issue 18.2: under `auto` a thumbnail is judged at cifake-resnet10s's threshold, a photo
    at the photo model's (photo-fusion: 0.7251, with its uncertain band), and the row says so."""
    members = {d.name: d for _, d in det.routes}
    named = {"thumb.png": _png(1, 32), "photo.png": _png(2, 300), "junk.png": b"not an image"}
    rows = client.post(PREDICT, files=_files(named)).json()
    by = {r["filename"]: r for r in rows}
    thumb, photo = by["thumb.png"], by["photo.png"]
    photo_member = det.routes[-1][1]
    assert thumb["model"] == "cifake-resnet10s" and photo["model"] == photo_member.name
    for r in (thumb, photo):
        m = members[r["model"]]
        assert r["threshold"] == m.threshold
        assert r["uncertain"] == (list(m.uncertain) if m.uncertain else None)
    assert photo["threshold"] == pytest.approx(photo_member.threshold) and photo["threshold"] > 0.5
    assert photo["uncertain"]
    assert thumb["threshold"] == 0.5 and thumb["uncertain"] is None
    assert by["junk.png"]["threshold"] is None and by["junk.png"]["error"]
    ex = client.post(EXPLAIN + "?format=json", files=_files({"p.png": named["photo.png"]}))
    if ex.status_code == 200:
        assert ex.json()["threshold"] == photo["threshold"]


def test_a_routing_model_describes_its_members_thresholds(client, det):
    card = client.get("/api/v1/model").json()
    assert card["name"] == "auto" and card["threshold"] is None
    route = {r["model"]: r for r in card["route"]}
    for _, member in det.routes:
        assert route[member.name]["threshold"] == member.threshold
        assert route[member.name]["uncertain"] == member.uncertain
    assert route["cifake-resnet10s"]["max_side"] == 64
    listed = next(c for c in client.get("/api/v1/models").json() if c["name"] == "auto")
    assert listed["threshold"] is None and listed["route"] == card["route"]


# ---- models, health, page --------------------------------------------------------------------


def test_models_and_model(client, det):
    cards = client.get("/api/v1/models").json()
    names = [c["name"] for c in cards]
    assert DEFAULT_MODEL in names
    card = next(c for c in cards if c["name"] == DEFAULT_MODEL)
    assert card["default"] and card["loaded"]
    assert card["input_rule"].startswith("routes by image size")  # auto: the rule, not a net
    cifake = Detector.load("cifake-resnet10s", device="cpu")
    card = next(c for c in cards if c["name"] == "cifake-resnet10s")
    assert card["input_size"] == cifake.config["input_size"] and card["input_rule"]
    assert card["threshold"] == cifake.threshold and not card["default"]
    assert card["metrics"]["test"]["accuracy"] == cifake.config["metrics"]["test"]["accuracy"]
    photo = next(c for c in cards if c["name"] == "photo-effnet-lite2")
    assert "tiles" in photo["input_rule"] and photo["threshold"] > 0.5
    loaded = client.get("/api/v1/model").json()
    assert loaded["name"] == det.name and loaded["device"] == "cpu"
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["limits"]["max_files"] == 32


def test_page_is_self_contained(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    for src in re.findall(r'(?:src|href)="([^"]+)"', r.text):
        if src != "data:,":  # the empty favicon: no request at all
            assert src.startswith("/"), src  # nothing from another host
            assert client.get(src).status_code == 200, src
    for f in STATIC.iterdir():
        text = f.read_text()
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text), f  # no CDN, fonts
    assert 'id="chooser"' in r.text and "multiple" in r.text
    openapi = client.get("/openapi.json").json()
    body = openapi["paths"][PREDICT]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert "files" in body["schema"]["properties"]


# ---- the CLI and the server process ----------------------------------------------------------


def test_cli_bad_model_and_busy_port(capsys):
    assert main(["serve", "--model", "no-such-model", "--port", "0"]) == 2
    assert "error: no model at no-such-model" in capsys.readouterr().err
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
        assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # argparse: one error: line, exit 2
        main(["serve", "--max-files", "0"])
    assert e.value.code == 2 and "--max-files" in capsys.readouterr().err


@pytest.mark.slow
def test_server_process_serves_and_stops_on_sigterm():
    httpx = pytest.importorskip("httpx")
    with running_server("--no-access-log", "--max-files", "3") as server:
        health = httpx.get(server.url + "/healthz", timeout=30).json()
        assert health["model"] == DEFAULT_MODEL and health["limits"]["max_files"] == 3
        r = httpx.post(server.url + PREDICT, files=_files({"a.png": _png(1)}), timeout=30)
        assert r.status_code == 200 and r.json()[0]["error"] == ""
        code = server.stop()
    log = "".join(server.log)
    assert code in (0, -15), log  # uvicorn re-raises SIGTERM after its graceful shutdown
    assert "batch worker stopped after 1 images" in log and "Traceback" not in log, log
    assert json.dumps(health)  # the health answer was plain JSON


# ---- the batch worker on its own -------------------------------------------------------------


def test_batch_worker_isolates_a_failing_image_and_stops_cleanly():
    from fakescope.serve.batching import BatchWorker, NamedBytes

    calls = []

    def predict_batch(images):
        calls.append(len(images))
        if any(bytes(i) == b"poison" for i in images):
            raise RuntimeError("boom")
        return [{"path": i.filename, "prob_fake": 0.5, "error": ""} for i in images]

    worker = BatchWorker(predict_batch, max_batch=8, max_wait_s=0.2)
    worker.start()
    items = [NamedBytes(b"ok", f"{i}.png") for i in range(5)] + [NamedBytes(b"poison", "p.png")]
    futures = worker.submit(items)
    rows = [f.result(timeout=30) for f in futures]
    assert [r["path"] for r in rows[:5]] == [f"{i}.png" for i in range(5)]
    assert all(r["error"] == "" for r in rows[:5])
    assert rows[5]["error"] == "internal error: boom" and rows[5]["prob_fake"] is None
    assert calls[0] == 6 and worker.largest_batch == 6  # one micro-batch, then one by one
    worker.stop()
    assert not worker._thread.is_alive()
    with pytest.raises(RuntimeError):
        worker.submit(items[:1])
