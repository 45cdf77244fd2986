"""Transfer to sources a model never saw: leave one source out, for the CLIP head, the tile
model and their fusion; and the per-source validation table of any photo model.

Steps (each caches its output under --work):

    python benchmarks/clip_features.py --shared ../shared/data --out WORK/clip
    python benchmarks/source_transfer.py tiles --model photo-effnet-lite2 --work WORK
    python benchmarks/source_transfer.py loso --work WORK --tiles-model photo-effnet-lite2

`tiles` scores every validation split with a tile model through `Detector` (raw image logits,
ONNX Runtime). `loso` trains, for every fake source S, a logistic-regression head on the CLIP
embeddings of every *other* source's training split (S's reals too when S has its own), and
tests on S's validation fakes against their paired validation reals (`sources.PAIRED_REALS`).
The tile column is the given tile model, valid as "held out" only for sources it never trained
on (its config's data sources); the fusion column combines both, its combiner fitted on the
other sources' validation images (never S's, nor the reals S is tested against). As shipped,
the fusion also gets a probe trained on each `--specialist` source alone (aivsreal256) unless
that source is the one held out. AUC, and the share of S's fakes caught at the threshold that
calls 5% of the other sources' validation reals fake (the same exclusions).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sources import FAKE_SOURCES, PAIRED_REALS, SOURCES, load_split

SPECIALIST_C = 1.0  # the per-source probes beside it (scripts/ship_photo_fusion.py)
C = 0.3  # inverse L2 strength of the CLIP head (unit-length embeddings), chosen by the LOSO mean
BALANCE = 0.5  # a source's weight within its class, by size**BALANCE (as training samples)


def balanced_weights(src: np.ndarray, y: np.ndarray) -> np.ndarray:
    from fakescope.training.loop import source_weights

    w = source_weights(src, y, BALANCE).numpy()
    return w * len(w)


def load_clip(work: Path, split: str, skip: set[str] = frozenset()):
    e, y, s = [], [], []
    for name in SOURCES:
        if name in skip:
            continue
        z = np.load(work / "clip" / f"{name}_{split}.npz")
        e.append(z["emb"])
        y.append(z["y"])
        s += [name] * len(z["y"])
    return np.concatenate(e), np.concatenate(y), np.array(s)


def fit_head(emb, y, src) -> LogisticRegression:
    lr = LogisticRegression(C=C, max_iter=2000)
    lr.fit(emb, y, sample_weight=balanced_weights(src, y))
    return lr


def cmd_tiles(args) -> None:
    from fakescope.detector import Detector

    det = Detector.load(args.model, backend="onnx", metadata=False)
    out = args.work / "tiles" / Path(args.model).name
    out.mkdir(parents=True, exist_ok=True)
    for name in SOURCES:
        f = out / f"{name}_validation.npz"
        if f.exists():
            continue
        ds = load_split(args.shared, name, "validation")
        z = np.array([v for v, _ in det.iter_logits(iter(ds.x), batch_size=256)], np.float64)
        np.savez(f, names=np.array(ds.names), y=ds.y, z=z)
        print(f"{name}: {len(z)} scored", file=sys.stderr)


def _pair(name: str, parts: dict) -> tuple[np.ndarray, np.ndarray]:
    fz, fy = parts[name]
    rz, ry = parts[PAIRED_REALS[name]]
    return np.r_[rz[ry == 0], fz[fy == 1]], np.r_[np.zeros((ry == 0).sum()), np.ones(fy.sum())]


def _caught(scores_real_train: np.ndarray, z: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(share of the held-out fakes, share of their paired reals) above the threshold that
    calls 5% of the other sources' reals fake."""
    thr = np.quantile(scores_real_train, 0.95)
    return float((z[y == 1] > thr).mean()), float((z[y == 0] > thr).mean())


def trained_sources(model: str) -> set[str]:
    from fakescope.model_dir import read_config, resolve_model_dir

    path, _ = resolve_model_dir(model)
    cfg = read_config(path)
    names = set()
    for p in cfg.get("training_data", {}).get("paths", []):
        names |= {n for n, (files, _, _) in SOURCES.items() if any(p.endswith(f) for f in files)}
    return names or {"aivsreal256", "sdv1coco"}  # releases 1-2 recorded no data.json


def cmd_loso(args) -> None:
    tiles_dir = args.work / "tiles" / Path(args.tiles_model).name
    seen_by_tiles = trained_sources(args.tiles_model)
    tz = {n: np.load(tiles_dir / f"{n}_validation.npz") for n in SOURCES}
    rows = []
    for held in FAKE_SOURCES:
        # train without S (its reals too when it has its own); fit the combiner and the
        # threshold without S and without the reals S is tested against
        skip, skip_val = {held}, {held, PAIRED_REALS[held]}
        emb, y, src = load_clip(args.work, "train", skip)
        head = fit_head(emb, y, src)
        vemb, vy, vsrc = load_clip(args.work, "validation")
        zc = head.decision_function(vemb)
        cols = [zc]
        for name in args.specialist:  # a probe of its own (as shipped), unless held out
            if name != held:
                m = src == name
                probe = LogisticRegression(C=SPECIALIST_C, max_iter=3000).fit(emb[m], y[m])
                cols.append(probe.decision_function(vemb))
        parts_c = {n: (zc[vsrc == n], vy[vsrc == n]) for n in SOURCES}
        parts_t = {n: (tz[n]["z"], tz[n]["y"]) for n in SOURCES}
        # combiner on the other sources' validation images
        keep = np.array([s not in skip_val for s in vsrc])
        zt_all = np.concatenate([tz[n]["z"] for n in SOURCES])
        comb = LogisticRegression(C=1.0)
        comb.fit(
            np.c_[zt_all, *cols][keep],
            vy[keep],
            sample_weight=balanced_weights(vsrc[keep], vy[keep]),
        )
        zf = comb.decision_function(np.c_[zt_all, *cols])
        parts_f = {n: (zf[vsrc == n], vy[vsrc == n]) for n in SOURCES}
        real_train = keep & (vy == 0)
        row = {"held_out": held, "n_fake": int(parts_c[held][1].sum())}
        views = (("clip", parts_c, zc), ("tiles", parts_t, zt_all), ("fusion", parts_f, zf))
        for key, parts, z in views:
            s, t = _pair(held, parts)
            valid = key == "clip" or held not in seen_by_tiles
            caught, fpr = _caught(z[real_train], s, t)
            row[key] = {
                "auc": round(float(roc_auc_score(t, s)), 4),
                "caught": round(caught, 4),
                "reals_called_fake": round(fpr, 4),
                "held_out": valid,
            }
        rows.append(row)
        print(json.dumps(row))
    (args.work / "loso.json").write_text(json.dumps(rows, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=Path("../shared/data"))
    ap.add_argument("--work", type=Path, required=True)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("tiles")
    t.add_argument("--model", required=True)
    t.set_defaults(func=cmd_tiles)
    lo = sub.add_parser("loso")
    lo.add_argument("--tiles-model", default="photo-effnet-lite2")
    lo.add_argument(
        "--specialist",
        nargs="*",
        default=["aivsreal256"],
        help="sources with a CLIP probe of their own in the fusion (as shipped)",
    )
    lo.set_defaults(func=cmd_loso)
    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
