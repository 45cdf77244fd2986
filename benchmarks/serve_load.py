"""Load test of `fakescope serve`: single-image requests from N concurrent clients on loopback,
against `predict`'s batch throughput of the same model on the same images in the same run.

Rounds alternate a batch measurement and a load phase (batch, load, batch, ..., batch) so that
the shared machine's drift hits both alike; the ratio is taken per round as well.

The server runs in its own process (`fakescope serve --port 0`, 127.0.0.1 only); the clients
are threads in this process, each with one keep-alive connection (http.client: the cheapest
Python client, since client and server share the machine's cores). Every request sends one
image to POST /api/v1/predict; an error is a non-200 answer or a row with `error` set. The
batch baseline is `Detector.predict_batch` over the same encoded images (decode, pre-process
and score, no HTTP), measured between the load phases while the server idles, both in the main
thread (as `fakescope predict` runs it) and in a fresh thread (as the server's worker runs it);
the ratio is to the faster of the two.

    python benchmarks/serve_load.py --data ../shared/data/cifake/cifake-test.tar.xz \
        --clients 16 --requests 5000
    # 1024-px photos: 256-px aivsreal256 photos upscaled 4x (Lanczos) and saved as JPEG q=90
    python benchmarks/serve_load.py --data ../shared/data/aivsreal256/aivsreal256-validation.tar \
        --size 1024 --images 200 --batch-images 200 --requests 1000

`--explain-share` (issue 31) measures the server's limits instead: that share of the clients
calls /api/v1/explain, the others /predict, each sending `--requests / --clients` requests
(a bounded loop); it reports per endpoint the answers (200, 503 with Retry-After, anything
else is an error), p50/p99 latency, /healthz's answers polled throughout, and the server's
peak memory (VmHWM of its process):

    python benchmarks/serve_load.py --data ../shared/data/aivsreal256/aivsreal256-validation.tar \
        --size 800x600 --images 50 --clients 50 --explain-share 0.5 --requests 500
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import torch
from common import hardware
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' server launcher
from fakescope.data import list_labelled  # noqa: E402
from fakescope.detector import Detector  # noqa: E402
from tests.serve_util import running_server  # noqa: E402

BOUNDARY = "fakescopeloadtest"


def load_images(data: list[str], n: int, size: tuple[int, int] | None) -> list[bytes]:
    """n encoded images, both classes; re-encoded at size (w, h) when `size` is given."""
    files = list_labelled(data, subset=n, seed=0)
    out = [b""] * len(files)
    for i, raw in files.iter_bytes():
        if size:
            img = Image.open(io.BytesIO(raw)).convert("RGB").resize(size, Image.LANCZOS)
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=90)
            raw = buf.getvalue()
        out[i] = raw
    return out


def multipart(name: str, data: bytes) -> bytes:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{BOUNDARY}--\r\n".encode()


def batch_throughput(det: Detector, images: list[bytes], in_thread: bool = False) -> float:
    """images/s of one `predict_batch` call, in this (main) thread as `fakescope predict` runs
    it, or in a fresh thread as the server's worker runs it: on this machine, under load, torch
    in a non-main thread was up to 3x faster than in the main thread, so both are measured."""
    out: list[float] = []

    def run() -> None:
        t0 = time.perf_counter()
        rows = det.predict_batch(images)
        out.append(len(images) / (time.perf_counter() - t0))
        assert not any(r["error"] for r in rows)

    if in_thread:
        t = threading.Thread(target=run)
        t.start()
        t.join()
    else:
        run()
    return out[0]


def load(url: str, bodies: list[bytes], clients: int, requests: int, max_s: float) -> dict:
    """`clients` threads send requests until `requests` are done or `max_s` has passed."""
    host = urlsplit(url)
    lock = threading.Lock()
    counter = {"next": 0}
    latencies: list[float] = []
    errors: list[str] = []
    deadline = time.monotonic() + max_s

    def client() -> None:
        conn = http.client.HTTPConnection(host.hostname, host.port, timeout=60)
        headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
        while time.monotonic() < deadline:
            with lock:
                i = counter["next"]
                if i >= requests:
                    return
                counter["next"] = i + 1
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/api/v1/predict", bodies[i % len(bodies)], headers)
                resp = conn.getresponse()
                body = resp.read()
            except (OSError, http.client.HTTPException) as e:
                with lock:
                    errors.append(f"{type(e).__name__}: {e}")
                conn.close()
                conn = http.client.HTTPConnection(host.hostname, host.port, timeout=60)
                continue
            dt = time.perf_counter() - t0
            with lock:
                if resp.status != 200 or b'"error": ""' not in body:
                    errors.append(f"{resp.status}: {body[:200]!r}")
                else:
                    latencies.append(dt)
        conn.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {
        "ok": len(latencies),
        "seconds": wall,
        "rps": len(latencies) / wall,
        "latencies_ms": np.array(latencies) * 1000,
        "errors": len(errors),
        "first_errors": errors[:3],
    }


def _size(text: str) -> tuple[int, int] | None:
    """ "0" (as they are), "1024" (square) or "800x600"."""
    w, _, h = text.partition("x")
    return None if text == "0" else (int(w), int(h or w))


def vm_hwm_mb(pid: int) -> float:
    """Peak resident memory of a process so far (Linux)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def mixed(url: str, image: list[bytes], clients: int, per_client: int, share: float, max_s: float):
    """`clients` threads, the first `share` of them calling explain, each sending
    `per_client` requests (or stopping at `max_s`); a thread polls /healthz meanwhile."""
    host = urlsplit(url)
    lock = threading.Lock()
    results: dict[str, list[tuple[int, float, str]]] = {"predict": [], "explain": []}
    health: list[tuple[float, int]] = []
    deadline = time.monotonic() + max_s
    done = threading.Event()
    n_explain = round(clients * share)

    def client(k: int) -> None:
        kind = "explain" if k < n_explain else "predict"
        conn = http.client.HTTPConnection(host.hostname, host.port, timeout=120)
        headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
        for j in range(per_client):
            if time.monotonic() > deadline:
                break
            body = image[(k + j) % len(image)]
            t0 = time.perf_counter()
            try:
                conn.request("POST", f"/api/v1/{kind}", body, headers)
                resp = conn.getresponse()
                data = resp.read()
                status, note = resp.status, ""
                if status == 503 and int(resp.headers.get("Retry-After", "0")) < 1:
                    status, note = -503, "503 without Retry-After"
                elif status not in (200, 503):
                    note = data[:200].decode("utf-8", "replace")
            except (OSError, http.client.HTTPException) as e:
                status, note = -1, f"{type(e).__name__}: {e}"
                conn.close()
                conn = http.client.HTTPConnection(host.hostname, host.port, timeout=120)
            with lock:
                results[kind].append((status, time.perf_counter() - t0, note))
        conn.close()

    def poll() -> None:
        while not done.is_set():
            t0 = time.perf_counter()
            try:
                conn = http.client.HTTPConnection(host.hostname, host.port, timeout=30)
                conn.request("GET", "/healthz")
                status = conn.getresponse().status
                conn.close()
            except (OSError, http.client.HTTPException):
                status = -1
            health.append((time.perf_counter() - t0, status))
            done.wait(0.5)

    poller = threading.Thread(target=poll)
    poller.start()
    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    done.set()
    poller.join()
    return results, health, wall


def run_mixed(args, bodies: list[bytes]) -> None:
    serve_args = ["--no-access-log", "--device", "cpu", *args.serve_args]
    if args.model:
        serve_args += ["--model", args.model]
    per_client = -(-args.requests // args.clients)
    with running_server(*serve_args) as server:
        # warm-up: one of each, so that the first requests do not pay the model's first call
        mixed(server.url, bodies[:1], 2, 1, 0.5, 120)
        results, health, wall = mixed(
            server.url, bodies, args.clients, per_client, args.explain_share, args.max_seconds
        )
        stats = json.loads(_get(server.url + "/healthz"))
        peak = vm_hwm_mb(server.proc.pid)
        alive = server.proc.poll() is None
        server.stop()
    log = "".join(server.log)
    print(
        f"model {stats['model']}; server device cpu ({hardware(torch.device('cpu'))}); torch "
        f"{torch.__version__}; {time.strftime('%Y-%m-%d %H:%M')}; {args.clients} clients "
        f"({round(args.clients * args.explain_share)} calling explain), {per_client} requests "
        f"each, {len(bodies)} distinct images {args.size} JPEG q=90; server flags: "
        f"{' '.join(args.serve_args) or 'defaults'}; limits {stats['limits']}; {wall:.0f} s"
    )
    print(
        "| endpoint | requests | 200 | 503 (Retry-After) | errors | p50 ms 200 | p99 ms 200 | "
        "p50 ms 503 | p99 ms 503 |\n|---|---|---|---|---|---|---|---|---|"
    )
    first_errors = []
    for kind, rows in results.items():
        ok = np.array([dt for st, dt, _ in rows if st == 200]) * 1000
        busy = np.array([dt for st, dt, _ in rows if st == 503]) * 1000
        errors = [note for st, _, note in rows if st not in (200, 503)]
        first_errors += errors[:3]

        def pct(a: np.ndarray, q: int) -> str:
            return f"{np.percentile(a, q):.0f}" if len(a) else "-"

        print(
            f"| {kind} | {len(rows)} | {len(ok)} | {len(busy)} | {len(errors)} | {pct(ok, 50)} | "
            f"{pct(ok, 99)} | {pct(busy, 50)} | {pct(busy, 99)} |"
        )
    h_ok = np.array([dt for dt, st in health if st == 200]) * 1000
    print(
        f"/healthz polled every 0.5 s: {len(h_ok)} of {len(health)} answered 200, p50 "
        f"{np.percentile(h_ok, 50):.0f} ms, max {h_ok.max():.0f} ms; server peak RSS (VmHWM) "
        f"{peak:.0f} MB; server alive after the run: {alive}; tracebacks in its log: "
        f"{log.count('Traceback')}; counters {stats['batching']} {stats['explain']}"
    )
    if first_errors:
        print("first errors:", *first_errors[:3], sep="\n  ")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "results": {k: [r[:2] for r in v] for k, v in results.items()},
                    "health": health,
                    "peak_mb": peak,
                    "stats": stats,
                }
            )
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", nargs="+", default=["../shared/data/cifake/cifake-test.tar.xz"])
    p.add_argument("--images", type=int, default=2000, help="distinct images, sent in turn")
    p.add_argument(
        "--size", type=_size, default=None, help="re-encode at N×N or WxH (default: as they are)"
    )
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--requests", type=int, default=5000, help="in all, over the rounds")
    p.add_argument("--rounds", type=int, default=5, help="batch, load, batch, load, ... batch")
    p.add_argument("--batch-images", type=int, default=256, help="images per batch measurement")
    p.add_argument("--max-seconds", type=float, default=300, help="bound on the load phases")
    p.add_argument("--model", default=None)
    p.add_argument("--batch-wait-ms", type=float, default=5.0)
    p.add_argument("--json", help="also write the results here")
    p.add_argument(
        "--explain-share",
        type=float,
        default=0.0,
        help="measure the limits: this share of the clients calls explain (see above)",
    )
    p.add_argument(
        "--serve-args", nargs="*", default=[], help="more `fakescope serve` flags (--explain-share)"
    )
    args = p.parse_args()

    images = load_images(args.data, args.images, args.size)
    bodies = [multipart(f"{i:05d}.jpg", data) for i, data in enumerate(images)]
    if args.explain_share:
        run_mixed(args, bodies)
        return
    det = Detector.load(args.model, device="cpu")
    sample = images[: args.batch_images]
    det.predict_batch(sample[:64])  # warm-up

    serve_args = ["--no-access-log", "--device", "cpu", "--batch-wait-ms", str(args.batch_wait_ms)]
    if args.model:
        serve_args += ["--model", args.model]
    per_round = -(-args.requests // args.rounds)

    def both() -> tuple[float, float]:
        return batch_throughput(det, sample), batch_throughput(det, sample, in_thread=True)

    rounds, batch = [], [both()]
    with running_server(*serve_args) as server:
        load(server.url, bodies[:64], args.clients, 200, 30)  # warm-up
        warm = json.loads(_get(server.url + "/healthz"))["batching"]
        deadline = time.monotonic() + args.max_seconds
        for _ in range(args.rounds):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            rounds.append(load(server.url, bodies, args.clients, per_round, left))
            batch.append(both())  # the server idles meanwhile
        stats = json.loads(_get(server.url + "/healthz"))["batching"]
        server.stop()

    n_ok = sum(r["ok"] for r in rounds)
    seconds = sum(r["seconds"] for r in rounds)
    lat = np.concatenate([r["latencies_ms"] for r in rounds])
    errors = sum(r["errors"] for r in rounds)
    rps = n_ok / seconds
    # the ratio is taken to the faster of the two batch baselines (the stricter comparison)
    best = [max(b) for b in batch]
    main_rps, thread_rps = (float(np.mean(v)) for v in zip(*batch, strict=True))
    batch_rps = max(main_rps, thread_rps)
    ratios = [r["rps"] / ((best[i] + best[i + 1]) / 2) for i, r in enumerate(rounds)]
    batches = stats["batches"] - warm["batches"]
    mean_batch = (stats["images"] - warm["images"]) / max(batches, 1)
    mean_kb = sum(map(len, images)) / len(images) / 1024
    print(
        f"model {det.name}; server device cpu ({hardware(torch.device('cpu'))}); "
        f"torch {torch.__version__}; {time.strftime('%Y-%m-%d %H:%M')}; client threads and "
        f"server share the machine; {len(images)} distinct images, mean {mean_kb:.1f} KB"
        + (f", {args.size[0]}x{args.size[1]} JPEG q=90" if args.size else "")
        + f"; {len(rounds)} rounds of {per_round} requests"
    )
    print(
        "| clients | requests | requests/s | p50 ms | p99 ms | errors | mean micro-batch | "
        "batch predict img/s, main thread / worker thread | ratio |\n"
        "|---|---|---|---|---|---|---|---|---|"
    )
    print(
        f"| {args.clients} | {n_ok + errors} | {rps:.0f} | {np.percentile(lat, 50):.0f} | "
        f"{np.percentile(lat, 99):.0f} | {errors} | {mean_batch:.1f} | "
        f"{main_rps:.0f} / {thread_rps:.0f} | {rps / batch_rps:.2f} |"
    )
    print("batch img/s (main, thread) between rounds:", [tuple(map(round, b)) for b in batch])
    print("requests/s per round:", [round(r["rps"]) for r in rounds])
    print("ratio per round (to the batch runs beside it):", np.round(ratios, 2).tolist())
    first = [e for r in rounds for e in r["first_errors"]][:3]
    if first:
        print("first errors:", *first, sep="\n  ")
    if args.json:
        out = {"rps": rps, "batch": batch, "rounds": [r["rps"] for r in rounds], "errors": errors}
        out.update(p50_ms=float(np.percentile(lat, 50)), p99_ms=float(np.percentile(lat, 99)))
        Path(args.json).write_text(json.dumps({**out, "stats": stats}))


def _get(url: str) -> str:
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    conn.request("GET", u.path)
    return conn.getresponse().read().decode()


if __name__ == "__main__":
    main()
