"""Cost of reading provenance evidence: alone per image, and `predict` with vs without it.

Two folders of N files each, written to a temporary folder:

- ``cifake``: the first N JPEGs of the CIFAKE test archive, as they are (no metadata: the
  common case, where evidence reading must cost next to nothing);
- ``metadata``: the same pixels re-encoded, cycling through the kinds of file the tests build
  (plain PNG, AUTOMATIC1111 PNG, ComfyUI PNG, IPTC XMP JPEG, camera EXIF JPEG, generator
  Software JPEG, and C2PA-signed JPEG when c2pa-python is installed).

Per folder and round: `read_evidence` over every file; `Detector.iter_predict` over the files
(pixels only); the same with `combine(row, read_evidence(path))` per row in the consuming
thread. Rounds are interleaved (the machine's speed drifts); medians are reported. Predict rounds
cost minutes on a loaded 2-core CPU, hence their own (smaller) default count.

    python benchmarks/provenance_overhead.py --data ../shared/data/cifake/cifake-test.tar.xz
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from common import hardware
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' file builders
from fakescope.detector import Detector  # noqa: E402
from fakescope.provenance import combine, read_evidence  # noqa: E402
from tests import provenance_files as pf  # noqa: E402


def first_jpegs(archive: str, n: int) -> list[tuple[str, bytes]]:
    out = []
    with tarfile.open(archive) as tf:
        for m in tf:
            if m.isfile() and m.name.lower().endswith(".jpg"):
                out.append((Path(m.name).name, tf.extractfile(m).read()))
                if len(out) == n:
                    break
    return out


def with_metadata(jpegs: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """The same pixels, each file carrying one kind of metadata (cycled)."""

    def png(img: Image.Image, **text) -> bytes:
        from PIL import PngImagePlugin

        info = PngImagePlugin.PngInfo()
        for k, v in text.items():
            info.add_text(k, v)
        return pf.encode(img, "PNG", pnginfo=info)

    kinds: list[tuple[str, Callable[[Image.Image], bytes]]] = [
        ("plain.png", lambda im: pf.encode(im, "PNG")),
        ("a1111.png", lambda im: png(im, parameters=pf.A1111)),
        ("comfyui.png", lambda im: png(im, prompt=json.dumps(pf.COMFY_PROMPT))),
        ("iptc.jpg", lambda im: pf.encode(im, "JPEG", xmp=pf.xmp_packet())),
        ("camera.jpg", lambda im: pf.encode(im, "JPEG", exif=pf.camera_exif().tobytes())),
        (
            "software.jpg",
            lambda im: pf.encode(im, "JPEG", exif=pf.exif(software="Midjourney").tobytes()),
        ),
    ]
    try:
        import c2pa  # noqa: F401

        ca = pf.make_test_ca()
        kinds.append(
            ("c2pa.jpg", lambda im: pf.c2pa_signed(ca, pf.encode(im, "JPEG"), "image/jpeg"))
        )
    except ImportError:
        print("c2pa-python not installed: no C2PA files", file=sys.stderr)
    out = []
    for i, (name, data) in enumerate(jpegs):
        kind, build = kinds[i % len(kinds)]
        out.append((f"{Path(name).stem}_{kind}", build(Image.open(io.BytesIO(data)))))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="CIFAKE test archive (.tar.xz)")
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--model", default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=5, help="rounds of evidence reading alone")
    p.add_argument("--predict-repeats", type=int, default=1, help="rounds of predict with/without")
    args = p.parse_args()
    det = Detector.load(args.model, device=args.device)
    jpegs = first_jpegs(args.data, args.n)
    sets = {"cifake": jpegs, "metadata": with_metadata(jpegs)}
    times: dict[tuple[str, str], list[float]] = {}
    per_kind: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for key, files in sets.items():
            (Path(tmp) / key).mkdir()
            paths[key] = []
            for name, data in files:
                (Path(tmp) / key / name).write_bytes(data)
                paths[key].append(str(Path(tmp) / key / name))
        found = {k: sum(bool(read_evidence(x).items) for x in v) for k, v in paths.items()}
        for _row in det.iter_predict(paths["cifake"][:256]):  # warm-up (kernels, page cache)
            pass
        for _ in range(args.repeats):  # evidence alone: cheap, several rounds
            for key, ps in paths.items():
                t0 = time.perf_counter()
                for x in ps:
                    t1 = time.perf_counter()
                    read_evidence(x)
                    kind = f"{key}: {x.rsplit('_', 1)[-1] if key == 'metadata' else 'jpg'}"
                    per_kind.setdefault(kind, []).append(time.perf_counter() - t1)
                times.setdefault((key, "evidence alone"), []).append(time.perf_counter() - t0)
        for r in range(args.predict_repeats):
            for key, ps in paths.items():
                t0 = time.perf_counter()
                for _row in det.iter_predict(ps):
                    pass
                times.setdefault((key, "predict, pixels only"), []).append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                for row in det.iter_predict(ps):
                    combine(row, read_evidence(row["path"]))
                times.setdefault((key, "predict + evidence"), []).append(time.perf_counter() - t0)
                print(f"round {r + 1}: {key} done", file=sys.stderr)
    print(
        f"model {det.name}; device {det.device} ({hardware(det.device)}); torch "
        f"{torch.__version__}; {time.strftime('%Y-%m-%d')}; {args.n} files per folder; median of "
        f"{args.repeats} rounds (evidence alone), {args.predict_repeats} (predict)"
    )
    print("| folder | files with evidence | path | total s | ms / image | images/s |")
    print("|---|---|---|---|---|---|")
    for (key, what), ts in times.items():
        t = float(np.median(ts))
        n = len(paths[key])
        print(f"| {key} | {found[key]} | {what} | {t:.2f} | {1000 * t / n:.3f} | {n / t:.0f} |")
    for key in paths if args.predict_repeats else ():
        a = np.array(times[(key, "predict + evidence")]) / times[(key, "predict, pixels only")]
        print(f"{key}: predict + evidence / pixels only, per round: {np.round(a, 3).tolist()}")
    print("\n| file kind | evidence alone, ms / image (median) | 95th percentile |\n|---|---|---|")
    for kind, ts in per_kind.items():
        ms = 1000 * np.array(ts)
        print(f"| {kind} | {np.median(ms):.3f} | {np.percentile(ms, 95):.3f} |")


if __name__ == "__main__":
    main()
