"""`fakescope serve`'s limits (docs/serve-limits.md), each tested: body size, files per request,
slow headers, slow bodies, the bounded scoring and explain queues (503 + Retry-After), the
request time limit; and 50 clients at once against a real server: only 200s and 503s, no
crash, /healthz answering throughout, memory bounded.

No assertion here is about speed: the time limits are set small so that they are crossed for
sure, and the waits around them are generous.
"""

from __future__ import annotations

import http.client
import io
import json
import select
import socket
import threading
import time
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402

from fakescope.cli import main  # noqa: E402
from fakescope.detector import Detector  # noqa: E402
from fakescope.serve.app import ServeSettings, create_app  # noqa: E402
from fakescope.serve.batching import BatchWorker, ExplainQueue, NamedBytes, Overloaded  # noqa: E402
from tests.hostile import rgb  # noqa: E402
from tests.serve_util import running_server  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
PREDICT, EXPLAIN = "/api/v1/predict", "/api/v1/explain"
SMALL = "cifake-resnet10s"
BOUNDARY = "limitstest"


def _jpeg(w: int = 64, h: int = 48, seed: int = 0) -> bytes:
    buf = io.BytesIO()
    rgb(w, h, seed).save(buf, "JPEG")
    return buf.getvalue()


def _multipart(named: dict[str, bytes]) -> bytes:
    out = b""
    for name, data in named.items():
        disposition = f'form-data; name="files"; filename="{name}"'
        head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n"
        out += head.encode() + data + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


@pytest.fixture(scope="module")
def det() -> Detector:
    return Detector.load(SMALL, device="cpu")


def _error(r, status: int) -> str:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert body["error"] and "Traceback" not in r.text
    return body["error"]


# ---- the app's limits (in-process) -----------------------------------------------------------


def test_body_over_the_limit_and_too_many_files_are_413(det):
    with TestClient(create_app(det, ServeSettings(max_body_mb=0.5, max_files=2))) as c:
        big = {"big.jpg": b"\xff" * 600_000}
        assert "limit of 0.5 MB" in _error(c.post(PREDICT, files=list(_f(big))), 413)
        three = {f"{i}.jpg": _jpeg(seed=i) for i in range(3)}
        assert "more than 2 files" in _error(c.post(PREDICT, files=list(_f(three))), 413)
        assert c.get("/healthz").json()["limits"]["max_files"] == 2


def _f(named: dict[str, bytes]):
    for name, data in named.items():
        yield ("files", (name, data, "application/octet-stream"))


def test_request_time_limit_is_503_with_retry_after(det):
    """The worker waits 2 s to fill a micro-batch; a request may wait 0.2 s: 503, and the
    image is dropped from the queue rather than scored for nobody."""
    settings = ServeSettings(batch_wait_ms=2000, request_timeout_s=0.2)
    with TestClient(create_app(det, settings)) as c:
        r = c.post(PREDICT, files=list(_f({"a.jpg": _jpeg()})))
        assert "request time limit" in _error(r, 503)
        assert int(r.headers["retry-after"]) >= 1
        assert c.get("/healthz").json()["batching"]["timed_out"] == 1


def test_batch_queue_is_bounded():
    """At most max_pending images queued or being scored; the next request is refused with
    a Retry-After, and taken again once the queue has room."""
    release = threading.Event()

    def slow_batch(images):
        release.wait(30)
        return [{"path": i.filename, "prob_fake": 0.5, "error": ""} for i in images]

    w = BatchWorker(slow_batch, max_batch=4, max_wait_s=0.0, max_pending=3)
    w.start()
    first = w.submit([NamedBytes(b"x", f"{i}") for i in range(3)])
    with pytest.raises(Overloaded) as e:
        w.submit([NamedBytes(b"x", "over")])
    assert "limit 3" in e.value.message and e.value.retry_after_s >= 1
    assert w.refused == 1 and w.pending == 3
    release.set()
    assert [f.result(30)["path"] for f in first] == ["0", "1", "2"]
    deadline = time.monotonic() + 30
    while w.pending and time.monotonic() < deadline:
        time.sleep(0.01)
    assert w.pending == 0
    assert w.submit([NamedBytes(b"x", "again")])[0].result(30)["path"] == "again"
    w.stop()


def test_a_request_that_would_wait_past_its_time_limit_is_refused_at_once():
    """At the queue's recent pace (here 10 s an image), a request behind one image cannot be
    scored within 1 s: refused now, not after waiting in vain."""
    release = threading.Event()
    w = BatchWorker(lambda ims: release.wait(30) and [{"path": i.filename} for i in ims])
    w.start()
    w.pace.seconds = 10.0
    first = w.submit([NamedBytes(b"x", "first")])
    with pytest.raises(Overloaded, match="about 20 s to wait") as e:
        w.submit([NamedBytes(b"x", "late")], until=time.monotonic() + 1)
    assert e.value.retry_after_s >= 10
    release.set()
    assert first[0].result(30)["path"] == "first"
    w.stop()


def test_a_request_larger_than_the_bound_is_taken_when_the_queue_is_empty():
    w = BatchWorker(lambda ims: [{"path": i.filename} for i in ims], max_pending=2)
    w.start()
    assert len([f.result(30) for f in w.submit([NamedBytes(b"x", str(i)) for i in range(5)])]) == 5
    w.stop()


def test_explain_queue_is_bounded():
    import asyncio

    pool = ThreadPoolExecutor(1)
    q = ExplainQueue(pool, limit=2)
    release = threading.Event()

    async def go():
        a = asyncio.ensure_future(q.run(lambda x: release.wait(30) and x, "a"))
        b = asyncio.ensure_future(q.run(lambda x: x, "b"))
        await asyncio.sleep(0.05)
        with pytest.raises(Overloaded):
            await q.run(lambda x: x, "c")
        release.set()
        return await a, await b

    assert asyncio.run(go()) == ("a", "b")
    assert q.refused == 1 and q.in_flight == 0
    pool.shutdown()


def test_cli_limits_in_help_and_checked(capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    for flag in (
        "--max-body-mb",
        "--max-files",
        "--max-queue",
        "--max-explain-queue",
        "--request-timeout-s",
        "--body-timeout-s",
        "--header-timeout-s",
        "--max-connections",
    ):
        assert flag in out
    code = main(["serve", "--model", SMALL, "--max-files", "8", "--max-queue", "4"])
    assert code == 2 and "--max-queue must be at least --max-files" in capsys.readouterr().err


# ---- a real server ---------------------------------------------------------------------------


def _conn(url: str, timeout: float = 30) -> http.client.HTTPConnection:
    u = urlsplit(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)


def _healthz(url: str) -> dict:
    c = _conn(url, 15)
    c.request("GET", "/healthz")
    r = c.getresponse()
    assert r.status == 200
    return json.loads(r.read())


def _trickle(url: str, data: bytes, every_s: float, stop_after_s: float, prefix: bytes = b""):
    """Send `prefix` at once, then `data` one byte per `every_s`, reading whatever the server
    sends meanwhile; returns it once the server has closed the connection (b"": closed without
    answering), or with b"<still open>" after `stop_after_s`."""
    u = urlsplit(url)
    s = socket.create_connection((u.hostname, u.port), timeout=stop_after_s)
    t0 = time.monotonic()
    got, rest = b"", memoryview(data)
    try:
        s.sendall(prefix)
        while time.monotonic() - t0 < stop_after_s:
            readable, _, _ = select.select([s], [], [], every_s)
            if readable:
                chunk = s.recv(65536)
                if not chunk:
                    return got  # closed by the server
                got += chunk
            elif len(rest):
                s.sendall(rest[:1])
                rest = rest[1:]
    except (ConnectionResetError, BrokenPipeError):
        return got
    finally:
        s.close()
    return got + b"<still open>"


@pytest.mark.slow
def test_slow_clients_are_cut_off_and_hold_nothing():
    """Headers and a body sent a byte every 0.2 s: past --header-timeout-s the connection is
    closed, past --body-timeout-s the request is a 408; meanwhile other clients are served."""
    args = ["--model", SMALL, "--device", "cpu", "--no-access-log"]
    with running_server(*args, "--header-timeout-s", "1", "--body-timeout-s", "1") as server:
        headers = b"POST /api/v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * 200
        body = _multipart({"a.jpg": _jpeg()})
        head = (
            f"POST {PREDICT} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n\r\n"
        ).encode()
        with ThreadPoolExecutor(6) as pool:
            slow_heads = [pool.submit(_trickle, server.url, headers, 0.2, 20) for _ in range(3)]
            slow_body = pool.submit(_trickle, server.url, body, 0.2, 20, head)
            # the slow clients hold no worker: a normal request is scored meanwhile
            c = _conn(server.url)
            c.request(
                "POST", PREDICT, body, {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
            )
            r = c.getresponse()
            assert r.status == 200 and json.loads(r.read())[0]["error"] == ""
            assert _healthz(server.url)["limits"]["header_timeout_s"] == 1.0
            for f in slow_heads:
                got = f.result()
                assert got == b"", got  # closed without an answer: no request was made
            got = slow_body.result()
        assert got.startswith(b"HTTP/1.1 408"), got[:200]
        assert b"request body not received within 1 s" in got
        assert server.proc.poll() is None
    assert "Traceback" not in "".join(server.log)


def _vm_hwm_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


@pytest.mark.slow
def test_fifty_clients_half_explaining_get_200_or_503_and_healthz_answers():
    """50 clients at once, 25 calling explain, with small queues so that they fill: every
    answer is a 200 or a 503 with Retry-After, both queues refuse some, the server never
    fails, /healthz answers all along, and its memory stays bounded."""
    args = ["--model", SMALL, "--device", "cpu", "--no-access-log", "--batch-wait-ms", "100"]
    limits = ["--max-files", "2", "--max-queue", "4", "--max-explain-queue", "2"]
    body = _multipart({"a.jpg": _jpeg(320, 240)})
    ctype = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    with running_server(*args, *limits) as server:
        statuses: Counter = Counter()
        bad: list[str] = []
        lock = threading.Lock()
        health: list[dict] = []
        stop = threading.Event()

        def client(i: int) -> None:
            try:
                send(i)
            except Exception as e:  # noqa: BLE001 - reported by the assertion below
                with lock:
                    bad.append(f"client {i}: {e!r}")

        def send(i: int) -> None:
            path = EXPLAIN if i % 2 else PREDICT
            c = _conn(server.url, 120)
            for _ in range(4):
                c.request("POST", path, body, ctype)
                r = c.getresponse()
                data = r.read()
                with lock:
                    statuses[(path, r.status)] += 1
                    if r.status == 503 and int(r.headers.get("Retry-After", "0")) < 1:
                        bad.append(f"503 without Retry-After: {data[:100]!r}")
                    elif r.status not in (200, 503):
                        bad.append(f"{r.status}: {data[:200]!r}")
                    elif r.status == 200 and path == PREDICT and json.loads(data)[0]["error"]:
                        bad.append(data[:200].decode())
            c.close()

        def poll() -> None:
            while not stop.is_set():
                try:
                    health.append(_healthz(server.url))
                except Exception as e:  # noqa: BLE001 - reported by the assertion below
                    bad.append(f"/healthz: {e!r}")
                time.sleep(0.2)

        poller = threading.Thread(target=poll)
        poller.start()
        with ThreadPoolExecutor(50) as pool:
            list(pool.map(client, range(50)))
        stop.set()
        poller.join()
        final = _healthz(server.url)
        peak_mb = _vm_hwm_mb(server.proc.pid)
        assert server.proc.poll() is None
    assert not bad, bad[:3]
    assert sum(statuses.values()) == 200, statuses
    for path in (PREDICT, EXPLAIN):
        assert statuses[(path, 200)] > 0 and statuses[(path, 503)] > 0, statuses
    assert final["batching"]["refused"] > 0 and final["explain"]["refused"] > 0
    assert len(health) >= 2 and all(h["status"] == "ok" for h in health)
    assert max(h["batching"]["pending"] for h in health) <= 4
    assert max(h["explain"]["in_flight"] for h in health) <= 2
    assert peak_mb < 2048, peak_mb
    assert "Traceback" not in "".join(server.log)
