"""Does a downscaled view beside the native tiles help the photo model? Measured, not assumed.

Scores stratified samples of the aivsreal256 and sdv1coco validation splits with the shipped
photo model (tiles at native scale, through `Detector`) on the image as it is and on the image
resized to 0.75x and 0.5x (Lanczos), and reports the ROC-AUC of each view and of the mean logit
of several views. The shipped rule stays the native view alone unless a mix wins on both sets
(the issue allows a downscaled view beside the native tiles only if it wins on the transfer
check); see BENCHMARKS.md.

    python benchmarks/photo_scales.py --shared ../shared/data --n-a 600 --n-s 200
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.metrics import roc_auc_score

from fakescope.data import list_labelled
from fakescope.detector import Detector

SCALES = (1.0, 0.75, 0.5)


def resized(a: np.ndarray, s: float) -> np.ndarray:
    if s == 1.0:
        return a
    size = (round(a.shape[1] * s), round(a.shape[0] * s))
    return np.asarray(Image.fromarray(a).resize(size, Image.Resampling.LANCZOS))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shared", type=Path, default=Path("../shared/data"))
    p.add_argument("--model", default="photo-effnet-lite2")
    p.add_argument("--n-a", type=int, default=600, help="aivsreal256 validation sample")
    p.add_argument("--n-s", type=int, default=200, help="sdv1coco validation sample")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()

    det = Detector.load(args.model, device="cpu", metadata=False)
    sets = {
        "aivsreal256-val": ("aivsreal256/aivsreal256-validation.tar", args.n_a),
        "sdv1coco-val": ("sdv1coco/sdv1coco-crops256-validation.tar", args.n_s),
    }
    lines = [
        "| data | n | native | 0.75× | 0.5× | mean(native, 0.5×) | mean(native, 0.75×, 0.5×) |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, (rel, n) in sets.items():
        files = list_labelled([args.shared / rel], subset=n, seed=args.seed)
        items = list(files.iter_bytes())
        y = np.array([files.labels[i] for i, _ in items])
        images = [np.asarray(Image.open(io.BytesIO(raw)).convert("RGB")) for _, raw in items]
        z = {}
        for s in SCALES:
            z[s] = np.array(
                [logit for logit, _ in det.iter_logits([resized(a, s) for a in images])]
            )
        auc = {f"x{s}": roc_auc_score(y, z[s]) for s in SCALES}
        auc["mean(1,0.5)"] = roc_auc_score(y, z[1.0] + z[0.5])
        auc["mean(1,0.75,0.5)"] = roc_auc_score(y, z[1.0] + z[0.75] + z[0.5])
        print(key, len(y), json.dumps({k: round(v, 4) for k, v in auc.items()}), flush=True)
        lines.append(f"| {key} | {len(y)} | " + " | ".join(f"{v:.4f}" for v in auc.values()) + " |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
