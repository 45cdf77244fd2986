"""How far frozen CLIP features can separate one source: heads of growing capacity on its
training embeddings, ROC-AUC on its validation embeddings (optionally fused with tile logits).

An upper-bound probe for the all-source head (issue 22): if a head trained on the source alone
cannot reach an AUC, the all-source head will not either.

    python benchmarks/clip_features.py --shared ../shared/data --out WORK/clip --sources aivsreal256
    python benchmarks/source_transfer.py --work WORK tiles --model photo-effnet-lite2
    python benchmarks/clip_head_capacity.py --work WORK --source aivsreal256
    python benchmarks/clip_features.py --shared ../shared/data --out WORK/clip   # the rest
    python benchmarks/clip_head_capacity.py --work WORK --all
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler


def mlp(width: int) -> MLPClassifier:
    """The one MLP head every table uses (standardised inputs, early stopping)."""
    return MLPClassifier((width,), alpha=1e-2, early_stopping=True, max_iter=300, random_state=0)


def pair_auc(p: np.ndarray, y: np.ndarray, src: np.ndarray, fake: str, reals: str) -> str:
    """ROC-AUC of a fake source against the reals it is paired with."""
    m = ((src == fake) & (y == 1)) | ((src == reals) & (y == 0))
    return f"{roc_auc_score(y[m], p[m]):.3f}"


def heads() -> dict[str, object]:
    out: dict[str, object] = {
        f"logistic C={c}": LogisticRegression(C=c, max_iter=3000)
        for c in (0.1, 0.3, 1.0, 3.0, 10.0)
    }
    for width in (256, 1024):
        out[f"MLP {width}"] = mlp(width)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--source", default="aivsreal256")
    ap.add_argument("--tiles", default="photo-effnet-lite2", help="tile logits folder name")
    ap.add_argument("--all", action="store_true", help="heads on every source instead")
    args = ap.parse_args()
    if args.all:
        all_sources(args.work)
        loso(args.work)
        return
    tr = np.load(args.work / "clip" / f"{args.source}_train.npz")
    va = np.load(args.work / "clip" / f"{args.source}_validation.npz")
    scale = StandardScaler().fit(tr["emb"])
    xtr, xva = scale.transform(tr["emb"]), scale.transform(va["emb"])
    tiles_f = args.work / "tiles" / args.tiles / f"{args.source}_validation.npz"
    tz = None
    if tiles_f.exists():
        t = np.load(tiles_f)
        order = {n: i for i, n in enumerate(t["names"])}
        tz = t["z"][[order[n] for n in va["names"]]]
        print(f"tile model {args.tiles}: AUC {roc_auc_score(va['y'], tz):.3f}")
    print(f"{args.source}: {len(xtr)} train / {len(xva)} validation embeddings")
    print("| head (trained on this source only) | CLIP AUC | + tile logits (mean of z-scores) |")
    print("|---|---|---|")
    for name, h in heads().items():
        h.fit(xtr, tr["y"])
        p = h.predict_proba(xva)[:, 1]
        auc = roc_auc_score(va["y"], p)
        fused = "—"
        if tz is not None:
            lz = np.log(np.clip(p, 1e-6, 1 - 1e-6) / np.clip(1 - p, 1e-6, 1))
            f = (lz - lz.mean()) / lz.std() + (tz - tz.mean()) / tz.std()
            fused = f"{roc_auc_score(va['y'], f):.3f}"
        print(f"| {name} | {auc:.3f} | {fused} |")


def loso(work: Path) -> None:
    """The same heads, each fake source held out (with its own reals when it has them)."""
    from source_transfer import PAIRED_REALS, C, balanced_weights, load_clip

    etr, ytr, str_ = load_clip(work, "train")
    eva, yva, sva = load_clip(work, "validation")
    print("| head, held-out source -> | " + " | ".join(PAIRED_REALS) + " |")
    print("|---|" + "---|" * len(PAIRED_REALS))
    for kind in ("logistic", "MLP"):
        cells = []
        for f, reals in PAIRED_REALS.items():
            keep = (str_ != f) & ~((str_ == reals) & (reals == f))
            if kind == "logistic":
                h = LogisticRegression(C=C, max_iter=3000)
                h.fit(etr[keep], ytr[keep], sample_weight=balanced_weights(str_[keep], ytr[keep]))
                xva = eva
            else:
                scale = StandardScaler().fit(etr[keep])
                h = mlp(1024)
                h.fit(scale.transform(etr[keep]), ytr[keep])
                xva = scale.transform(eva)
            p = h.predict_proba(xva)[:, 1]
            cells.append(pair_auc(p, yva, sva, f, reals))
        print(f"| {kind} | " + " | ".join(cells) + " |")


def all_sources(work: Path) -> None:
    """Heads trained on every source's training split, ROC-AUC per source's validation pair."""
    from source_transfer import PAIRED_REALS, C, balanced_weights, load_clip

    etr, ytr, str_ = load_clip(work, "train")
    eva, yva, sva = load_clip(work, "validation")
    scale = StandardScaler().fit(etr)  # for the MLP; the logistic heads see raw unit-length
    w = balanced_weights(str_, ytr)
    up = np.where(str_ == "aivsreal256", 3.0, 1.0)
    variants = {
        f"logistic C={C}, balanced (as shipped)": (LogisticRegression(C=C, max_iter=3000), w),
        f"logistic C={C}, aivsreal256 weighted 3x": (
            LogisticRegression(C=C, max_iter=3000),
            w * up,
        ),
        "MLP 1024, unweighted": (
            mlp(1024),
            None,
        ),
    }
    fakes = [s for s in PAIRED_REALS]
    print("| head (all sources) | " + " | ".join(fakes) + " |")
    print("|---|" + "---|" * len(fakes))
    for name, (h, sw) in variants.items():
        is_mlp = isinstance(h, MLPClassifier)
        xtr, xva = (scale.transform(etr), scale.transform(eva)) if is_mlp else (etr, eva)
        h.fit(xtr, ytr, **({"sample_weight": sw} if sw is not None else {}))
        p = h.predict_proba(xva)[:, 1]
        cells = [pair_auc(p, yva, sva, f, PAIRED_REALS[f]) for f in fakes]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
