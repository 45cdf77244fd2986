"""Tile size for the photo model: the same weights scored in larger tiles, per source.

EfficientNet-Lite2 ends in global pooling, so a model trained on 96-px crops can score tiles of
any size. This scores every validation split (`sources.py`) with a tile model at each
`--tiles` size (torch backend, the model's other input settings kept; budget scaled to keep
the pixels per image of 48 96-px tiles unless `--budget`), caches the image logits under
WORK/tiles/NAME-tT, and prints ROC-AUC per source for the tiles alone and fused with the
all-source CLIP head (a logistic combiner fitted by 2-fold cross-validation on the validation
images, sources weighted alike: a quick stand-in for the shipped combiner, which is fitted on
the held-out slice).

    python benchmarks/clip_features.py --shared ../shared/data --out WORK/clip
    python benchmarks/tile_sizes.py --work WORK --model photo-effnet-lite2 --tiles 96 128 192
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from source_transfer import PAIRED_REALS, SOURCES, balanced_weights, fit_head, load_clip
from sources import load_split


def score(model: str, tile: int, budget: int, shared: Path, out: Path) -> None:
    from fakescope.detector import Detector
    from fakescope.model_dir import read_config, resolve_model_dir

    src, _ = resolve_model_dir(model)
    cfg = read_config(src)
    cfg["input"] = {**cfg["input"], "tile": tile, "budget": budget}
    cfg["input_size"] = tile
    for k in ("onnx", "onnx_sha256"):
        cfg.pop(k, None)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "m"
        d.mkdir()
        shutil.copy(src / "model.safetensors", d / "model.safetensors")
        (d / "config.json").write_text(json.dumps(cfg))
        det = Detector.load(str(d), device="cpu", backend="torch", metadata=False)
        out.mkdir(parents=True, exist_ok=True)
        for name in SOURCES:
            ds = load_split(shared, name, "validation")
            z = np.array([v for v, _ in det.iter_logits(iter(ds.x), batch_size=64)], np.float64)
            np.savez(out / f"{name}_validation.npz", names=np.array(ds.names), y=ds.y, z=z)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=Path("../shared/data"))
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--model", default="photo-effnet-lite2")
    ap.add_argument("--tiles", type=int, nargs="+", default=[96, 128, 192])
    ap.add_argument("--budget", type=int, help="tiles per image (default: 48 × (96 / tile)²)")
    args = ap.parse_args()
    eva, yva, sva = load_clip(args.work, "validation")
    etr, ytr, s_tr = load_clip(args.work, "train")
    zc = fit_head(etr, ytr, s_tr).decision_function(eva)
    order = {
        n: i
        for i, n in enumerate(
            np.concatenate(
                [np.load(args.work / "clip" / f"{s}_validation.npz")["names"] for s in SOURCES]
            )
        )
    }

    def pair(z: np.ndarray, fake: str) -> float:
        m = ((sva == fake) & (yva == 1)) | ((sva == PAIRED_REALS[fake]) & (yva == 0))
        return float(roc_auc_score(yva[m], z[m]))

    def fused(zt: np.ndarray) -> np.ndarray:
        x, out, w = np.c_[zt, zc], np.zeros(len(yva)), balanced_weights(sva, yva)
        strata = np.array([f"{s}{y}" for s, y in zip(sva, yva, strict=True)])
        for a, b in StratifiedKFold(2, shuffle=True, random_state=0).split(x, strata):
            c = LogisticRegression(C=1.0).fit(x[a], yva[a], sample_weight=w[a])
            out[b] = c.decision_function(x[b])
        return out

    fakes = list(PAIRED_REALS)
    print(
        "| tile | budget | tiles: "
        + " | ".join(fakes)
        + " | + CLIP head: "
        + " | ".join(fakes)
        + " |"
    )
    print("|---|---|" + "---|" * (2 * len(fakes)))
    for t in args.tiles:
        budget = args.budget or max(1, round(48 * (96 / t) ** 2))
        out = args.work / "tiles" / f"{Path(args.model).name}-t{t}-b{budget}"
        if not (out / "ganfaces_validation.npz").exists():
            score(args.model, t, budget, args.shared, out)
        zt = np.zeros(len(yva))
        for name in SOURCES:
            f = np.load(out / f"{name}_validation.npz")
            zt[[order[n] for n in f["names"]]] = f["z"]
        zf = fused(zt)
        print(
            f"| {t} | {budget} | "
            + " | ".join(f"{pair(zt, s):.3f}" for s in fakes)
            + " | "
            + " | ".join(f"{pair(zf, s):.3f}" for s in fakes)
            + " |",
            flush=True,
        )


if __name__ == "__main__":
    main()
