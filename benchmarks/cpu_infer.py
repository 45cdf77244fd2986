"""CPU inference paths side by side: images/s and accuracy of PyTorch eager, ONNX Runtime (fp32)
and ONNX Runtime int8, for any model folder, measured in one run.

For each path (a `Detector` backend: `torch`, `onnx`, `onnx-int8`, whichever the model has):

- accuracy (and ROC-AUC) on a labelled evaluation set, through the Detector's own
  pre-processing, with the model's flip TTA and without;
- images/s of the model alone (pre-decoded model inputs through `Detector.logits_arrays`) and
  end to end (`Detector.iter_predict` over the data set's own files on disk: read, decode,
  input rule, network, calibration), at batch 1 and batch 64, with and without the flip TTA;
- where the end-to-end time goes: the same pipeline with a network that costs nothing (decoding,
  threads and rows alone; with and without the provenance read), Pillow decoding and
  `Detector.preprocess` alone on one thread, and the model-alone cost per image;
- the default CPU path (`auto`, as `fakescope predict` loads it, batch 256): with 1, 2 and 4
  decode threads, without the provenance read, and with its TTA and without on 1 and 2 ONNX
  Runtime threads;
- with `--session-options`, the default graph's model-alone speed under other ONNX Runtime
  session options (optimisation level, threads, spinning).

End-to-end runs stop after `--e2e-seconds` (slow paths at batch 1). Rounds are interleaved
(every path measured in every round, medians reported), so a shared machine's drift hits every
path alike; compare ratios within one run. The load average is printed before and after.

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

from fakescope.backends.onnx_runner import (
    OnnxRunner,
    default_threads,
    ort_session,
    session_options,
)
from fakescope.calibration import apply_calibration
from fakescope.data import list_labelled
from fakescope.detector import Detector, pick_backend
from fakescope.metrics import compute_metrics
from fakescope.model_dir import VARIANTS, resolve_model_dir, variants_present


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
    """The wanted backends this model folder has, in the order asked for."""
    folder, _ = resolve_model_dir(model)
    have = ["torch"] + variants_present(folder)
    missing = [b for b in wanted if b not in have]
    if missing:
        print(f"{folder} has no {', '.join(missing)} graph: skipped")
    return {b: Detector.load(model, device="cpu", backend=b) for b in wanted if b in have}


def accuracy(
    dets: dict[str, Detector], files, ttas: list[str], chunk: int = 256
) -> dict[str, dict]:
    """Per path: metrics for each TTA in `ttas` (flip, none), from one pre-processing of each
    file."""
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
            per_tta = {"none": z0}
            if "flip" in ttas:
                z1 = np.concatenate([det.runner(xf[i : i + 64]) for i in range(0, len(xf), 64)])
                per_tta["flip"] = (z0 + z1) / 2
            for tta in ttas:
                z = per_tta[tta]
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


def e2e_rate(det: Detector, paths: list[str], bs: int, cap: float, workers=None):
    """(images/s, images/CPU-s) of `Detector.iter_predict` over `paths`, stopped after `cap`
    seconds (a slow path at batch 1 would otherwise take minutes): the rows counted are the
    rows delivered; the look-ahead decoded beyond them (2 x workers + one batch) is not counted,
    which under-states a stopped path's rate by at most that many images."""
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    rows = det.iter_predict(paths, batch_size=bs, workers=workers)
    for row in rows:
        assert not row["error"], row["error"]
        n += 1
        if time.perf_counter() - t0 > cap:
            break
    rows.close()
    elapsed = time.perf_counter() - t0
    return n / elapsed, n / max(time.process_time() - c0, 1e-9)


def session_rows(folder: Path, backend: str, x: np.ndarray, seconds: float) -> dict:
    """Model-alone images/s of one graph under ONNX Runtime session options: the module
    docstring of `fakescope.backends.onnx_runner` quotes these."""
    out = {}
    for opt, threads, spin in (
        ("all", 1, False),
        ("all", 2, False),
        ("all", 2, True),
        ("basic", 2, False),
        ("disable", 2, False),
    ):
        r = OnnxRunner(folder / VARIANTS[backend][0], threads=threads, optimization=opt)
        if spin:
            r.session = ort_session(r.path, session_options(threads, opt, spinning=True))
        for bs in (1, 64):
            key = f"{backend} model alone: optimisation {opt}, {threads} threads, "
            key += f"{'spinning' if spin else 'no spinning'} | none | model alone (arrays/s) | {bs}"
            out[key] = rate(lambda r=r, b=bs: r(x[:b]), bs, seconds)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=None, help="shipped model name or folder")
    p.add_argument("--data", nargs="+", required=True, help="labelled evaluation data")
    p.add_argument("--split", default=None)
    p.add_argument("--paths", nargs="+", default=["torch", "onnx", "onnx-int8"])
    p.add_argument("--accuracy-n", type=float, default=None, help="subset (default: all)")
    p.add_argument("--speed-n", type=int, default=2000, help="files for end-to-end timing")
    p.add_argument("--batches", nargs="+", type=int, default=[1, 64])
    p.add_argument(
        "--ttas", nargs="+", choices=["flip", "none"], default=["flip", "none"], help="TTAs to try"
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="ONNX Runtime intra-op threads (default: the shipped default, the usable cores)",
    )
    p.add_argument(
        "--torch-threads", type=int, default=None, help="torch threads (default: torch's own)"
    )
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument(
        "--workers",
        nargs="*",
        type=int,
        default=[1, 2, 4],
        help="decode-thread counts to try end to end with the default CPU path (batch 256, "
        "as `fakescope predict`)",
    )
    p.add_argument("--seconds", type=float, default=2.0, help="per model-alone measurement")
    p.add_argument(
        "--e2e-seconds", type=float, default=20.0, help="at most this long per end-to-end run"
    )
    p.add_argument("--skip-accuracy", action="store_true")
    p.add_argument("--skip-speed", action="store_true")
    p.add_argument(
        "--session-options",
        action="store_true",
        help="also time the default graph under other ONNX Runtime session options",
    )
    args = p.parse_args()

    if args.threads:
        os.environ["FAKESCOPE_ORT_THREADS"] = str(args.threads)
    dets = paths_for(args.model, args.paths)
    if not dets:
        raise SystemExit("none of --paths is available for this model")
    torch_threads = None
    if "torch" in dets:
        import torch

        if args.torch_threads:
            torch.set_num_threads(args.torch_threads)
        torch_threads = torch.get_num_threads()
    folder, _ = resolve_model_dir(args.model)
    default = pick_backend(folder, "auto", "cpu")
    ref = next(iter(dets.values()))
    ort_threads = default_threads() if set(dets) - {"torch"} else None
    print(
        f"model {ref.name} (TTA in its config: {ref.config.get('tta', 'none')}); default CPU "
        f"path (auto): {default}; {cpu_name()}, {os.cpu_count()} cores; threads: ONNX Runtime "
        f"{ort_threads}, torch {torch_threads}; {time.strftime('%Y-%m-%d %H:%M')}; "
        f"load average before: {load()}"
    )
    if not args.skip_accuracy:
        files = list_labelled(args.data, split=args.split, subset=args.accuracy_n, seed=0)
        t0 = time.perf_counter()
        acc = accuracy(dets, files, args.ttas)
        n_fake = int(np.sum(files.labels))
        print(
            f"\naccuracy on {len(files)} images ({len(files) - n_fake} real, {n_fake} fake; "
            f"{time.perf_counter() - t0:.0f} s); load average: {load()}"
        )
        print(
            "| path | "
            + " | ".join(f"accuracy ({t} TTA) | ROC-AUC ({t})" for t in args.ttas)
            + " |"
        )
        print("|---" * (1 + 2 * len(args.ttas)) + "|")
        for name, m in acc.items():
            cells = [f"{m[t]['accuracy']:.4f} | {m[t]['roc_auc']:.4f}" for t in args.ttas]
            print(f"| {name} | " + " | ".join(cells) + " |")

    if args.skip_speed:
        return
    speed_files = list_labelled(args.data, split=args.split, subset=args.speed_n, seed=1)
    rows: dict[str, list[tuple[float, float]]] = {}
    cap = args.e2e_seconds
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, raw in speed_files.iter_bytes():  # the data set's own encoded files
            f = Path(tmp) / f"{i:06d}{Path(speed_files.entries[i].name).suffix}"
            f.write_bytes(raw)
            paths.append(str(f))
        x = np.concatenate([ref.preprocess(f) for f in paths[:256]])
        per_image = len(x) / min(256, len(paths))
        if len(x) < 64:
            x = np.concatenate([x] * (64 // len(x) + 1))
        nulls = {
            meta: Detector(config=ref.config, name="null", runner=NullRunner(), metadata=meta)
            for meta in (True, False)
        }
        # the default CPU path as `fakescope predict` loads it, and without the provenance read
        auto = Detector.load(args.model, device="cpu")
        auto_pixels = Detector.load(args.model, device="cpu", metadata=False)
        # the default path with its TTA and without, on 1 and 2 ONNX Runtime threads
        variants: dict[tuple[str, int], Detector] = {}
        if default != "torch" and not auto.routes:
            for tta in dict.fromkeys([auto.config.get("tta", "none"), *args.ttas]):
                for threads in (1, 2):
                    det = Detector.load(args.model, device="cpu")
                    det.runner = OnnxRunner(folder / VARIANTS[default][0], threads=threads)
                    det.tta = tta
                    variants[tta, threads] = det

        def bare_decode():  # Pillow alone: what the input rule adds on top of decoding
            for f in paths:
                np.asarray(Image.open(f).convert("RGB"))

        def rule_decode():  # the Detector's pre-processing, one thread
            for f in paths:
                ref.preprocess(f)

        def add(key, value):
            rows.setdefault(key, []).append(value)

        for _ in range(args.rounds):
            for meta, null in nulls.items():
                what = "with" if meta else "without"
                key = f"no network: decoding, threads, rows ({what} provenance read) | - | "
                add(key + "end to end | 64", e2e_rate(null, paths, 64, cap))
            add("Pillow decode alone, 1 thread | - | - | 1", rate(bare_decode, len(paths), 0))
            add("Detector.preprocess alone, 1 thread | - | - | 1", rate(rule_decode, len(paths), 0))
            tta0 = auto.config.get("tta", "none")
            for w in args.workers:
                key = f"default ({default}), {w} decode threads | {tta0}"
                add(f"{key} | end to end | 256", e2e_rate(auto, paths, 256, cap, w))
            key = f"default ({default}), no provenance read | {tta0}"
            add(f"{key} | end to end | 256", e2e_rate(auto_pixels, paths, 256, cap))
            for (tta, threads), det in variants.items():
                key = f"default ({default}), ONNX Runtime {threads} threads | {tta}"
                add(f"{key} | end to end | 256", e2e_rate(det, paths, 256, cap))
            for name, det in dets.items():
                for tta in args.ttas:
                    det.tta = tta
                    for bs in args.batches:
                        key = f"{name} | {tta}"
                        add(
                            f"{key} | model alone (arrays/s) | {bs}",
                            rate(lambda d=det, b=bs: d.logits_arrays(x[:b], b), bs, args.seconds),
                        )
                        add(f"{key} | end to end | {bs}", e2e_rate(det, paths, bs, cap))
            if args.session_options and default != "torch":
                for key, value in session_rows(folder, default, x, args.seconds).items():
                    add(key, value)
    print(
        f"\nmedian of {args.rounds} interleaved rounds; model alone counts arrays (network "
        f"inputs: {per_image:.2f} per image here); end to end over {len(paths)} files "
        f"(at most {cap:g} s a run); load average after: {load()}. images/CPU-s = images per "
        "CPU second of this process (all its threads): what the work costs; on a shared VM it "
        "drops under load too (other jobs share the physical cores): compare paths within a run"
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
