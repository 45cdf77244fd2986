"""`fakescope explain`: heatmap panels for images, galleries and a numeric report for data sets
(the heatmaps themselves: `fakescope.explain`, the `explain` extra, imported when the command
runs).

The report tests the reference's claim (Grad-CAM on real images covers the main object and more
of the image; on fakes it sits on small, smooth or blurred, mostly background regions) with four
numbers per image, averaged per class:

- central share: fraction of the heat in the central square (half the width and height, a
  quarter of the area; a uniform map gives 0.25) -- "the object" vs "the background";
- area at half max: fraction of pixels with heat >= half the image's maximum -- "more of the
  image" vs "small areas";
- entropy: Shannon entropy of the heat distribution / log(pixels), 1 = uniform;
- detail ratio: mean |Laplacian| of the image in its hottest 10% of pixels / over the whole
  image; < 1 means the model looks at smoother-than-average regions.
"""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from PIL import Image

from fakescope import argtypes
from fakescope.choices import METHOD_NAMES
from fakescope.cli.options import add_common_args, add_data_args, add_seed_arg, classes, subcommand
from fakescope.detector import Detector
from fakescope.errors import FakescopeError, ImageError
from fakescope.fetch import Downloads, is_url
from fakescope.fileio import atomic_path, ensure_writable_dir, write_text
from fakescope.inputs import (
    Expansion,
    Missing,
    at_least_one_image,
    expand_paths,
    nothing_to_score,
)


def add_parser(sub) -> None:
    x = subcommand(
        sub,
        "explain",
        "predict's verdict with a map of the evidence (photos: tile maps; thumbnails: Grad-CAM)",
        "fakescope explain photo.jpg more/ --out why/",
        "fakescope explain --model cifake-resnet10s --data cifake-test.tar.xz --subset 2000 "
        "--out why-set/",
    )
    x.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="images to explain (files, folders, globs, http(s) URLs); or give --data instead",
    )
    add_data_args(x, required=False)
    add_common_args(x)
    x.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="output folder (created): panels and index.html (+ report.md for --data)",
    )
    x.add_argument(
        "--method",
        choices=list(METHOD_NAMES),
        default="gradcam",
        help="Grad-CAM method for thumbnail models (default: gradcam); tiled photo models "
        "show tile maps of fake-evidence instead (see README: Explanations)",
    )
    x.add_argument(
        "--per-class",
        type=argtypes.non_negative_int,
        default=8,
        help="data-set view: images per gallery (default: 8)",
    )
    x.add_argument(
        "--deletion-sample",
        type=argtypes.non_negative_int,
        default=2000,
        help="data-set view: images in the deletion check (random; 0 = all; default: 2000). It "
        "scores each image 4 times, more than the heatmaps cost",
    )
    x.add_argument(
        "--threshold",
        type=argtypes.probability,
        help="as predict's --threshold: the verdict shown is predict's at this threshold",
    )
    x.add_argument(
        "--no-metadata",
        action="store_true",
        help="as predict's: judge pixels only (no provenance evidence)",
    )
    add_seed_arg(x, 0, "--subset and the gallery picks")
    x.set_defaults(func=run)


CATEGORIES = {
    "true_positive": "fake called fake",
    "true_negative": "real called real",
    "false_positive": "real called fake",
    "false_negative": "fake called real",
}


def _save_png(img: Image.Image, path: Path) -> None:
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")


def heat_stats(images: np.ndarray, heat: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image statistics of N heatmaps (see the module docstring)."""
    n, h, w = heat.shape
    mass = heat.reshape(n, -1).astype(np.float64) + 1e-12
    p = mass / mass.sum(1, keepdims=True)
    centre = np.zeros((h, w), bool)
    centre[h // 4 : h - h // 4, w // 4 : w - w // 4] = True
    gray = images.astype(np.float64).mean(-1)
    lap = np.abs(
        4 * gray[:, 1:-1, 1:-1]
        - gray[:, :-2, 1:-1]
        - gray[:, 2:, 1:-1]
        - gray[:, 1:-1, :-2]
        - gray[:, 1:-1, 2:]
    )
    inner = heat[:, 1:-1, 1:-1].reshape(n, -1)
    lap = lap.reshape(n, -1)
    k = max(1, int(0.1 * inner.shape[1]))
    top = np.argpartition(-inner, k - 1, axis=1)[:, :k]
    detail_top = np.take_along_axis(lap, top, 1).mean(1)
    return {
        "central_share": p[:, centre.ravel()].sum(1),
        "area_half_max": (heat.reshape(n, -1) >= 0.5 * heat.reshape(n, -1).max(1)[:, None]).mean(1),
        "entropy": -(p * np.log(p)).sum(1) / np.log(h * w),
        "detail_ratio": detail_top / (lap.mean(1) + 1e-9),
    }


# (claim, statistic): each claim says mean over real - mean over fake > 0.
CLAIMS = (
    ("real images: heat more central (on the object) than for fakes", "central_share"),
    ("real images: heat covers more of the image than for fakes", "area_half_max"),
    ("real images: heat less concentrated (higher entropy) than for fakes", "entropy"),
    ("fakes: heat on smoother regions than for real images", "detail_ratio"),
)


def _verdicts(stats: dict[str, np.ndarray], y: np.ndarray) -> list[tuple[str, str, str]]:
    """(claim, verdict, numbers) per claim. The verdict comes from a 95% confidence interval of
    the difference of class means (normal approximation, fine at hundreds of images per class):
    `holds` when it lies wholly on the claimed side, `does not hold` when wholly on the other,
    `inconclusive` when it contains 0. Cohen's d says how large the difference is."""
    from fakescope.data import FAKE, REAL

    r, f = y == REAL, y == FAKE
    out = []
    for claim, key in CLAIMS:
        a, b = stats[key][r], stats[key][f]
        if len(a) < 2 or len(b) < 2:
            out.append((claim, "inconclusive", f"{key}: too few images per class"))
            continue
        diff = float(a.mean() - b.mean())
        half = 1.96 * float(np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)))
        lo, hi = diff - half, diff + half
        verdict = "holds" if lo > 0 else "does not hold" if hi < 0 else "inconclusive"
        pooled = float(np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)) or 1e-12
        out.append(
            (
                claim,
                verdict,
                f"{key} real {a.mean():.3f} vs fake {b.mean():.3f} (difference "
                f"{diff:+.3f}, 95% CI [{lo:+.3f}, {hi:+.3f}], "
                f"Cohen's d {diff / pooled:+.2f})",
            )
        )
    return out


def _table(stats: dict[str, np.ndarray], groups: dict[str, np.ndarray]) -> str:
    keys = list(stats)
    lines = ["| group | n | " + " | ".join(keys) + " |", "|---" * (len(keys) + 2) + "|"]
    for name, mask in groups.items():
        if mask.any():
            vals = " | ".join(f"{stats[k][mask].mean():.3f}" for k in keys)
            lines.append(f"| {name} | {int(mask.sum())} | {vals} |")
    return "\n".join(lines)


def _index_html(title: str, sections: list[tuple[str, list[tuple[str, str]]]]) -> str:
    parts = [
        "<!doctype html><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:1em}figure{display:inline-block;margin:6px}"
        "img{width:388px}figcaption{font-size:12px;max-width:388px;word-break:break-all}</style>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for heading, items in sections:
        if heading:
            tag = "h2" if items else "p"  # a heading, or a sentence (what the maps show)
            parts.append(f"<{tag}>{html.escape(heading)}</{tag}>")
        for src, caption in items:
            img = f"<img src='{html.escape(src)}' alt=''>" if src else ""
            parts.append(f"<figure>{img}<figcaption>{html.escape(caption)}</figcaption></figure>")
    return "\n".join(parts) + "\n"


def _generic(shows: str) -> str:
    """An explanation's `shows` without its per-image tile count, to say once per model."""
    return re.sub(r" \(\d+ here, at most (\d+)\)", r" (at most \1)", shows)


def explain_paths(
    det: Detector, paths: list[str], out: Path, method: str, threshold: float | None = None
) -> int:
    """One panel per image, plus index.html; returns the number of images that failed.
    Raises FakescopeError when the paths give no image at all."""
    items, failed, found, problems = [], 0, 0, []
    shown: dict[str, str] = {}  # model -> what its heatmaps show
    stats = Expansion()
    with Downloads() as downloads:
        for i, path in enumerate(at_least_one_image(paths, expand_paths(paths, stats), stats)):
            tmp = None
            try:
                if isinstance(path, Missing):
                    raise ImageError(path.reason)
                if is_url(path):
                    tmp = downloads.fetch(path)
                found += 1
                ex = det.explain(tmp or path, method, threshold=threshold)
            except ImageError as e:  # it names the file (a download by its temporary path)
                failed += 1
                msg = f"{path}: {str(e).split(': ', 1)[-1]}" if tmp else str(e)
                if len(problems) < 3:
                    problems.append(msg)
                print(msg, file=sys.stderr)
                items.append(("", msg))
                continue
            except OSError as e:
                failed += 1
                if len(problems) < 3:
                    problems.append(f"{path}: {e}")
                print(f"{path}: {e}", file=sys.stderr)
                items.append(("", f"{path}: {e}"))
                continue
            finally:
                if tmp is not None:
                    downloads.done(tmp)
            stem = Path(urlsplit(path).path if tmp else path).stem[:60]
            name = f"{i:05d}_{stem}.png"
            _save_png(ex.panel(), out / name)
            why = f" [{ex.context}]" if ex.context else ""
            items.append((name, f"{path} — {ex.label} ({ex.prob_fake:.4f}, {ex.model}){why}"))
            print(f"{ex.prob_fake:.4f}  {ex.label:<9}  {path} -> {out / name}{why}")
            shown.setdefault(ex.model, _generic(ex.shows))
    if found == 0:
        raise nothing_to_score(paths, stats, problems)
    for note in stats.notes():
        print(note, file=sys.stderr)
    # say once per model what its heatmaps show (Grad-CAM for thumbnails, tile scores for photos)
    what = [f"{model}: {text}" for model, text in shown.items()]
    for line in what:
        print(f"heatmaps of {line}", file=sys.stderr)
    sections = [(line, []) for line in what] + [("", items)]
    write_text(out / "index.html", _index_html("fakescope explain: verdicts and maps", sections))
    return failed


def explain_dataset(det: Detector, args, out: Path) -> None:
    """Galleries of TP/TN/FP/FN, mean heatmaps per class, and report.md."""
    from fakescope.data import FAKE, REAL, describe, load_images
    from fakescope.explain import cam_batch, deletion_drops, overlay, panel

    if not det.fixed_input_size():
        raise FakescopeError(
            f"the data-set report (--data) is for thumbnail models such as cifake-resnet10s "
            f"(--model); {det.name} reads images at their own scale: explain photos one by one "
            "(fakescope explain PATH ...)"
        )
    ds = load_images(
        args.data,
        size=det.input_size,
        split=args.split,
        purpose="eval",
        subset=args.subset,
        seed=args.seed,
        classes=classes(args),
        cache_dir=args.cache_dir,
        use_cache=not args.no_cache,
        progress=False,
    )
    print(f"explaining: {describe(ds)}", file=sys.stderr)
    prob = det.score_arrays(ds.x)
    pred = (prob >= det.threshold).astype(int)
    heat = cam_batch(det.model, ds.x, pred, det.input_size, args.method)
    stats = heat_stats(ds.x, heat)
    y = ds.y
    cats = {
        "true_positive": (y == 1) & (pred == 1),
        "true_negative": (y == 0) & (pred == 0),
        "false_positive": (y == 0) & (pred == 1),
        "false_negative": (y == 1) & (pred == 0),
    }
    rng = np.random.default_rng(args.seed)
    sections = []
    for cat, mask in cats.items():
        idx = np.flatnonzero(mask)
        pick = np.sort(rng.choice(idx, min(args.per_class, len(idx)), replace=False))
        items = []
        for i in pick:
            name = f"{cat}/{i:06d}.png"
            label = "fake" if pred[i] else "real"
            _save_png(panel(ds.x[i], heat[i], label, float(prob[i])), out / name)
            items.append((name, f"{ds.names[i]} ({prob[i]:.3f})"))
        sections.append((f"{cat.replace('_', ' ')}: {CATEGORIES[cat]} ({len(idx)})", items))
    means = []
    for cls, name in ((REAL, "real"), (FAKE, "fake")):
        mean_heat = heat[y == cls].mean(0)
        mean_img = ds.x[y == cls].mean(0).astype(np.uint8)
        _save_png(
            overlay(mean_img, mean_heat / max(mean_heat.max(), 1e-9)), out / f"mean_{name}.png"
        )
        means.append((f"mean_{name}.png", f"mean heatmap over {int((y == cls).sum())} {name}"))
    sections.insert(0, ("mean heatmap per true class", means))
    write_text(out / "index.html", _index_html(f"fakescope explain: {det.name}", sections))

    verdicts = _verdicts(stats, y)
    groups = {"real (all)": y == REAL, "fake (all)": y == FAKE}
    groups.update({k.replace("_", " "): v for k, v in cats.items()})
    n_del = len(y) if args.deletion_sample <= 0 else min(args.deletion_sample, len(y))
    sample = np.sort(rng.choice(len(y), n_del, replace=False))
    drops = deletion_drops(
        det.score_arrays, ds.x[sample], pred[sample], heat[sample], seed=args.seed
    )
    del_groups = {k: v[sample] for k, v in groups.items()}
    lines = [
        f"# Grad-CAM report: {det.name}",
        "",
        f"Data: {', '.join(map(str, args.data))} ({len(ds)} images, split "
        f"{args.split or 'auto'}, subset {args.subset or 'all'}); method {args.method}; "
        f"accuracy {float((pred == y).mean()):.4f}.",
        "",
        "Statistics per image, averaged (definitions in `fakescope/cli/explain.py`; a uniform map"
        " has central share 0.25, area at half max 1, entropy 1):",
        "",
        _table(stats, groups),
        "",
        "## Does the reference's claim hold for this model?",
        "",
        "Verdicts from the 95% confidence interval of the difference of class means (real "
        "minus fake): `holds` / `does not hold` when it excludes 0, else `inconclusive`. "
        "|Cohen's d| below 0.2 is a negligible difference, 0.5 medium, 0.8 large.",
        "",
    ]
    verdict_lines = [f"- **{v}** — {claim}: {nums}" for claim, v, nums in verdicts]
    lines += verdict_lines
    lines += [
        "",
        "## Are the heatmaps faithful? (deletion check)",
        "",
        "Mean drop of the explained logit (of the predicted class) after setting 10% of each "
        "image's pixels to its mean colour: its hottest pixels (`top`), random blobs at the "
        "CAM's resolution (`random`), its coldest pixels (`cold`); see "
        "`fakescope.explain.deletion_drops`. Faithful maps give top > random > cold. "
        f"On {n_del} of the {len(y)} images, drawn at random (`--deletion-sample`).",
        "",
        _table(drops, del_groups),
    ]
    write_text(out / "report.md", "\n".join(lines) + "\n")
    print("\n".join(verdict_lines))


def run(args) -> int:
    import fakescope.explain  # noqa: F401 - the explain extra is checked before anything else

    if bool(args.paths) == bool(args.data):
        raise FakescopeError("explain takes image paths, or --data for a labelled data set")
    out = ensure_writable_dir(args.out)
    det = Detector.load(args.model, device=args.device, metadata=not args.no_metadata)
    if args.data:
        explain_dataset(det, args, out)
        print(f"written: {out / 'report.md'}, {out / 'index.html'}", file=sys.stderr)
        return 0
    failed = explain_paths(det, args.paths, out, args.method, args.threshold)
    print(f"written: {out / 'index.html'}; {failed} not explained", file=sys.stderr)
    return 0 if failed == 0 else 1
