"""CLIP-head and combiner variants of the photo fusion, compared on cached scores.

The fusion's tile model is fixed; what changes is the CLIP head (an all-source probe, a probe
per specialist source) and the logistic combiner fitted on the tile model's held-out slice.
Each variant is fitted exactly as `scripts/ship_photo_fusion.py` fits the shipped one (the
same training part, held-out slice with whole web images, source weights, artworks left out,
the largest per-source 5% threshold, the same band) and measured on every validation split:
ROC-AUC against the paired reals, fakes caught and reals called fake at its own threshold,
with the Detector's scope flags. Used to choose the shipped head (BENCHMARKS.md).

    python benchmarks/fusion_variants.py scores --model photo-effnet-lite2 --work WORK
    python benchmarks/fusion_variants.py compare --model photo-effnet-lite2 --work WORK

`scores` caches the tile logits of the held-out slice and of every validation split under
WORK/fusion/NAME (WORK/clip must hold `clip_features.py`'s embeddings); `--model` is a
shipped name or a training run (its own split and settings).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "benchmarks")]

import ship_photo_fusion as ship  # noqa: E402
from sources import PAIRED_REALS, SOURCES, load_split  # noqa: E402

from fakescope.calibration import sigmoid  # noqa: E402
from fakescope.detector import Detector  # noqa: E402
from fakescope.training.runs import load_train_data, resume_args  # noqa: E402

# (label, all-source C, specialist C, combiner weight on aivsreal256's held-out photos)
VARIANTS = [
    ("shipped (all 0.3, aivsreal256 1)", 0.3, 1.0, 1.0),
    ("all 0.3 only", 0.3, None, 1.0),
    ("all 0.3, aivsreal256 10", 0.3, 10.0, 1.0),
    ("all 1, aivsreal256 1", 1.0, 1.0, 1.0),
    ("all 1, aivsreal256 10", 1.0, 10.0, 1.0),
    ("all 0.3, aivsreal256 1, combiner 2x", 0.3, 1.0, 2.0),
    ("all 1, aivsreal256 10, combiner 2x", 1.0, 10.0, 2.0),
]


def cache_dir(work: Path, model: str) -> Path:
    return work / "fusion" / Path(model).name


def cmd_scores(args) -> None:
    """Tile logits of the held-out slice (whole web images) and of every validation split."""
    out = cache_dir(args.work, args.model)
    out.mkdir(parents=True, exist_ok=True)
    if Path(args.model).is_dir() and (Path(args.model) / "history.csv").exists():
        cfg, data = resume_args(Path(args.model))
    else:
        a = argparse.Namespace(out=ship.WEIGHTS_DIR, tiles_name=args.model)
        cfg, data = ship.shipped_training(a)
    tiles = Detector.load(args.model, device="cpu", metadata=False)
    if not (out / "held.npz").exists():
        train, val, _, held = load_train_data(cfg, data, progress=False)
        held.x = ship.with_whole(held)
        np.savez(
            out / "held.npz",
            names=np.array(held.names),
            y=held.y,
            src=np.array(data.source_of(held.names)),
            zt=ship.tile_logits(tiles, held.x),
            train_names=np.array(train.names + val.names),
            train_src=np.array(data.source_of(train.names + val.names)),
            train_y=np.r_[train.y, val.y],
        )
    for name in SOURCES:
        f = out / f"{name}_validation.npz"
        if f.exists():
            continue
        ds = load_split(args.shared, name, "validation")
        off, like = ship.scope_flags(ds.x)
        zt = ship.tile_logits(tiles, ds.x)
        np.savez(f, names=np.array(ds.names), y=ds.y, zt=zt, off=off, like=like)
        print(f"{name}: {len(ds)} scored", file=sys.stderr, flush=True)


def load_cached(work: Path, model: str):
    out = cache_dir(work, model)
    h = dict(np.load(out / "held.npz"))
    tab = ship.clip_table(work, "train")
    h["e"] = np.stack([tab[n] for n in h["names"].tolist()])
    h["train_e"] = np.stack([tab[n] for n in h["train_names"].tolist()])
    h["art"] = ship.art_flags(h["names"].tolist())
    vtab = ship.clip_table(work, "validation")
    val = {}
    for name in SOURCES:
        d = dict(np.load(out / f"{name}_validation.npz"))
        d["e"] = np.stack([vtab[n] for n in d["names"].tolist()])
        d["art"] = ship.art_flags(d["names"].tolist())
        val[name] = d
    return h, val


def fit_variant(h, c_all: float, c_spec: float | None, boost: float):
    """The fused logit function of one variant (the ship's own fit), its threshold and band."""
    weight, bias, (w_t, w_c, b), _ = ship.fit_clip_head(
        h["train_e"],
        h["train_y"],
        h["train_src"],
        h["e"],
        h["zt"],
        h["y"],
        h["src"],
        ["aivsreal256"] if c_spec else [],
        c_all,
        c_spec or 1.0,
        {"aivsreal256": boost},
    )

    def fused(zt, e):
        return w_t * zt + w_c * (e.astype(np.float64) @ weight + bias) + b

    p = sigmoid(fused(h["zt"], h["e"]))
    thr = ship.per_source_threshold(p, h["y"], h["src"], 0.05, h["art"])["threshold"]
    return fused, thr, ship.band_around(thr, 0.2)


def measure(val, fused, thr, band) -> dict:
    probs = {n: sigmoid(fused(d["zt"], d["e"])) for n, d in val.items()}
    row = {}
    for name, d in val.items():
        photo = ~d["art"]
        lab = ship.labels_for(probs[name], thr, band, (d["off"], d["like"]))
        r = {}
        if (photo & (d["y"] == 0)).any():
            r["reals_called_fake"] = float((lab[photo & (d["y"] == 0)] == 1).mean())
        if (d["y"] == 1).any():
            r["fakes_caught"] = float((lab[d["y"] == 1] == 1).mean())
            rd = val[PAIRED_REALS[name]]
            rp = probs[PAIRED_REALS[name]][(rd["y"] == 0) & ~rd["art"]]
            t = np.r_[np.zeros(len(rp)), np.ones(int(d["y"].sum()))]
            r["roc_auc"] = float(roc_auc_score(t, np.r_[rp, probs[name][d["y"] == 1]]))
        row[name] = r
    pooled = [probs[n][~val[n]["art"]] for n in ship.POOLED]
    flags = [(val[n]["off"][~val[n]["art"]], val[n]["like"][~val[n]["art"]]) for n in ship.POOLED]
    lab = ship.labels_for(
        np.concatenate(pooled),
        thr,
        band,
        (np.concatenate([f[0] for f in flags]), np.concatenate([f[1] for f in flags])),
    )
    row["+".join(ship.POOLED)] = {"reals_called_fake": float((lab == 1).mean())}
    return row


def cmd_compare(args) -> None:
    h, val = load_cached(args.work, args.model)
    results = {}
    fakes = [n for n in val if (val[n]["y"] == 1).any()]
    print("| variant | threshold | " + " | ".join(fakes) + " | worst real source |")
    print("|---|---|" + "---|" * (len(fakes) + 1))
    for label, c_all, c_spec, boost in VARIANTS:
        fused, thr, band = fit_variant(h, c_all, c_spec, boost)
        row = measure(val, fused, thr, band)
        worst = max((r["reals_called_fake"], n) for n, r in row.items() if "reals_called_fake" in r)
        results[label] = {"threshold": thr, "per_source": row}
        cells = [f"{row[n]['roc_auc']:.3f} / {100 * row[n]['fakes_caught']:.0f}%" for n in fakes]
        print(
            f"| {label} | {thr:.3f} | " + " | ".join(cells) + f" | {100 * worst[0]:.1f}% "
            f"({worst[1]}) |",
            flush=True,
        )
    f = cache_dir(args.work, args.model) / "variants.json"
    f.write_text(json.dumps(results, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(required=True)
    for name, fn in (("scores", cmd_scores), ("compare", cmd_compare)):
        p = sub.add_parser(name)
        p.add_argument("--model", default="photo-effnet-lite2")
        p.add_argument("--work", type=Path, required=True)
        p.add_argument("--shared", type=Path, default=Path("../shared/data"))
        p.set_defaults(func=fn)
    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
