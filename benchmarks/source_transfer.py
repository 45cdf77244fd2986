"""Transfer to sources a model never saw: leave one source out, for the CLIP head, the tile
model and their fusion; and the per-source validation table of any photo model.

Steps (each caches its output under --work). Held-out units: every fake source (the Midjourney
/ Whisk crops together with their whole web copies, which show the same scenes), and the real
sources faces-real, hardreals (crops and web copies together) and cameras: a real unit reports
the share of its validation reals called fake at the threshold chosen without it (the shipped
rule: the largest per-source 5% threshold on the other sources' validation reals).

    python benchmarks/clip_features.py --shared ../shared/data --out WORK/clip
    python benchmarks/source_transfer.py tiles --model photo-effnet-lite2 --work WORK
    python benchmarks/source_transfer.py loso --work WORK --tiles-model photo-effnet-lite2
    python benchmarks/source_transfer.py auc --work WORK  # the models `tiles` scored, side by side

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
from sources import FAKE_SOURCES, PAIRED_REALS, SOURCES, is_art, load_split

SPECIALIST_C = 1.0  # the per-source probes beside it (scripts/ship_photo_fusion.py)
C = 0.3  # inverse L2 strength of the CLIP head (unit-length embeddings), chosen by the LOSO mean
BALANCE = 0.5  # a source's weight within its class, by size**BALANCE (as training samples)


def balanced_weights(src: np.ndarray, y: np.ndarray) -> np.ndarray:
    from fakescope.training.loop import source_weights

    w = source_weights(src, y, BALANCE).numpy()
    return w * len(w)


def load_clip(work: Path, split: str, skip: set[str] = frozenset()):
    """(embeddings, labels, source names) of every source but `skip`, artworks left out (not
    photos: the scope rule answers for them)."""
    e, y, s = [], [], []
    for name in SOURCES:
        if name in skip:
            continue
        z = np.load(work / "clip" / f"{name}_{split}.npz")
        keep = ~np.array([is_art(n) for n in z["names"].tolist()], bool)
        e.append(z["emb"][keep])
        y.append(z["y"][keep])
        s += [name] * int(keep.sum())
    return np.concatenate(e), np.concatenate(y), np.array(s)


def fit_head(emb, y, src, c: float = C) -> LogisticRegression:
    lr = LogisticRegression(C=c, max_iter=2000)
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
        keep = ~np.array([is_art(n) for n in ds.names], bool)
        x = [a for a, k in zip(ds.x, keep, strict=True) if k]
        z = np.array([v for v, _ in det.iter_logits(iter(x), batch_size=256)], np.float64)
        names = [n for n, k in zip(ds.names, keep, strict=True) if k]
        np.savez(f, names=np.array(names), y=ds.y[keep], z=z)
        print(f"{name}: {len(z)} scored", file=sys.stderr)


def cmd_auc(args) -> None:
    """Each tile model's ROC-AUC per fake source against its paired reals, a column per model
    that `tiles` scored under WORK/tiles (e.g. training runs compared before a release)."""
    models = sorted(d for d in (args.work / "tiles").iterdir() if d.is_dir())
    parts = {m.name: {} for m in models}
    for m in models:
        for f in m.glob("*_validation.npz"):
            z = np.load(f)
            parts[m.name][f.name.removesuffix("_validation.npz")] = (z["z"], z["y"])
    print("| fake source (against) | " + " | ".join(parts) + " |")
    print("|---|" + "---|" * len(parts))
    for name in FAKE_SOURCES:
        cells = []
        for p in parts.values():
            if name not in p or PAIRED_REALS[name] not in p:
                cells.append("—")
                continue
            z, y = _pair(name, p)
            cells.append(f"{roc_auc_score(y, z):.3f}")
        print(f"| {name} ({PAIRED_REALS[name]}) | " + " | ".join(cells) + " |")


def _pair(name: str, parts: dict) -> tuple[np.ndarray, np.ndarray]:
    fz, fy = parts[name]
    rz, ry = parts[PAIRED_REALS[name]]
    return np.r_[rz[ry == 0], fz[fy == 1]], np.r_[np.zeros((ry == 0).sum()), np.ones(fy.sum())]


def _threshold(z: np.ndarray, y: np.ndarray, src: np.ndarray, keep: np.ndarray) -> float:
    """The shipped rule on the kept validation reals: the largest of the per-source scores
    that call 5% of each source's reals fake."""
    real = keep & (y == 0)
    return max(float(np.quantile(z[real & (src == n)], 0.95)) for n in np.unique(src[real]))


# a held-out unit and every source it takes out: the whole-image Midjourney / Whisk copies
# show the same scenes as their crops, and the hard reals come as crops and web copies
UNITS = {
    "mj7": {"mj7", "newgens-web"},
    "whisk": {"whisk", "newgens-web"},
    "newgens-web": {"mj7", "whisk", "newgens-web"},
    "hardreals": {"hardreals", "hardreals-web"},
}
REAL_UNITS = ("faces-real", "hardreals", "cameras")


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
    zt_all = np.concatenate([tz[n]["z"] for n in SOURCES])
    vemb, vy, vsrc = load_clip(args.work, "validation")
    assert len(zt_all) == len(vy), "tile and CLIP validation sets differ"
    boost = {k: float(v) for k, v in (b.split("=") for b in args.boost)}
    rows = []
    for held in [*FAKE_SOURCES, *REAL_UNITS]:
        # train without the unit (a fake source's own reals too); fit the combiner and the
        # threshold without it and without the reals it is tested against
        skip = UNITS.get(held, {held})
        skip_val = skip | ({PAIRED_REALS[held]} if held in PAIRED_REALS else set())
        emb, y, src = load_clip(args.work, "train", skip)
        zc = fit_head(emb, y, src, args.head_c).decision_function(vemb)
        cols = [zc]
        for name in args.specialist:  # a probe of its own (as shipped), unless held out
            if name not in skip:
                m = src == name
                probe = LogisticRegression(C=args.specialist_c, max_iter=3000)
                probe.fit(emb[m], y[m])
                cols.append(probe.decision_function(vemb))
        keep = np.array([s not in skip_val for s in vsrc])
        w = balanced_weights(vsrc[keep], vy[keep])
        for name, factor in boost.items():  # as the shipped combiner weighs them
            w = w * np.where(vsrc[keep] == name, factor, 1.0)
        comb = LogisticRegression(C=1.0)
        comb.fit(np.c_[zt_all, *cols][keep], vy[keep], sample_weight=w)
        zf = comb.decision_function(np.c_[zt_all, *cols])
        row = {"held_out": held, "kind": "fake" if held in FAKE_SOURCES else "real"}
        for key, z in (("clip", zc), ("tiles", zt_all), ("fusion", zf)):
            thr = _threshold(z, vy, vsrc, keep)
            valid = key == "clip" or not (skip & seen_by_tiles)
            if held in FAKE_SOURCES:
                parts = {n: (z[vsrc == n], vy[vsrc == n]) for n in SOURCES}
                sc, t = _pair(held, parts)
                row[key] = {
                    "auc": round(float(roc_auc_score(t, sc)), 4),
                    "caught": round(float((sc[t == 1] >= thr).mean()), 4),
                    "reals_called_fake": round(float((sc[t == 0] >= thr).mean()), 4),
                    "held_out": valid,
                }
                row["n_fake"] = int((t == 1).sum())
            else:
                mine = np.isin(vsrc, list(skip)) & (vy == 0)
                row[key] = {
                    "reals_called_fake": round(float((z[mine] >= thr).mean()), 4),
                    "held_out": valid,
                }
                row["n_real"] = int(mine.sum())
        rows.append(row)
        print(json.dumps(row), flush=True)
    (args.work / "loso.json").write_text(json.dumps(rows, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=Path("../shared/data"))
    ap.add_argument("--work", type=Path, required=True)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("tiles")
    t.add_argument("--model", required=True)
    t.set_defaults(func=cmd_tiles)
    sub.add_parser("auc").set_defaults(func=cmd_auc)
    lo = sub.add_parser("loso")
    lo.add_argument("--tiles-model", default="photo-effnet-lite2")
    lo.add_argument(
        "--specialist",
        nargs="*",
        default=["aivsreal256"],
        help="sources with a CLIP probe of their own in the fusion (as shipped)",
    )
    lo.add_argument("--head-c", type=float, default=C, help="the all-source probe's C")
    lo.add_argument("--specialist-c", type=float, default=SPECIALIST_C)
    lo.add_argument(
        "--boost", nargs="*", default=[], metavar="SOURCE=F", help="as ship_photo_fusion.py"
    )
    lo.set_defaults(func=cmd_loso)
    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
