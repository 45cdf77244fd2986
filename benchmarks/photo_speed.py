"""Time and peak memory of scoring large photos with a native-resolution (tiled) model.

Each measurement runs in a fresh child process, which reports its own peak resident memory
(VmHWM from /proc/self/status, so the parent's memory is not counted):

- `4000x3000`: one 12-megapixel JPEG scored with `Detector.predict` after loading the model
  (median of `--repeats` calls in the same process; the first call is reported apart);
- `1024px`: images/s over `--n` 1024×768 JPEGs with `Detector.predict_batch`.

The photos are made from real images of the shared data (an aivsreal256 validation photo,
Lanczos-upscaled to the target size and saved as JPEG quality 92), so decoding costs what a real
JPEG of that size costs.

    python benchmarks/photo_speed.py --model photo-effnet-lite2 --shared ../shared/data
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, statistics, sys, time
from pathlib import Path
from fakescope.detector import Detector

model, backend, mode, folder, repeats = sys.argv[1:6]
t0 = time.perf_counter()
det = Detector.load(model, device="cpu", backend=backend, metadata=False)
load_s = time.perf_counter() - t0
files = sorted(Path(folder).glob("*.jpg"))
out = {"model": det.name, "backend": backend, "load_s": round(load_s, 3)}
if mode == "big":
    times = []
    for _ in range(int(repeats)):
        t = time.perf_counter()
        det.predict(files[0])
        times.append(time.perf_counter() - t)
    out.update(first_s=round(times[0], 3), median_s=round(statistics.median(times[1:] or times), 3))
else:
    t = time.perf_counter()
    rows = det.predict_batch(files)
    dt = time.perf_counter() - t
    out.update(n=len(rows), images_per_s=round(len(rows) / dt, 2))
status = Path("/proc/self/status").read_text()
peak_kb = int(next(l for l in status.splitlines() if l.startswith("VmHWM")).split()[1])
out["peak_mb"] = round(peak_kb / 1024)
print(json.dumps(out))
"""


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def make_photos(shared: Path, folder: Path, size: tuple[int, int], n: int) -> None:
    from PIL import Image

    tar = shared / "aivsreal256" / "aivsreal256-validation.tar"
    with tarfile.open(tar) as tf:
        members = [m for m in tf if m.isfile() and "/real/" in m.name and m.name.endswith(".jpg")][
            :n
        ]
        for i, m in enumerate(members):
            img = Image.open(io.BytesIO(tf.extractfile(m).read())).convert("RGB")
            img.resize(size, Image.Resampling.LANCZOS).save(folder / f"{i:04d}.jpg", quality=92)


def run_child(model: str, backend: str, mode: str, folder: Path, repeats: int) -> dict:
    cmd = [sys.executable, "-c", CHILD, model, backend, mode, str(folder), str(repeats)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--shared", type=Path, default=Path("../shared/data"))
    p.add_argument("--backends", nargs="+", default=["torch"])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--n", type=int, default=16, help="1024-px photos for the throughput run")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        big, small = Path(d) / "big", Path(d) / "small"
        big.mkdir()
        small.mkdir()
        make_photos(args.shared, big, (4000, 3000), 1)
        make_photos(args.shared, small, (1024, 768), args.n)
        print(f"{time.strftime('%Y-%m-%d %H:%M')}; load average before: {load()}", flush=True)
        for backend in args.backends:
            r = run_child(args.model, backend, "big", big, args.repeats)
            print(json.dumps({"photo": "4000x3000", **r}), flush=True)
            r = run_child(args.model, backend, "small", small, 1)
            print(json.dumps({"photo": "1024x768", **r}), flush=True)
        print(f"load average after: {load()}")


if __name__ == "__main__":
    main()
