"""CPU inference paths side by side: images/s and accuracy of PyTorch eager, ONNX Runtime (fp32)
and ONNX Runtime int8, for any model folder, measured in one run.

For each path (a `Detector` backend: `torch`, `onnx`, `onnx-int8`, whichever the model has):

- accuracy (and ROC-AUC) on a labelled evaluation set, through the Detector's own
  pre-processing, with the model's flip TTA and without;
- images/s of the model alone (pre-decoded model inputs through `Detector.logits_arrays`) and
  end to end (`Detector.iter_predict` over the data set's own files on disk: read, decode,
  input rule, network, calibration), at batch 1 and batch 64, with and without the flip TTA;
- where the end-to-end time goes: the same pipeline with a network that costs nothing (decoding
  and threading alone), and the model-alone cost per image.

Rounds are interleaved (every path measured in every round, medians reported), so a shared
machine's drift hits every path alike; compare ratios within one run. The load average is
printed before and after.

    python benchmarks/cpu_infer.py --data ../shared/data/cifake/cifake-test.tar.xz
    python benchmarks/cpu_infer.py --model runs/photo --data ../shared/data/aivsreal256/\
aivsreal256-validation.tar --speed-n 200 --batches 1 8
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from fakescope.backends.onnx_runner import VARIANTS
from fakescope.calibration import apply_calibration
from fakescope.data import list_labelled
from fakescope.detector import Detector, resolve_model_dir
from fakescope.metrics import compute_metrics


def cpu_name() -> str:
    info = Path("/proc/cpuinfo")
    for line in info.read_text().splitlines() if info.exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


class NullRunner:
    """A network that costs nothing: end to end with it = decoding and threading alone."""

    name, batch_size, device = "none", 64, "cpu"

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.zeros(len(x))


def paths_for(model: str | None, wanted: list[str]) -> dict[str, Detector]:
    folder, _ = resolve_model_dir(model)
    have = ["torch"] + [v for v in VARIANTS if (folder / VARIANTS[v][0]).is_file()]
    return {b: Detector.load(model, device="cpu", backend=b) for b in wanted if b in have}


def accuracy(dets: dict[str, Detector], files, chunk: int = 256) -> dict[str, dict]:
    """Per path: metrics with and without flip TTA, from one pre-processing of each file."""
    ref = next(iter(dets.values()))
    logits: dict[tuple[str, str], list[float]] = {}
    labels: list[int] = []
    batch: list[tuple[int, bytes]] = []

    def flush():
        arrays = [ref.preprocess(raw) for _, raw in batch]
        labels.extend(int(files.labels[i]) for i, _ in batch)
        x = np.concatenate(arrays)
        ends = np.cumsum([len(a) for a in arrays])
        xf = np.ascontiguousarray(x[:, :, ::-1])
        for name, det in dets.items():
            z0 = np.concatenate([det.runner(x[i : i + 64]) for i in range(0, len(x), 64)])
            z1 = np.concatenate([det.runner(xf[i : i + 64]) for i in range(0, len(xf), 64)])
            for tta, z in (("none", z0), ("flip", (z0 + z1) / 2)):
                out = logits.setdefault((name, tta), [])
                out += [
                    det.image_logit(z[e - len(a) : e]) for e, a in zip(ends, arrays, strict=True)
                ]
        batch.clear()

    for item in files.iter_bytes():
        batch.append(item)
        if len(batch) == chunk:
            flush()
    if batch:
        flush()
    y = np.array(labels)
    res = {}
    for (name, tta), z in logits.items():
        det = dets[name]
        m = compute_metrics(y, apply_calibration(np.array(z), det.calibration), det.threshold)
        res.setdefault(name, {})[tta] = m
    return res


def rate(fn, n_items: int, seconds: float) -> tuple[float, float]:
    """(items per wall second, items per CPU second of this process) of `fn()`, which
    handles `n_items`, repeated for at least `seconds` (once if `seconds` is 0)."""
    if seconds > 0:
        fn()  # warm-up (allocations, ORT's first-run kernel choices)
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    while (elapsed := time.perf_counter() - t0) < seconds or n == 0:
        fn()
        n += n_items
    return n / elapsed, n / max(time.process_time() - c0, 1e-9)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=None, help="shipped model name or folder")
    p.add_argument("--data", nargs="+", required=True, help="labelled evaluation data")
    p.add_argument("--split", default=None)
    p.add_argument("--paths", nargs="+", default=["torch", "onnx", "onnx-int8"])
    p.add_argument("--accuracy-n", type=float, default=None, help="subset (default: all)")
    p.add_argument("--speed-n", type=int, default=2000, help="files for end-to-end timing")
    p.add_argument("--batches", nargs="+", type=int, default=[1, 64])
    p.add_argument("--threads", type=int, default=2, help="torch / ORT intra-op threads")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument(
        "--workers",
        nargs="*",
        type=int,
        default=[1, 2, 4],
        help="decode-thread counts to try end to end with the fastest path",
    )
    p.add_argument("--seconds", type=float, default=2.0, help="per model-alone measurement")
    p.add_argument("--skip-accuracy", action="store_true")
    p.add_argument("--skip-speed", action="store_true")
    args = p.parse_args()

    os.environ["FAKESCOPE_ORT_THREADS"] = str(args.threads)
    dets = paths_for(args.model, args.paths)
    if "torch" in dets:
        import torch

        torch.set_num_threads(args.threads)
    ref = next(iter(dets.values()))
    print(
        f"model {ref.name}; {cpu_name()}, {os.cpu_count()} cores; {args.threads} threads; "
        f"{time.strftime('%Y-%m-%d %H:%M')}; load average before: {load()}"
    )
    if not args.skip_accuracy:
        files = list_labelled(args.data, split=args.split, subset=args.accuracy_n, seed=0)
        t0 = time.perf_counter()
        acc = accuracy(dets, files)
        print(f"\naccuracy on {len(files)} images ({time.perf_counter() - t0:.0f} s)")
        print("| path | accuracy (flip TTA) | ROC-AUC (flip) | accuracy (no TTA) | ROC-AUC |")
        print("|---|---|---|---|---|")
        for name, m in acc.items():
            f, n = m["flip"], m["none"]
            print(
                f"| {name} | {f['accuracy']:.4f} | {f['roc_auc']:.4f} | {n['accuracy']:.4f} | "
                f"{n['roc_auc']:.4f} |"
            )

    if args.skip_speed:
        return
    speed_files = list_labelled(args.data, split=args.split, subset=args.speed_n, seed=1)
    rows: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, raw in speed_files.iter_bytes():  # the data set's own encoded files
            f = Path(tmp) / f"{i:06d}{Path(speed_files.entries[i].name).suffix}"
            f.write_bytes(raw)
            paths.append(str(f))
        x = np.concatenate([ref.preprocess(f) for f in paths[:256]])
        null = Detector(config=ref.config, name="null", runner=NullRunner())

        def e2e(d: Detector, bs: int, workers: int | None = None):
            rows = d.iter_predict(paths, batch_size=bs, workers=workers)
            assert sum(1 for r in rows if not r["error"]) == len(paths)

        def bare_decode():  # Pillow alone: what the input rule adds on top of decoding
            for f in paths:
                np.asarray(Image.open(f).convert("RGB"))

        def rule_decode():  # the Detector's pre-processing, one thread
            for f in paths:
                ref.preprocess(f)

        last = list(dets)[-1]  # the fastest path, for the decode-thread count
        for _ in range(args.rounds):
            key = "decode + threads alone (no network) | - | end to end | 256"
            rows.setdefault(key, []).append(rate(lambda: e2e(null, 256), len(paths), 0))
            rows.setdefault("Pillow decode alone, 1 thread | - | - | 1", []).append(
                rate(bare_decode, len(paths), 0)
            )
            rows.setdefault("Detector.preprocess alone, 1 thread | - | - | 1", []).append(
                rate(rule_decode, len(paths), 0)
            )
            for w in args.workers:
                dets[last].tta = ref.config.get("tta", "none")
                key = f"{last}, {w} decode threads | {dets[last].tta} | end to end | 64"
                rows.setdefault(key, []).append(
                    rate(lambda w=w: e2e(dets[last], 64, w), len(paths), 0)
                )
            for name, det in dets.items():
                for tta in ("flip", "none"):
                    det.tta = tta
                    for bs in args.batches:
                        key = f"{name} | {tta}"
                        rows.setdefault(f"{key} | model alone | {bs}", []).append(
                            rate(lambda d=det, b=bs: d.logits_arrays(x[:b], b), bs, args.seconds)
                        )
                        rows.setdefault(f"{key} | end to end | {bs}", []).append(
                            rate(lambda d=det, b=bs: e2e(d, b), len(paths), 0)
                        )
    print(
        f"\nmedian of {args.rounds} interleaved rounds; end to end over {len(paths)} files; "
        f"load average after: {load()}. images/CPU-s = images per CPU second of this process "
        "(all its threads): what the work costs, much less sensitive to other jobs' load"
    )
    print(
        "| path | TTA | measured | batch | images/s | images/CPU-s | images/s per round |\n"
        "|---|---|---|---|---|---|---|"
    )
    for key, v in rows.items():
        wall, cpu = np.median([r[0] for r in v]), np.median([r[1] for r in v])
        per = ", ".join(f"{r[0]:.0f}" for r in v)
        print(f"| {key} | {wall:.0f} | {cpu:.0f} | {per} |")


if __name__ == "__main__":
    main()
