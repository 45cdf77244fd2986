"""Which view of `photo-fusion` calls half-size real photos fake? Measured per source and view.

The shipped fusion calls more validation reals fake at 0.5x than unresized (BENCHMARKS.md,
"Resampling and size"). This scores the same reals the ship script uses (150 aivsreal256,
60 sdv1coco, 40 cameras; 256-px crops) clean and resampled (the `fakescope robustness`
perturbations, same seeds) and splits the fusion logit into its two terms, w_tiles * tile logit
and w_clip * CLIP-head logit, so the shift of each is visible, per source, at the shipped
thresholds. A `crop-128` row scores one native 128-px tile of each unresized photo.

The fusion logit includes the shipped small-image shift (`fakescope.fusion`: full at one
tile's area, less up to four). `--small-combiner` compares it with a rejected alternative: a
second combiner for images of one tile, fitted on the tile model's held-out photos (both
classes) resized to 0.5x; it reports the validation reals called fake and the validation fakes
caught at 0.5x under each. `--between` scores validation reals and fakes resized (bicubic) to
the scales between one tile and four, through the shipped fusion's own rows.

    python benchmarks/resampled_views.py --shared ../shared/data [--small-combiner | --between]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sources import load_split  # noqa: E402

from fakescope import clip  # noqa: E402
from fakescope.calibration import apply_calibration, sigmoid  # noqa: E402
from fakescope.detector import Detector  # noqa: E402
from fakescope.evaluation.perturb import PERTURBATIONS  # noqa: E402
from fakescope.fusion import HEAD_FILE, Head  # noqa: E402
from fakescope.model_dir import WEIGHTS_DIR  # noqa: E402

PICK = (("aivsreal256", 150), ("sdv1coco", 60), ("cameras", 40))
# "crop-128": the top-left 128-px crop of the unresized photo, one tile at native scale
# (not resampled): does one tile alone score reals higher, resampling or not?
LEVELS = ("clean", "resampled-0.5x", "resampled-2x", "crop-128")


def validation_reals(shared: Path) -> tuple[list[Image.Image], list[str]]:
    """The ship script's 250 validation reals (`measure_inputs`), with their sources."""
    imgs, src = [], []
    for name, k in PICK:
        ds = load_split(shared, name, "validation")
        imgs += [Image.fromarray(a) for a in ds.x[ds.y == 0][:k]]
        src += [name] * min(k, int((ds.y == 0).sum()))
    return imgs, src


def views(
    tiles: Detector, enc: clip.Encoder, head: Head, imgs: list[Image.Image]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(raw tile logits, CLIP-head logits, evidence in tiles) of `imgs`."""
    x = [np.asarray(i) for i in imgs]
    zt = np.array([v for v, _ in tiles.iter_logits(x)], np.float64)
    zc = head(enc.embed(np.stack([clip.view(i) for i in imgs])))
    return zt, zc, np.array([tiles.tile_input(a)[1] for a in x])


def level_images(imgs: list[Image.Image], level: str) -> list[Image.Image]:
    if level == "clean":
        return imgs
    if level == "crop-128":
        return [img.crop((0, 0, 128, 128)) for img in imgs]
    return [PERTURBATIONS[level](img, 0, i) for i, img in enumerate(imgs)]


def small_combiner(args, fusion: Detector, enc: clip.Encoder, half_reals, src) -> None:
    """A logistic combiner on [tile logit, CLIP logit] of the held-out photos at 0.5x, against
    the shipped one, on the validation reals and fakes at 0.5x."""
    from sklearn.linear_model import LogisticRegression

    from fakescope.model_dir import CONFIG
    from fakescope.training.config import TrainConfig
    from fakescope.training.loop import source_weights
    from fakescope.training.runs import DataArgs, load_train_data

    tiles, head, comb = (fusion.fusion[k] for k in ("tiles", "head", "combiner"))
    tcfg = json.loads((Path(args.fusion).parent / tiles.name / CONFIG).read_text())
    data = DataArgs(**tcfg["training_data"])
    held = load_train_data(TrainConfig(**tcfg["training"]), data, progress=False)[3]
    hs = np.array(data.source_of(held.names))
    zt, zc, _ = views(
        tiles, enc, head, level_images([Image.fromarray(a) for a in held.x], "resampled-0.5x")
    )
    w = source_weights(hs, held.y, 0.5).numpy() * len(hs)
    lr = LogisticRegression(C=1.0).fit(np.c_[zt, zc], held.y, sample_weight=w)
    fakes, fsrc = [], []
    for name in ("aivsreal256", "sdv1coco", "sd35", "sdxl", "ganfaces"):
        ds = load_split(args.shared, name, "validation")
        fakes += [Image.fromarray(a) for a in ds.x[ds.y == 1]]
        fsrc += [name] * int(ds.y.sum())
    ft, fc, fe = views(tiles, enc, head, level_images(fakes, "resampled-0.5x"))
    fsrc = np.array(fsrc)
    rt, rc, re_ = half_reals
    rows = {
        "shipped combiner (small-image shift)": (comb(rt, rc, re_), comb(ft, fc, fe)),
        "held-out 0.5x combiner": (
            lr.decision_function(np.c_[rt, rc]),
            lr.decision_function(np.c_[ft, fc]),
        ),
    }
    print(
        "small combiner:",
        {"w_tiles": lr.coef_[0][0], "w_clip": lr.coef_[0][1], "bias": lr.intercept_[0]},
    )
    for k, (zr, zf) in rows.items():
        caught = {
            s: f"{(sigmoid(zf[fsrc == s]) >= fusion.threshold).mean():.1%}" for s in np.unique(fsrc)
        }
        print(
            f"{k}: 0.5x reals called fake {(sigmoid(zr) >= fusion.threshold).mean():.1%}, "
            f"0.5x fakes caught {caught}"
        )


FAKES = (("aivsreal256", 150), ("sdv1coco", 60), ("sd35", 19), ("sdxl", 19), ("ganfaces", 40))


def between(fusion: Detector, imgs: list[Image.Image], shared: Path) -> None:
    """Reals at or above the threshold and labelled fake, and fakes labelled fake (the rows'
    labels), at scales around the one-tile edge: 0.45-0.5x of a 256-px photo is one 128-px
    tile, 0.55x and up 2x2 overlapping tiles."""
    fakes = []
    for name, k in FAKES:
        ds = load_split(shared, name, "validation")
        fakes += [Image.fromarray(a) for a in ds.x[ds.y == 1][:k]]
    print(
        f"| scale | side of a 256-px photo | tiles (evidence) | reals at or above the threshold | "
        f"reals labelled fake | reals uncertain | fakes labelled fake ({len(fakes)}) |"
    )
    print("|---|---|---|---|---|---|---|")
    tiles = fusion.fusion["tiles"]
    for f in (1.0, 0.75, 0.6, 0.55, 0.5, 0.45):

        def at(group, f=f):
            return [
                i.resize((round(i.width * f), round(i.height * f)), Image.Resampling.BICUBIC)
                for i in group
            ]

        x = at(imgs)
        rows, frows = fusion.predict_batch(x), fusion.predict_batch(at(fakes))
        lab = [r["label"] for r in rows]
        cut, e = tiles.tile_input(np.asarray(x[0]))
        print(
            f"| {f}x | {x[0].width} px | {len(cut)} ({e:.2f}) | "
            f"{np.mean([r['prob_fake'] >= fusion.threshold for r in rows]):.1%} | "
            f"{lab.count('fake') / len(lab):.1%} | {lab.count('uncertain') / len(lab):.1%} | "
            f"{np.mean([r['label'] == 'fake' for r in frows]):.1%} |",
            flush=True,
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shared", type=Path, default=Path("../shared/data"))
    p.add_argument("--fusion", default=str(WEIGHTS_DIR / "photo-fusion"))
    p.add_argument("--small-combiner", action="store_true", help="the not-shipped alternative")
    p.add_argument(
        "--between", action="store_true", help="0.45x-0.75x through the fusion's own rows"
    )
    p.add_argument("--json", type=Path, help="also write the per-image logits here (.npz)")
    args = p.parse_args()

    fusion = Detector.load(args.fusion, device="cpu", backend="onnx", metadata=False)
    assert fusion.fusion is not None, "the CLIP encoder is needed: fakescope setup clip"
    tiles = fusion.fusion["tiles"]
    head = Head.load(Path(args.fusion) / HEAD_FILE)
    comb = fusion.fusion["combiner"]
    enc = clip.Encoder()
    imgs, src = validation_reals(args.shared)
    src = np.array(src)
    if args.between:
        return between(fusion, imgs, args.shared)
    out = {}
    for level in LEVELS:
        out[level] = views(tiles, enc, head, level_images(imgs, level))
    print(
        "| source | n | level | tiles: called fake | fusion: called fake | "
        "mean w·tile logit | mean w·CLIP logit | fusion logit, 90th pct |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in [n for n, _ in PICK] + ["all"]:
        m = np.ones(len(src), bool) if name == "all" else src == name
        for level in LEVELS:
            zt, zc, e = out[level]
            pt = apply_calibration(zt[m], tiles.calibration)
            zf = comb(zt[m], zc[m], e[m])
            print(
                f"| {name} | {int(m.sum())} | {level} | {(pt >= tiles.threshold).mean():.1%} | "
                f"{(sigmoid(zf) >= fusion.threshold).mean():.1%} | "
                f"{comb.w_tiles * zt[m].mean():+.2f} | {comb.w_clip * zc[m].mean():+.2f} | "
                f"{np.quantile(zf, 0.9):+.2f} |"
            )
    zt0, zc0, e0 = out["clean"]
    zt5, zc5, e5 = out["resampled-0.5x"]
    thr_logit = float(np.log(fusion.threshold / (1 - fusion.threshold)))
    newly = (comb(zt5, zc5, e5) >= thr_logit) & (comb(zt0, zc0, e0) < thr_logit)
    d = {
        "newly_fake_at_0.5x": int(newly.sum()),
        "their_sources": {s: int((src[newly] == s).sum()) for s in np.unique(src)},
        "their_mean_shift_tiles": float(comb.w_tiles * (zt5 - zt0)[newly].mean()),
        "their_mean_shift_clip": float(comb.w_clip * (zc5 - zc0)[newly].mean()),
        "corr_shift_tiles_clip": float(np.corrcoef(zt5 - zt0, zc5 - zc0)[0, 1]),
    }
    print(json.dumps(d))
    if args.small_combiner:
        small_combiner(args, fusion, enc, out["resampled-0.5x"], src)
    if args.json:
        np.savez(
            args.json,
            src=src,
            **{
                f"{k}_{v}": out[k][i]
                for k in LEVELS
                for i, v in enumerate(("tiles", "clip", "evidence"))
            },
        )


if __name__ == "__main__":
    main()
