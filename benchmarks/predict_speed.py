"""Inference speed of the shipped model: end to end from files, and the model alone.

End to end = `Detector.iter_predict` over JPEG files on disk (read, decode, pre-process in
threads, score in batches), i.e. what `fakescope predict FOLDER` does; model alone =
`Detector.score_arrays` on already decoded arrays. Both with the model's flip TTA.

    python benchmarks/predict_speed.py --data ../shared/data/cifake/cifake-test.tar.xz --n 4000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import hardware
from PIL import Image

from fakescope.data import load_images
from fakescope.detector import Detector


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", nargs="+", required=True)
    p.add_argument("--n", type=float, default=4000)
    p.add_argument("--model", default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    det = Detector.load(args.model, device=args.device)
    ds = load_images(args.data, purpose="eval", subset=args.n, progress=False)
    default_bs = det.batch_size
    sizes = sorted({32, default_bs, 128, 512})
    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, a in enumerate(ds.x):
            path = Path(tmp) / f"{i:06d}.jpg"
            Image.fromarray(a).save(path, quality=95)
            paths.append(str(path))
        # Interleaved rounds: on a shared machine the speed drifts by the minute, so every path
        # is measured in every round and ratios are taken within a round.
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            n = sum(1 for r in det.iter_predict(paths) if not r["error"])
            rows.append(("end to end (files)", n / (time.perf_counter() - t0)))
            for bs in sizes:
                t0 = time.perf_counter()
                det.score_arrays(ds.x, batch_size=bs)
                rows.append((f"model alone, batch {bs}", len(ds) / (time.perf_counter() - t0)))
    print(
        f"model {det.name}; device {det.device} ({hardware(det.device)}); "
        f"torch {torch.__version__}; {time.strftime('%Y-%m-%d')}; {len(ds)} images; "
        f"median of {args.repeats} interleaved rounds"
    )
    per: dict[str, list[float]] = {}
    for name, value in rows:
        per.setdefault(name, []).append(value)
    print("| path | images/s |\n|---|---|")
    for name, values in per.items():
        print(f"| {name} | {np.median(values):.0f} |")
    ratios = np.array(per[f"model alone, batch {default_bs}"]) / per["model alone, batch 512"]
    print(f"default batch {default_bs} / batch 512, per round: {np.round(ratios, 2).tolist()}")


if __name__ == "__main__":
    main()
