"""Checks of a shipped photo model on the reals a detector most often gets wrong (issue 33).

Through the `Detector` (ONNX Runtime, the shipped threshold, band and scope rules), on the
validation splits of `../shared/data`:

1. `faces`: the real studio faces were saved at JPEG quality 100, the SD 2.1 faces at 75 (a
   codec shortcut). Re-encode the validation reals at 75 (and the fakes at 100) and report how
   far their scores move and how many verdicts change.
2. `art`: artworks and illustrations are not photos. The hard reals' validation artworks (web
   copies and crops), illustrations made here from validation photos by non-photorealistic
   filters (OpenCV's stylization, colour pencil sketch, and a cartoon filter: posterised
   colour under dark edges), and, out of fold, every artwork of the hard reals (probes refitted
   without the artwork's image, 5 folds by image, with the shipped rule's threshold rule).
   Reports how many are marked out of scope, called real, called fake.

    python benchmarks/hard_reals.py --shared ../shared/data --work WORK [--model photo-fusion]

Writes WORK/hard_reals.json.
"""

from __future__ import annotations

import argparse
import io
import json
import re
from pathlib import Path

import numpy as np
from PIL import Image
from sources import SOURCES, is_art, load_split

from fakescope.detector import Detector
from fakescope.fileio import write_json
from fakescope.model_dir import read_config, resolve_model_dir


def rows_of(det: Detector, images: list[np.ndarray]) -> list[dict]:
    return det.predict_batch(list(images))


def tally(rows: list[dict]) -> dict:
    labels = [r["label"] for r in rows]
    return {
        "n": len(rows),
        "called_fake": labels.count("fake"),
        "called_real": labels.count("real"),
        "uncertain": labels.count("uncertain"),
        "out_of_scope": sum(r["note"].startswith("out of scope") for r in rows),
    }


def reencoded(x, quality: int) -> list[np.ndarray]:
    out = []
    for a in x:
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="JPEG", quality=quality)
        out.append(np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")))
    return out


def faces_check(det: Detector, shared: Path) -> dict:
    """Scores of the validation faces as they are and re-encoded at the other class's quality."""
    out = {}
    for name, quality in (("faces-real", 75), ("faces-sd21", 100)):
        ds = load_split(shared, name, "validation")
        before = rows_of(det, list(ds.x))
        after = rows_of(det, reencoded(ds.x, quality))
        p0 = np.array([r["prob_fake"] for r in before])
        p1 = np.array([r["prob_fake"] for r in after])
        out[name] = {
            "reencoded_at": quality,
            "n": len(ds),
            "median_prob_before": float(np.median(p0)),
            "median_prob_after": float(np.median(p1)),
            "mean_shift": float(np.mean(p1 - p0)),
            "median_abs_shift": float(np.median(np.abs(p1 - p0))),
            "called_fake_before": sum(r["label"] == "fake" for r in before),
            "called_fake_after": sum(r["label"] == "fake" for r in after),
            "verdicts_changed": sum(
                a["label"] != b["label"] for a, b in zip(before, after, strict=True)
            ),
        }
        print(name, json.dumps(out[name]), flush=True)
    return out


def illustrations(x: list[np.ndarray]) -> list[np.ndarray]:
    """Three non-photorealistic renderings of each photo (OpenCV): a painterly stylization, a
    colour pencil drawing, and a cartoon (colours posterised to 8 levels under dark edges)."""
    import cv2

    out = []
    for a in x:
        bgr = np.ascontiguousarray(a[:, :, ::-1])
        out.append(cv2.stylization(bgr, sigma_s=60, sigma_r=0.45)[:, :, ::-1])
        out.append(
            cv2.pencilSketch(bgr, sigma_s=60, sigma_r=0.07, shade_factor=0.05)[1][:, :, ::-1]
        )
        smooth = cv2.bilateralFilter(bgr, 9, 75, 75)
        grey = cv2.medianBlur(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), 7)
        edges = cv2.adaptiveThreshold(
            grey, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, 9, 2
        )
        poster = (smooth // 32) * 32 + 16
        out.append(cv2.bitwise_and(poster, poster, mask=edges)[:, :, ::-1])
    return [np.ascontiguousarray(o) for o in out]


def group_of(name: str) -> str:
    """An artwork's image: its web copy and its crops (`-c0`...) share one."""
    return re.sub(r"-c\d+$", "", Path(name.split("::")[-1]).stem)


def art_out_of_fold(work: Path, photo_rate: float, c: float) -> dict:
    """Every hard-real artwork (train and validation) scored by an art probe that never saw
    its image: 5 folds by image, each probe fitted as shipped (`scripts/ship_photo_fusion.py`
    `fit_art_rule`: artworks against the real photos of the training part, its threshold
    marking `photo_rate` of the photos out of fold)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_predict

    emb, art, groups = [], [], []
    for name in SOURCES:
        for split in ("train", "validation"):
            z = np.load(work / "clip" / f"{name}_{split}.npz")
            names = z["names"].tolist()
            a = np.array([is_art(n) for n in names])
            real = z["y"] == 0
            keep = (real & ~a & (split == "train")) | a
            emb.append(z["emb"][keep])
            art += a[keep].tolist()
            groups += [
                group_of(n) if a[i] else f"{name}-{split}-{i}"
                for i, n in enumerate(names)
                if keep[i]
            ]
    x, t = np.concatenate(emb), np.array(art, int)
    probe = LogisticRegression(C=c, class_weight="balanced", max_iter=3000)
    folds = GroupKFold(n_splits=5)
    oof = cross_val_predict(
        probe, x, t, groups=np.array(groups), cv=folds, method="decision_function"
    )
    thr = float(np.quantile(oof[t == 0], 1 - photo_rate))
    n_img = len({g for g, a in zip(groups, art, strict=True) if a})
    return {
        "artworks": n_img,
        "art_images": int(t.sum()),
        "marked": float((oof[t == 1] >= thr).mean()),
        "photos_marked": float((oof[t == 0] >= thr).mean()),
        "n_photos": int((t == 0).sum()),
    }


def art_check(det: Detector, model: str, shared: Path, work: Path) -> dict:
    out = {}
    arts = []
    for name in ("hardreals", "hardreals-web"):
        ds = load_split(shared, name, "validation")
        arts += [a for a, n in zip(ds.x, ds.names, strict=True) if is_art(n)]
    out["validation_artworks"] = tally(rows_of(det, arts))
    photos = []
    for name, k in (("cameras", 8), ("sdv1coco", 8), ("hardreals-web", 8)):
        ds = load_split(shared, name, "validation")
        photos += [
            a for a, n, y in zip(ds.x, ds.names, ds.y, strict=True) if y == 0 and not is_art(n)
        ][:k]
    out["made_illustrations"] = tally(rows_of(det, illustrations(photos)))
    spec = read_config(resolve_model_dir(model)[0]).get("fusion", {}).get("art") or {}
    out["out_of_fold"] = art_out_of_fold(work, spec.get("photo_rate", 0.01), spec.get("C", 10.0))
    for k, v in out.items():
        print(k, json.dumps(v), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=Path("../shared/data"))
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--model", default="photo-fusion")
    args = ap.parse_args()
    det = Detector.load(args.model, backend="onnx", metadata=False)
    res = {
        "model": args.model,
        "faces": faces_check(det, args.shared),
        "art": art_check(det, args.model, args.shared, args.work),
    }
    write_json(args.work / "hard_reals.json", res)


if __name__ == "__main__":
    main()
