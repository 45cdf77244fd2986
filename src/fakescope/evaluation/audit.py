"""Data audit: duplicates, leakage between splits, and shortcut cues that separate the classes.

A detector learns whatever separates the classes. When real and fake images differ in size, file
format, JPEG quality or colour balance, a model can score well by learning that instead of the
traces of generation, and test images copied from the training set inflate the test score. The
audit measures both, file by file from the raw bytes (`LabelledFiles.iter_bytes`):

- Exact duplicates: SHA-256 of the file bytes, within each (split, class) cell and across cells.
  "Duplicates within a cell" counts the files beyond the first copy.
- Near-duplicates: 64-bit perceptual hashes (`imagehash.phash`) at Hamming distance <=
  `NEAR_DISTANCE` (default 4 of 64 bits), byte-identical pairs left out. Pairs are found by
  multi-index hashing: the 64 bits are cut into d + 1 chunks; two hashes within distance d agree
  exactly on at least one chunk (pigeonhole), so only files sharing a chunk value are compared.
- Shortcut cues per file: file format, pixel mode, image size, EXIF presence, JPEG quality (the
  IJG quality whose tables match the file's quantisation tables best) and chroma subsampling,
  file size and bytes per pixel, per-channel mean and standard deviation and mean HSV
  saturation (colour statistics on the image reduced to at most 128 px). Each cue gets a
  separability score: the ROC-AUC of the cue alone for the label, folded to >= 0.5. Numeric cues
  are ranked as they are; a categorical cue scores each file by the fake share of the *other*
  files with the same value (leave-one-out, so a value seen once says nothing). A cue with
  AUC >= 0.9 gets a warning.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, ImageStat
from tqdm import tqdm

from fakescope.data import ClassNames, LabelledFiles, list_labelled
from fakescope.errors import FakescopeError, ImageError, missing_extra

NEAR_DISTANCE = 4
WARN_AUC = 0.9
STATS_SIDE = 128
CHUNK = 512

NUMERIC = {
    "pixels": "image size (pixels)",
    "aspect_ratio": "aspect ratio",
    "file_size": "file size",
    "bytes_per_pixel": "bytes per pixel",
    "mean_r": "mean red",
    "mean_g": "mean green",
    "mean_b": "mean blue",
    "std_r": "red contrast (std)",
    "std_g": "green contrast (std)",
    "std_b": "blue contrast (std)",
    "saturation": "mean saturation",
}
CATEGORICAL = {
    "format": "file format",
    "mode": "pixel mode",
    "size": "image size",
    "exif": "EXIF presence",
    "jpeg_quality": "JPEG quality",
    "jpeg_subsampling": "JPEG chroma subsampling",
}
WHAT = {
    "pixels": "the size",
    "aspect_ratio": "the shape",
    "size": "the size",
    "format": "the file format",
    "mode": "the pixel mode",
    "exif": "the metadata",
    "jpeg_quality": "the compression",
    "jpeg_subsampling": "the compression",
    "file_size": "the file size",
    "bytes_per_pixel": "the compression",
}


# ---- per-file inspection -----------------------------------------------------------------


@cache
def _ijg_tables() -> dict[int, np.ndarray]:
    """Pillow's (libjpeg's) quantisation tables for qualities 1..100, per table id a (100, 64)
    array, read back from files it encodes: compared in the layout `img.quantization` uses."""
    tables: dict[int, list] = defaultdict(list)
    tile = Image.new("RGB", (16, 16), (128, 64, 32))
    for q in range(1, 101):
        buf = io.BytesIO()
        tile.save(buf, format="JPEG", quality=q)
        with Image.open(buf) as im:
            for k, v in im.quantization.items():
                tables[k].append(list(v))
    return {k: np.asarray(v, np.int64) for k, v in tables.items()}


def jpeg_quality(img: Image.Image) -> int | None:
    """Estimated JPEG quality (1-100): the IJG quality whose tables are closest (sum of absolute
    differences) to the file's; exact for files written by libjpeg-based encoders (Pillow,
    ImageMagick, most cameras' software), a best fit for others. None when not a JPEG."""
    qt = getattr(img, "quantization", None)
    if not qt:
        return None
    ref = _ijg_tables()
    err = np.zeros(100, np.int64)
    for k, table in qt.items():
        if k in ref and len(table) == ref[k].shape[1]:
            err += np.abs(ref[k] - np.asarray(table, np.int64)[None, :]).sum(1)
    return int(np.argmin(err)) + 1


def inspect_bytes(data: bytes, decode: bool = True) -> dict[str, Any]:
    """Everything the audit needs from one file: hash, size, format ... and, when `decode`,
    colour statistics and the perceptual hash. `error` is set for a file that does not decode."""
    rec: dict[str, Any] = {"sha256": hashlib.sha256(data).hexdigest(), "file_size": len(data)}
    if not decode:
        return rec
    from fakescope.images import open_image, to_rgb

    try:
        img = open_image(data)
        rec.update(format=img.format or "?", mode=img.mode, width=img.width, height=img.height)
        rec["exif"] = "yes" if img.getexif() else "no"
        rec["jpeg_quality"] = jpeg_quality(img)
        if img.format == "JPEG":
            from PIL.JpegImagePlugin import get_sampling

            rec["jpeg_subsampling"] = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}.get(
                get_sampling(img), "other"
            )
            img.draft("RGB", (STATS_SIDE, STATS_SIDE))
        if getattr(img, "n_frames", 1) > 1:
            img.seek(0)
        img = to_rgb(ImageOps.exif_transpose(img))
        img.thumbnail((STATS_SIDE, STATS_SIDE), Image.Resampling.BILINEAR)
        stat = ImageStat.Stat(img)  # in C: numpy's strided reductions cost 10x more here
        for c, m, s in zip("rgb", stat.mean, stat.stddev, strict=True):
            rec[f"mean_{c}"], rec[f"std_{c}"] = float(m), float(s)
        rec["saturation"] = float(ImageStat.Stat(img.convert("HSV").getchannel("S")).mean[0])
        rec["phash"] = _phash(img)
    except ImageError as e:
        rec["error"] = str(e)
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as e:
        rec["error"] = f"cannot decode image: {e}"
    return rec


def _phash(img: Image.Image) -> int:
    try:
        import imagehash
    except ImportError:
        raise missing_extra("imagehash", "audit") from None
    bits = imagehash.phash(img).hash.flatten()
    return int(np.packbits(bits).view(">u8")[0])


def _inspect_chunk(items: list[bytes], decode: bool) -> list[dict[str, Any]]:
    return [inspect_bytes(d, decode) for d in items]


def inspect_files(
    files: LabelledFiles, decode: bool = True, workers: int | None = None, progress: bool = False
) -> list[dict[str, Any]]:
    """`inspect_bytes` for every file, in `files.entries` order; decoding runs in worker
    processes with a few chunks in flight (memory bounded); hashing alone runs in this one."""
    recs: list[dict[str, Any] | None] = [None] * len(files)
    bar = tqdm(total=len(files), desc="audit", unit="file", disable=not progress, file=sys.stderr)
    if not decode:
        for i, data in files.iter_bytes():
            recs[i] = inspect_bytes(data, decode=False)
            bar.update(1)
        bar.close()
        return recs  # type: ignore[return-value]
    workers = workers or os.cpu_count() or 1
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending: list[tuple[list[int], Future]] = []

        def drain(limit: int) -> None:
            while len(pending) > limit:
                idx, fut = pending.pop(0)
                for i, rec in zip(idx, fut.result(), strict=True):
                    recs[i] = rec
                bar.update(len(idx))

        idx, items = [], []
        for i, data in files.iter_bytes():
            idx.append(i)
            items.append(data)
            if len(items) == CHUNK:
                pending.append((idx, pool.submit(_inspect_chunk, items, True)))
                idx, items = [], []
                drain(2 * workers)
        if items:
            pending.append((idx, pool.submit(_inspect_chunk, items, True)))
        drain(0)
    bar.close()
    return recs  # type: ignore[return-value]


# ---- duplicates ----------------------------------------------------------------------------


def cell_names(files: LabelledFiles) -> list[str]:
    """'split/class' per file ('fake' alone when the data has no split folders)."""
    out = []
    for e in files.entries:
        cls = "fake" if e.label == 1 else "real"
        out.append(f"{e.split}/{cls}" if e.split else cls)
    return out


def exact_duplicates(hashes: Sequence[str], cells: Sequence[str]) -> dict[str, Any]:
    """Byte-identical files: extra copies within each cell, files of one cell whose bytes occur
    in another, and contents found in both classes."""
    by_hash: dict[str, list[int]] = defaultdict(list)
    for i, h in enumerate(hashes):
        by_hash[h].append(i)
    within: Counter[str] = Counter()
    across: dict[tuple[str, str], set[int]] = defaultdict(set)
    groups = conflicts = 0
    for members in by_hash.values():
        if len(members) < 2:
            continue
        groups += 1
        per_cell = Counter(cells[i] for i in members)
        for cell, n in per_cell.items():
            within[cell] += n - 1
        if len({cells[i].rsplit("/", 1)[-1] for i in members}) > 1:
            conflicts += 1
        for i in members:
            for other in per_cell:
                if other != cells[i]:
                    across[(cells[i], other)].add(i)
    all_cells = sorted(set(cells))
    return {
        "groups": groups,
        "within": {c: int(within.get(c, 0)) for c in all_cells},
        "across": [
            {"files_in": a, "also_in": b, "files": len(idx)}
            for (a, b), idx in sorted(across.items())
        ],
        "both_classes": conflicts,
    }


_POP8 = np.array([bin(i).count("1") for i in range(256)], np.uint8)


def popcount64(x: np.ndarray) -> np.ndarray:
    """Set bits of each uint64 (a byte lookup table: works with numpy < 2, which lacks
    `bitwise_count`)."""
    x = np.ascontiguousarray(x, np.uint64)
    return _POP8[x.view(np.uint8).reshape(-1, 8)].sum(1, dtype=np.int64)


def near_pairs(hashes: np.ndarray, max_distance: int = NEAR_DISTANCE) -> np.ndarray:
    """All index pairs (i < j) whose 64-bit hashes differ in <= `max_distance` bits, as an
    (m, 3) int64 array (i, j, distance). Multi-index hashing (see the module docstring): the
    work is the pairs sharing a chunk value, not n^2."""
    h = np.asarray(hashes, np.uint64)
    n, m = len(h), max_distance + 1
    widths = [64 // m + (1 if k < 64 % m else 0) for k in range(m)]
    found: list[np.ndarray] = []
    shift = 0
    for w in widths:
        key = (h >> np.uint64(shift)) & np.uint64((1 << w) - 1)
        shift += w
        order = np.argsort(key, kind="stable")
        ks = key[order]
        starts = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]])
        sizes = np.diff(np.r_[starts, n])
        for s, size in zip(starts[sizes > 1], sizes[sizes > 1], strict=True):
            members = np.sort(order[s : s + size])
            for lo in range(0, size - 1, 2048):  # rows in blocks: bounded memory for any bucket
                a = members[lo : lo + 2048]
                ii, jj = np.nonzero(a[:, None] < members[None, :])
                if not len(ii):
                    continue
                i, j = a[ii], members[jj]
                d = popcount64(h[i] ^ h[j])
                keep = d <= max_distance
                found.append(np.stack([i[keep], j[keep], d[keep]], 1))
    if not found:
        return np.zeros((0, 3), np.int64)
    pairs = np.concatenate(found).astype(np.int64)
    _, first = np.unique(pairs[:, 0] * n + pairs[:, 1], return_index=True)
    return pairs[np.sort(first)]


def near_duplicates(
    bits: np.ndarray,
    hashes: Sequence[str],
    cells: Sequence[str],
    names: Sequence[str],
    max_distance: int = NEAR_DISTANCE,
    examples: int = 10,
) -> dict[str, Any]:
    """Near-duplicate pairs (perceptual hashes `bits`, uint64, aligned with the other lists)
    that are not byte-identical, counted per pair of cells."""
    pairs = near_pairs(bits, max_distance)
    if len(pairs):
        pairs = pairs[np.array([hashes[i] != hashes[j] for i, j, _ in pairs], bool)]
    per: dict[tuple[str, str], dict[str, Any]] = {}
    for i, j, _ in pairs:
        a, b = sorted((cells[i], cells[j]))
        ia, ib = (i, j) if cells[i] == a else (j, i)
        cur = per.setdefault((a, b), {"pairs": 0, "a": set(), "b": set()})
        cur["pairs"] += 1
        cur["a"].add(int(ia))
        cur["b"].add(int(ib))
    cls = [c.rsplit("/", 1)[-1] for c in cells]
    order = np.argsort(pairs[:, 2], kind="stable")
    by_cells = []
    for (a, b), v in sorted(per.items()):
        union = len(v["a"] | v["b"])
        by_cells.append(
            {
                "cells": [a, b],
                "pairs": v["pairs"],
                "files_a": len(v["a"]) if a != b else union,
                "files_b": len(v["b"]) if a != b else union,
            }
        )
    return {
        "max_distance": max_distance,
        "pairs": int(len(pairs)),
        "files": int(len(np.unique(pairs[:, :2]))) if len(pairs) else 0,
        "both_classes_pairs": int(sum(cls[i] != cls[j] for i, j, _ in pairs)),
        "by_cells": by_cells,
        "examples": [
            {"a": names[pairs[k, 0]], "b": names[pairs[k, 1]], "distance": int(pairs[k, 2])}
            for k in order[:examples]
        ],
    }


# ---- shortcut cues -------------------------------------------------------------------------


def _folded_auc(y: np.ndarray, score: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y)) < 2:
        return None
    auc = float(roc_auc_score(y, score))
    return max(auc, 1.0 - auc)


def categorical_auc(y: np.ndarray, values: Sequence[Any], seed: int = 0) -> float | None:
    """AUC of a categorical cue, cross-fitted: the files are split in two halves (stratified,
    seeded) and each file is scored by the fake share of its value in the *other* half
    (smoothed by one pseudo-file at the overall share), so a value seen once says nothing and
    a file's own label never enters its score; the AUC is taken within each half and averaged.
    In-sample or leave-one-out shares would not do: leave-one-out ranks every real above every
    fake when all files share one value."""
    y = np.asarray(y, int)
    _, inv = np.unique(np.asarray([str(v) for v in values]), return_inverse=True)
    half = np.zeros(len(y), int)
    rng = np.random.default_rng(seed)
    for c in (0, 1):
        idx = rng.permutation(np.flatnonzero(y == c))
        half[idx[1::2]] = 1
    if len(np.unique(y)) < 2:
        return None
    from sklearn.metrics import roc_auc_score

    prior, aucs = y.mean(), []
    for h in (0, 1):
        fit, use = half != h, half == h
        count = np.bincount(inv[fit], minlength=inv.max() + 1).astype(float)
        fakes = np.bincount(inv[fit], weights=y[fit], minlength=inv.max() + 1)
        score = (fakes[inv[use]] + prior) / (count[inv[use]] + 1.0)
        aucs.append(roc_auc_score(y[use], score) if len(np.unique(y[use])) == 2 else 0.5)
    auc = float(np.mean(aucs))  # per half, then averaged: each half's scores share one fit
    return max(auc, 1.0 - auc)


def _summary_numeric(v: np.ndarray) -> str:
    if not len(v):
        return "-"
    p10, med, p90 = np.percentile(v, [10, 50, 90])
    return f"{med:.4g} [{p10:.4g}-{p90:.4g}]"


def _summary_categorical(values: list[str]) -> str:
    if not values:
        return "-"
    top = Counter(values).most_common(3)
    return ", ".join(f"{v} {n / len(values):.0%}" for v, n in top)


def shortcut_cues(recs: list[dict[str, Any]], y: np.ndarray) -> list[dict[str, Any]]:
    """One row per cue: per-class summary, AUC of the cue alone, and a warning when >= 0.9."""
    ok = [i for i, r in enumerate(recs) if "error" not in r and "format" in r]
    if not ok:
        return []
    yy = np.asarray(y)[ok]
    rows = []
    for key, label in {**CATEGORICAL, **NUMERIC}.items():
        if key in CATEGORICAL:
            vals = [_cat_value(recs[i], key) for i in ok]
            auc = categorical_auc(yy, vals)
            summary = {
                c: _summary_categorical([v for v, t in zip(vals, yy, strict=True) if t == k])
                for c, k in (("real", 0), ("fake", 1))
            }
        else:
            vals = np.array([_num_value(recs[i], key) for i in ok], float)
            auc = _folded_auc(yy, vals)
            summary = {c: _summary_numeric(vals[yy == k]) for c, k in (("real", 0), ("fake", 1))}
        row = {"cue": key, "name": label, "real": summary["real"], "fake": summary["fake"]}
        row["auc"] = auc
        if auc is not None and auc >= WARN_AUC:
            what = WHAT.get(key, "the colour statistics")
            row["warning"] = (
                f"{label} alone gives AUC {auc:.2f}: a model can learn {what} instead of the "
                "content"
            )
        rows.append(row)
    return rows


def _cat_value(r: dict[str, Any], key: str) -> str:
    if key == "size":
        return f"{r['width']}x{r['height']}"
    v = r.get(key)
    return "none" if v is None else str(v)


def _num_value(r: dict[str, Any], key: str) -> float:
    if key == "pixels":
        return r["width"] * r["height"]
    if key == "aspect_ratio":
        return r["width"] / r["height"]
    if key == "bytes_per_pixel":
        return r["file_size"] / (r["width"] * r["height"])
    return float(r[key])


# ---- the audit -----------------------------------------------------------------------------


def run_audit(
    paths: Sequence[str | os.PathLike],
    *,
    split: str | None = "all",
    subset: float | None = None,
    seed: int = 0,
    classes: ClassNames = ClassNames(),
    near_distance: int = NEAR_DISTANCE,
    exact_only: bool = False,
    workers: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Audit a labelled collection: duplicates, near-duplicates, shortcut cues."""
    if not 0 <= near_distance <= 32:
        raise FakescopeError(f"--near-distance {near_distance} is not in 0..32")
    if not exact_only:
        try:
            import imagehash  # noqa: F401 - fail before any work, not in a worker
        except ImportError:
            raise missing_extra("imagehash", "audit") from None
    t0 = time.perf_counter()
    files = list_labelled(
        paths, split=split, purpose="eval", subset=subset, seed=seed, classes=classes
    )
    timings = {"list": time.perf_counter() - t0}
    t0 = time.perf_counter()
    recs = inspect_files(files, decode=not exact_only, workers=workers, progress=progress)
    timings["read_and_inspect"] = time.perf_counter() - t0
    cells = cell_names(files)
    names = [files.name(i) for i in range(len(files))]
    hashes = [r["sha256"] for r in recs]
    report: dict[str, Any] = {
        "data": [str(p) for p in paths],
        "split": split,
        "files": dict(sorted(Counter(cells).items())),
        "exact": exact_duplicates(hashes, cells),
    }
    if not exact_only:
        failed = [(names[i], r["error"]) for i, r in enumerate(recs) if "error" in r]
        report["undecodable"] = [{"path": p, "error": e} for p, e in failed]
        idx = [i for i, r in enumerate(recs) if "phash" in r]
        t1 = time.perf_counter()
        report["near"] = near_duplicates(
            np.array([recs[i]["phash"] for i in idx], np.uint64),
            [hashes[i] for i in idx],
            [cells[i] for i in idx],
            [names[i] for i in idx],
            near_distance,
        )
        timings["near_duplicate_search"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        report["cues"] = shortcut_cues(recs, files.labels)
        timings["cues"] = time.perf_counter() - t1
        report["warnings"] = [c["warning"] for c in report["cues"] if "warning" in c]
    report["seconds"] = {k: round(v, 1) for k, v in timings.items()}
    return report


def leaked_indices(
    test: LabelledFiles,
    train_paths: Sequence[str | os.PathLike],
    *,
    split: str | None = None,
    classes: ClassNames = ClassNames(),
) -> list[int]:
    """Indices (into `test.entries`) of test files whose bytes equal a training file's.

    The training data is listed like training does (`split` None: its `train` split when it has
    split folders, else all of it); the very same file (same source and member) is never its
    own match, so a Kaggle zip holding both splits can be given on both sides. Hashing only."""
    train = list_labelled(train_paths, split=split, purpose="train", classes=classes)

    def ident(files: LabelledFiles, i: int) -> tuple[str, str]:
        e = files.entries[i]
        return str(Path(files.sources[e.source].path).resolve()), e.name

    test_ids = {ident(test, i) for i in range(len(test))}
    seen = set()
    for i, data in train.iter_bytes():
        if ident(train, i) not in test_ids:
            seen.add(hashlib.sha256(data).digest())
    return sorted(i for i, data in test.iter_bytes() if hashlib.sha256(data).digest() in seen)


# ---- report ---------------------------------------------------------------------------------


def _auc(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def format_report(rep: dict[str, Any]) -> str:
    """The audit as Markdown (also what the terminal shows)."""
    ex = rep["exact"]
    out = [
        f"# Data audit: {', '.join(rep['data'])} (split {rep['split'] or 'default'})",
        "",
        "Files: " + ", ".join(f"{c} {n}" for c, n in rep["files"].items()) + ".",
        "",
        "## Exact duplicates (SHA-256 of the file bytes)",
        "",
        "| cell | duplicate files (beyond the first copy) |",
        "|---|---|",
        *(f"| {c} | {n} |" for c, n in ex["within"].items()),
        "",
    ]
    if ex["across"]:
        out += [
            f"- {a['files']} {a['files_in']} files are byte-identical to {a['also_in']} files"
            for a in ex["across"]
        ]
    else:
        out.append("- no file's bytes occur in another cell")
    out.append(f"- {ex['both_classes']} contents occur in both classes")
    near = rep.get("near")
    if near is not None:
        out += [
            "",
            f"## Near-duplicates (pHash, Hamming distance <= {near['max_distance']} of 64 bits, "
            "byte-identical pairs left out)",
            "",
            f"{near['pairs']} pairs among {near['files']} files; {near['both_classes_pairs']} "
            "pairs join a real and a fake image.",
            "",
        ]
        if near["by_cells"]:
            out += [
                "| cells | pairs | files in the first | files in the second |",
                "|---|---|---|---|",
            ]
            out += [
                f"| {r['cells'][0]} - {r['cells'][1]} | {r['pairs']} | {r['files_a']} | "
                f"{r['files_b']} |"
                for r in near["by_cells"]
            ]
        if near["examples"]:
            out += ["", "Closest pairs:", ""]
            out += [f"- {e['a']} ~ {e['b']} (distance {e['distance']})" for e in near["examples"]]
    cues = rep.get("cues")
    if cues:
        out += [
            "",
            "## Shortcut cues (AUC of the cue alone for the label, folded to >= 0.5)",
            "",
            "| cue | real | fake | AUC |",
            "|---|---|---|---|",
        ]
        out += [
            f"| {c['name']} | {c['real']} | {c['fake']} | {_auc(c['auc'])}"
            f"{' **!**' if 'warning' in c else ''} |"
            for c in cues
        ]
        out += ["", "Numeric cues: median [10th-90th percentile]; categorical: top values."]
        warnings = rep.get("warnings") or []
        out += ["", "## Warnings", ""]
        out += [f"- {w}" for w in warnings] or ["- no single cue gives AUC >= 0.9"]
    if rep.get("undecodable"):
        out += ["", f"{len(rep['undecodable'])} files could not be decoded:"]
        out += [f"- {u['path']}: {u['error']}" for u in rep["undecodable"][:20]]
    return "\n".join(out) + "\n"
