"""Decode a labelled collection once into a uint8 array, in parallel, and cache it.

Decoding 120k JPEGs is the slow part of a run; the result (N×S×S×3 uint8, 368 MB for all of
CIFAKE) is cached under a key made from the sources' content and every option that changes the
array, so a second run starts in seconds and a changed source is never served stale.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import zipfile
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from fakescope.data.sources import (
    FAKE,
    REAL,
    ClassNames,
    Entry,
    FolderSource,
    Listing,
    Source,
    open_sources,
)
from fakescope.data.splits import stratified_subset
from fakescope.errors import FakescopeError, ImageError
from fakescope.fileio import atomic_path
from fakescope.images import native_crop, to_model_input

CACHE_VERSION = 1  # bump when decoding or the pre-processing rule changes
CHUNK = 2048
EVAL_SPLITS = ("test", "validation", "val", "valid")


@dataclass
class ImageSet:
    """Decoded images (N×S×S×3 uint8), labels (REAL = 0, FAKE = 1) and where each came from."""

    x: np.ndarray
    y: np.ndarray
    names: list[str]
    report: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.y)

    def take(self, idx: np.ndarray) -> ImageSet:
        return ImageSet(self.x[idx], self.y[idx], [self.names[i] for i in idx], self.report)

    def counts(self) -> dict[str, int]:
        return {"real": int((self.y == REAL).sum()), "fake": int((self.y == FAKE).sum())}


def default_cache_dir() -> Path:
    env = os.environ.get("FAKESCOPE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "fakescope"


def _select_split(entries: list[Entry], split: str | None, purpose: str) -> list[Entry]:
    """`split`: a split folder name, 'all', or None = auto (train -> 'train'; eval -> 'test',
    else 'validation'/'val'); a source without split folders is used whole."""
    available = sorted({e.split for e in entries if e.split is not None})
    if split == "all" or not available:
        return entries
    if split is None:
        wanted = ("train",) if purpose == "train" else EVAL_SPLITS
        split = next((s for s in wanted if s in available), None)
        if split is None:
            raise FakescopeError(
                f"the data has splits {', '.join(available)}; choose one with --split "
                "(or --split all)"
            )
    chosen = [e for e in entries if e.split == split.lower()]
    if not chosen:
        raise FakescopeError(f"no split '{split}' in the data (splits: {', '.join(available)})")
    return chosen


DECODE_RULES = ("resize", "crop")


def _decode_chunk(
    items: list[bytes], size: int, rule: str = "resize"
) -> tuple[np.ndarray, list[str | None]]:
    out = np.zeros((len(items), size, size, 3), np.uint8)
    errors: list[str | None] = []
    decode = native_crop if rule == "crop" else to_model_input
    for i, data in enumerate(items):
        try:
            out[i] = decode(data, size)
            errors.append(None)
        except ImageError as e:
            errors.append(str(e))
    return out, errors


def _display_name(src: Source, name: str) -> str:
    return str(src.path / name) if isinstance(src, FolderSource) else f"{src.path}::{name}"


def _cache_key(sources: list[Source], **params) -> str:
    h = hashlib.sha256(json.dumps({"v": CACHE_VERSION, **params}, sort_keys=True).encode())
    for s in sources:
        h.update(type(s).__name__.encode() + s.fingerprint().encode())
    return h.hexdigest()[:32]


def _decode(
    sources: list[Source],
    entries: list[Entry],
    size: int,
    workers: int,
    progress: bool,
    rule: str = "resize",
) -> tuple[np.ndarray, list[tuple[str, str]], np.ndarray]:
    """Stream bytes source by source, decode in worker processes, keep only finished arrays."""
    x = np.zeros((len(entries), size, size, 3), np.uint8)
    ok = np.zeros(len(entries), bool)
    failed: list[tuple[str, str]] = []
    position = {(e.source, e.name): i for i, e in enumerate(entries)}
    bar = tqdm(
        total=len(entries),
        desc="decoding",
        unit="img",
        disable=not progress,
        file=sys.stderr,
        leave=False,
    )
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending: list[tuple[list[int], Future]] = []

        def drain(limit: int) -> None:
            while len(pending) > limit:
                idx, fut = pending.pop(0)
                arr, errs = fut.result()
                for j, (i, err) in enumerate(zip(idx, errs, strict=True)):
                    if err is None:
                        x[i], ok[i] = arr[j], True
                    else:
                        e = entries[i]
                        failed.append((_display_name(sources[e.source], e.name), err))
                bar.update(len(idx))

        for src in sources:
            wanted = {e.name for e in entries if e.source == src.index}
            idx, items = [], []
            for name, data in src.read(wanted):
                idx.append(position[(src.index, name)])
                items.append(data)
                if len(items) == CHUNK:
                    pending.append((idx, pool.submit(_decode_chunk, items, size, rule)))
                    idx, items = [], []
                    drain(2 * workers)  # bounded: at most a few chunks of bytes in flight
            if items:
                pending.append((idx, pool.submit(_decode_chunk, items, size, rule)))
        drain(0)
    bar.close()
    return x, failed, ok


@dataclass
class LabelledFiles:
    """A labelled collection listed but not decoded: stream its raw bytes with `.iter_bytes()`.

    For everything that must see each file as it is (any size, any format): evaluation through
    `Detector`, robustness perturbations, the data audit. Training uses `load_images` instead.
    """

    sources: list[Source]
    entries: list[Entry]
    labels: np.ndarray
    report: dict

    def __len__(self) -> int:
        return len(self.entries)

    def name(self, i: int) -> str:
        e = self.entries[i]
        return _display_name(self.sources[e.source], e.name)

    def iter_bytes(self) -> Iterator[tuple[int, bytes]]:
        """(index into `entries`, file bytes), source by source, one file in memory at a time."""
        position = {(e.source, e.name): i for i, e in enumerate(self.entries)}
        for src in self.sources:
            wanted = {e.name for e in self.entries if e.source == src.index}
            if wanted:
                for name, data in src.read(wanted):
                    yield position[(src.index, name)], data


def list_labelled(
    paths: Sequence[str | os.PathLike],
    *,
    split: str | None = None,
    purpose: str = "eval",
    subset: float | None = None,
    seed: int = 0,
    classes: ClassNames = ClassNames(),
    one_class: bool = False,
) -> LabelledFiles:
    """List a labelled collection (same sources, split and subset rules as `load_images`);
    `one_class`: a collection of one class only (e.g. a generator's fakes) is allowed."""
    sources = open_sources(paths)
    listing = Listing()
    for src in sources:
        part = src.list(classes)
        listing.entries += part.entries
        listing.non_image += part.non_image
        listing.unlabelled += part.unlabelled
    entries = _select_split(listing.entries, split, purpose)
    labels = np.array([e.label for e in entries], np.int64)
    for label, name, names in ((REAL, "REAL", classes.real), (FAKE, "FAKE", classes.fake)):
        if not (labels == label).any() and not (one_class and len(labels)):
            raise FakescopeError(
                f"no {name} images in {', '.join(map(str, paths))} "
                f"(looked for folders or labels named {', '.join(names)}; "
                "set them with --real-name / --fake-name)"
            )
    if subset is not None:
        keep = stratified_subset(labels, subset, seed)
        entries, labels = [entries[i] for i in keep], labels[keep]
    report = {"non_image": listing.non_image, "unlabelled": listing.unlabelled, "failed": []}
    return LabelledFiles(sources, entries, labels, report)


def load_images(
    paths: Sequence[str | os.PathLike],
    *,
    size: int = 32,
    rule: str = "resize",
    split: str | None = None,
    purpose: str = "train",
    subset: float | None = None,
    seed: int = 0,
    classes: ClassNames = ClassNames(),
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    workers: int | None = None,
    progress: bool = True,
    one_class: bool = False,
) -> ImageSet:
    """Load a labelled image collection from folders / archives / Parquet into an `ImageSet`.

    `subset` is a count (> 1) or fraction (≤ 1) of a stratified, seeded sample, taken before
    decoding so a small run decodes only what it uses. `rule`: `resize` (`to_model_input`: centre
    square, Lanczos to `size`) or `crop` (`native_crop`: the centre `size`×`size` at the image's
    own pixel scale, for native-resolution models).
    """
    if rule not in DECODE_RULES:
        raise FakescopeError(f"unknown decode rule {rule!r} ({', '.join(DECODE_RULES)})")
    workers = workers or os.cpu_count() or 1
    params = dict(
        size=size,
        **({"rule": rule} if rule != "resize" else {}),
        split=split,
        purpose=purpose,
        subset=subset,
        seed=seed,
        real=classes.real,
        fake=classes.fake,
    )
    cache_file = None
    if use_cache:
        cache_file = (
            Path(cache_dir or default_cache_dir())
            / f"{_cache_key(open_sources(paths), **params)}.npz"
        )
        try:
            with np.load(cache_file, allow_pickle=False) as z:
                report = json.loads(str(z["report"]))
                return ImageSet(z["x"], z["y"], list(z["names"]), report)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            pass  # no cache yet, or an unreadable one: decode (and try to write it)

    listed = list_labelled(
        paths,
        split=split,
        purpose=purpose,
        subset=subset,
        seed=seed,
        classes=classes,
        one_class=one_class,
    )
    entries, labels = listed.entries, listed.labels
    x, failed, ok = _decode(listed.sources, entries, size, workers, progress, rule)
    report = {**listed.report, "failed": failed}
    names = [_display_name(listed.sources[e.source], e.name) for e in entries]
    result = ImageSet(x[ok], labels[ok], [n for n, k in zip(names, ok, strict=True) if k], report)
    for label, name in ((REAL, "REAL"), (FAKE, "FAKE")):
        listed_any = (labels == label).any()
        if listed_any and not (result.y == label).any():  # every file of a class failed
            first = ", ".join(f"{n}: {e}" for n, e in failed[:2])
            raise FakescopeError(
                f"none of the {int((labels == label).sum())} {name} files could be decoded "
                f"(e.g. {first})"
            )
    if cache_file is not None:
        try:
            with atomic_path(cache_file) as tmp, open(tmp, "wb") as f:
                np.savez(
                    f,
                    x=result.x,
                    y=result.y,
                    names=np.array(result.names, dtype=str),
                    report=np.array(json.dumps(report)),
                )
        except FakescopeError as e:
            _warn_cache_once(cache_file.parent, e)
    return result


_cache_warned: set[str] = set()


def _warn_cache_once(folder: Path, e: Exception) -> None:
    """A cache is a speed-up, never a reason to fail: say once per folder, then carry on."""
    if str(folder) not in _cache_warned:
        _cache_warned.add(str(folder))
        print(
            f"warning: not caching decoded images ({e}); carrying on without the cache "
            "(set --cache-dir or FAKESCOPE_CACHE to a writable folder, or pass --no-cache)",
            file=sys.stderr,
        )


def describe(ds: ImageSet) -> str:
    """One-paragraph summary of what was loaded and what was skipped, for stderr."""
    c, r = ds.counts(), ds.report
    lines = [f"{len(ds)} images ({c['real']} real, {c['fake']} fake)"]
    if r.get("non_image"):
        lines.append(f"skipped {r['non_image']} non-image files")
    if r.get("unlabelled"):
        lines.append(f"skipped {r['unlabelled']} files outside a class folder")
    failed = r.get("failed", [])
    if failed:
        lines.append(f"{len(failed)} images could not be decoded and were excluded:")
        lines += [f"  {name}: {err}" for name, err in failed[:20]]
        if len(failed) > 20:
            lines.append(f"  ... and {len(failed) - 20} more")
    return "\n".join(lines)
