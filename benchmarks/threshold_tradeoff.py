"""Recall against the worst real source's false-positive rate, for the shipped photo fusion.

One threshold must keep the 5% promise on every real source; this shows what each choice
costs in fakes caught. Scores are the fusion's logit from cached parts (the same derivation
`scripts/ship_photo_fusion.py` checks against the Detector to 1e-4): the shipped tile model's
raw logits on every validation split (`source_transfer.py tiles --model photo-effnet-lite2`)
and the CLIP embeddings (`clip_features.py`), combined with the shipped head and combiner.
Every validation image has at least four tiles' area, so the small-image shift is zero.
Artworks are left out (the scope rule answers for them). Hard verdicts at each threshold (no
`uncertain` band, no scope rule), so "caught" here is an upper bound of the shipped rows'.

    python benchmarks/threshold_tradeoff.py --work WORK [--model photo-fusion]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy.special import expit
from sources import FAKE_SOURCES, SOURCES

from fakescope.fusion import HEAD_FILE, Combiner, Head
from fakescope.model_dir import read_config, resolve_model_dir


def fusion_probs(work: Path, model: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(prob_fake, labels) per source, artworks left out."""
    path, _ = resolve_model_dir(model)
    cfg = read_config(path)
    head = Head.load(path / HEAD_FILE)
    comb = Combiner.from_config(cfg["fusion"]["combiner"])
    tiles = cfg["fusion"]["tiles"]
    out = {}
    for name in SOURCES:
        t = np.load(work / "tiles" / tiles / f"{name}_validation.npz")
        c = np.load(work / "clip" / f"{name}_validation.npz")
        emb = dict(zip(c["names"].tolist(), c["emb"], strict=True))
        e = np.stack([emb[n] for n in t["names"].tolist()])
        z = comb(t["z"], head(e), np.full(len(e), 1e9))
        out[name] = (expit(z), t["y"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--model", default="photo-fusion")
    args = ap.parse_args()
    parts = fusion_probs(args.work, args.model)
    from sklearn.metrics import roc_auc_score

    p, y = parts["aivsreal256"]  # the card's ROC-AUC, as a check of the derivation
    print(f"aivsreal256 ROC-AUC from the cached parts: {roc_auc_score(y, p):.4f}")
    shipped = float(read_config(resolve_model_dir(args.model)[0])["threshold"])
    reals = [n for n, (_, y) in parts.items() if (y == 0).any()]
    fakes = [n for n in FAKE_SOURCES if (parts[n][1] == 1).any()]
    head = ["threshold", "worst real source: called fake", *[f"{n} caught" for n in fakes]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    rows = []
    for thr in sorted({*np.round(np.arange(0.30, 0.96, 0.05), 2).tolist(), round(shipped, 3)}):
        fpr = {n: float((parts[n][0][parts[n][1] == 0] >= thr).mean()) for n in reals}
        worst = max(fpr, key=fpr.get)
        caught = {n: float((parts[n][0][parts[n][1] == 1] >= thr).mean()) for n in fakes}
        rows.append({"threshold": thr, "fpr": fpr, "caught": caught})
        mark = " (shipped)" if thr == round(shipped, 3) else ""
        cells = [f"{thr:.3f}{mark}", f"{100 * fpr[worst]:.1f}% ({worst})"]
        cells += [f"{100 * caught[n]:.1f}%" for n in fakes]
        lines.append("| " + " | ".join(cells) + " |")
    print("\n".join(lines))
    (args.work / "tradeoff.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
