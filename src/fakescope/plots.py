"""PNG plots for run and evaluation folders (matplotlib, headless Agg backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fakescope.fileio import atomic_path


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)


def training_curve(history: list[dict], path: Path) -> None:
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    ep = [r["epoch"] for r in history]
    a.plot(ep, [r["train_loss"] for r in history], "o-", label="train")
    a.plot(ep, [r["val_loss"] for r in history], "o-", label="validation")
    a.set(xlabel="epoch", ylabel="BCE loss", title="loss")
    b.plot(ep, [r["train_acc"] for r in history], "o-", label="train")
    b.plot(ep, [r["val_acc"] for r in history], "o-", label="validation")
    b.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (a, b):
        ax.legend()
        ax.grid(alpha=0.3)
    _save(fig, path)


def evaluation_plots(y: np.ndarray, prob: np.ndarray, cm: list[list[int]], out: Path) -> None:
    """confusion_matrix.png, roc_curve.png and score_histogram.png in `out`."""
    from sklearn.metrics import roc_curve

    plt = _plt()
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(cm, cmap="Blues")
    for i in range(2):
        for j in range(2):
            ax.text(j, i, str(cm[i][j]), ha="center", va="center", fontsize=14)
    ax.set(
        xticks=[0, 1],
        yticks=[0, 1],
        xticklabels=["real", "fake"],
        yticklabels=["real", "fake"],
        xlabel="predicted",
        ylabel="true",
        title="confusion matrix",
    )
    _save(fig, out / "confusion_matrix.png")

    fig, ax = plt.subplots(figsize=(4, 4))
    if len(np.unique(y)) == 2:
        fpr, tpr, _ = roc_curve(y, prob)
        ax.plot(fpr, tpr)
    ax.plot([0, 1], [0, 1], "--", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (fake = +)")
    _save(fig, out / "roc_curve.png")

    fig, ax = plt.subplots(figsize=(5, 3.5))
    bins = np.linspace(0, 1, 41)
    ax.hist(prob[y == 0], bins=bins, alpha=0.6, label="real")
    ax.hist(prob[y == 1], bins=bins, alpha=0.6, label="fake")
    ax.set(xlabel="prob_fake", ylabel="images", title="scores per class", yscale="log")
    ax.legend()
    _save(fig, out / "score_histogram.png")


ROBUSTNESS_METRICS = (
    ("accuracy", "accuracy"),
    ("roc_auc", "ROC-AUC"),
    ("false_positive_rate", "FPR (real)"),
    ("detection_rate", "detection (fake)"),
    ("flip_rate", "verdict flips"),
)


def robustness_plots(results: list[dict], out: Path, title: str = "") -> list[Path]:
    """robustness_<family>.png: each metric against severity (clean, then mild to severe)."""
    plt = _plt()
    clean = results[0]
    families = list(dict.fromkeys(r["family"] for r in results[1:]))
    written = []
    for fam in families:
        rows = [clean] + [r for r in results[1:] if r["family"] == fam]
        xs = np.arange(len(rows))
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for key, label in ROBUSTNESS_METRICS:
            ys = [np.nan if r.get(key) is None else r[key] for r in rows]
            ax.plot(xs, ys, "o-", label=label)
        ax.set_xticks(xs, ["clean"] + [r["level"] for r in rows[1:]])
        ax.set(ylim=(-0.02, 1.02), xlabel=fam, ylabel="rate", title=f"{title}: {fam}".strip(": "))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
        path = out / f"robustness_{fam}.png"
        _save(fig, path)
        written.append(path)
    return written


def reliability_diagram(
    y: np.ndarray, curves: dict[str, np.ndarray], path: Path, bins: int = 15
) -> None:
    """Fraction of fakes against mean prob_fake per equal-width bin, one line per score set
    (e.g. before / after calibration), with the share of images per bin below."""
    from fakescope.metrics import ece, reliability

    plt = _plt()
    fig, (ax, hx) = plt.subplots(
        2, 1, figsize=(4.5, 5.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect")
    edges = np.linspace(0, 1, bins + 1)
    for name, p in curves.items():
        count, mean_p, frac = reliability(y, p, bins)
        full = count > 0
        ax.plot(mean_p[full], frac[full], "o-", label=f"{name} (ECE {ece(y, p, bins):.3f})")
        hx.stairs(count / count.sum(), edges, label=name, alpha=0.7)
    ax.set(ylabel="fraction fake", title="reliability", xlim=(0, 1), ylim=(0, 1))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    hx.set(xlabel="prob_fake", ylabel="share", yscale="log")
    _save(fig, path)
