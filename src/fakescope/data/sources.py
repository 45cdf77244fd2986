"""Where labelled images come from: folders, zip / tar archives, Parquet files.

Every source lists `Entry`s (a name, a label, a split) cheaply and then streams the bytes of the
entries asked for, so memory holds one chunk of compressed files at a time, never the whole set.
Labels come from class *names* (folder names or Parquet label names), never from their order:
sorting `FAKE`, `REAL` alphabetically would make FAKE = 0.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from fakescope.errors import FakescopeError, missing_extra

REAL, FAKE = 0, 1
LABEL_NAMES = ("real", "fake")
DEFAULT_REAL_NAMES = ("real",)
DEFAULT_FAKE_NAMES = ("fake", "ai", "ai_generated", "generated")
NON_IMAGE_SUFFIXES = {
    ".txt",
    ".md",
    ".json",
    ".csv",
    ".tsv",
    ".html",
    ".htm",
    ".xml",
    ".yaml",
    ".yml",
    ".py",
    ".ini",
    ".db",
    ".log",
    ".pdf",
    ".sha256",
    ".parquet",
}


@dataclass(frozen=True)
class ClassNames:
    """Which folder / label names mean REAL and which mean FAKE (compared case-insensitively)."""

    real: tuple[str, ...] = DEFAULT_REAL_NAMES
    fake: tuple[str, ...] = DEFAULT_FAKE_NAMES

    def label(self, name: str) -> int | None:
        name = name.lower()
        if name in (n.lower() for n in self.real):
            return REAL
        if name in (n.lower() for n in self.fake):
            return FAKE
        return None


@dataclass(frozen=True)
class Entry:
    """One labelled image inside a source; `name` is the member path or Parquet row id."""

    source: int
    name: str
    label: int
    split: str | None


@dataclass
class Listing:
    entries: list[Entry] = field(default_factory=list)
    non_image: int = 0  # hidden or non-image files skipped (.gitkeep, README.txt ...)
    unlabelled: int = 0  # files outside any class folder


def _is_non_image(name: str) -> bool:
    p = PurePosixPath(name)
    return p.name.startswith(".") or p.suffix.lower() in NON_IMAGE_SUFFIXES


def _label_from_path(name: str, classes: ClassNames) -> tuple[int | None, str | None]:
    """Label = nearest parent folder that is a class name; split = the folder above it."""
    parts = PurePosixPath(name).parts[:-1]
    for i in range(len(parts) - 1, -1, -1):
        label = classes.label(parts[i])
        if label is not None:
            return label, (parts[i - 1].lower() if i > 0 else None)
    return None, None


class Source:
    """Base: a path-based source lists member names; subclasses read bytes."""

    def __init__(self, path: Path, index: int):
        self.path, self.index = path, index

    def fingerprint(self) -> str:
        """Content hash of an archive file (folders override with a stat listing)."""
        h = hashlib.sha256()
        with open(self.path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        return h.hexdigest()

    def names(self) -> Iterator[str]:
        raise NotImplementedError

    def read(self, wanted: set[str]) -> Iterator[tuple[str, bytes]]:
        raise NotImplementedError

    def list(self, classes: ClassNames) -> Listing:
        out = Listing()
        for name in self.names():
            if _is_non_image(name):
                out.non_image += 1
                continue
            label, split = _label_from_path(name, classes)
            if label is None:
                out.unlabelled += 1
                continue
            out.entries.append(Entry(self.index, name, label, split))
        return out


class FolderSource(Source):
    def fingerprint(self) -> str:
        """Folders are keyed by (path, size, mtime) of every file: hashing 100k files is the
        very cost the cache exists to avoid."""
        h = hashlib.sha256()
        for name in sorted(self.names()):
            st = (self.path / name).stat()
            h.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return h.hexdigest()

    def names(self) -> Iterator[str]:
        for root, dirs, files in os.walk(self.path):
            dirs.sort()
            rel = Path(root).relative_to(self.path)
            for f in sorted(files):
                yield (rel / f).as_posix()

    def read(self, wanted: set[str]) -> Iterator[tuple[str, bytes]]:
        for name in sorted(wanted):
            yield name, (self.path / name).read_bytes()


class ZipSource(Source):
    def names(self) -> Iterator[str]:
        with zipfile.ZipFile(self.path) as zf:
            yield from (i.filename for i in zf.infolist() if not i.is_dir())

    def read(self, wanted: set[str]) -> Iterator[tuple[str, bytes]]:
        with zipfile.ZipFile(self.path) as zf:
            for name in sorted(wanted):
                yield name, zf.read(name)


class TarSource(Source):
    """Compressed tars can only be read front to back: listing and reading are one pass each."""

    def names(self) -> Iterator[str]:
        with tarfile.open(self.path) as tf:
            for m in tf:
                if m.isfile():
                    yield m.name

    def read(self, wanted: set[str]) -> Iterator[tuple[str, bytes]]:
        with tarfile.open(self.path) as tf:
            for m in tf:
                if m.isfile() and m.name in wanted:
                    f = tf.extractfile(m)
                    yield m.name, f.read() if f else b""


class ParquetSource(Source):
    """Hugging Face mirror format: `image` = {bytes, path} struct, `label` = index or name.

    Integer labels are mapped through the ClassLabel names in the file's `huggingface` schema
    metadata; without those names the file is refused (we never map by position).
    """

    def __init__(self, path: Path, index: int, image_col: str = "image", label_col: str = "label"):
        super().__init__(path, index)
        self.image_col, self.label_col = image_col, label_col
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise missing_extra("pyarrow", "parquet") from None
        self._pq = pq

    def _label_names(self, pf) -> list[str] | None:
        meta = pf.schema_arrow.metadata or {}
        raw = meta.get(b"huggingface")
        if not raw:
            return None
        feats = json.loads(raw).get("info", {}).get("features", {})
        return feats.get(self.label_col, {}).get("names")

    def list(self, classes: ClassNames) -> Listing:
        pf = self._pq.ParquetFile(self.path)
        cols = pf.schema_arrow.names
        for c in (self.image_col, self.label_col):
            if c not in cols:
                raise FakescopeError(f"{self.path}: no column '{c}' (columns: {', '.join(cols)})")
        names = self._label_names(pf)
        out, row = Listing(), 0
        for batch in pf.iter_batches(columns=[self.label_col], batch_size=4096):
            for value in batch.column(0).to_pylist():
                if isinstance(value, str):
                    name = value
                elif names is not None and value is not None and 0 <= value < len(names):
                    name = names[value]
                else:
                    raise FakescopeError(
                        f"{self.path}: label {value!r} has no class name (the file carries no "
                        "ClassLabel names); labels are mapped by name, never by position"
                    )
                label = classes.label(name)
                if label is None:
                    out.unlabelled += 1
                else:
                    out.entries.append(Entry(self.index, f"#{row}", label, None))
                row += 1
        return out

    def read(self, wanted: set[str]) -> Iterator[tuple[str, bytes]]:
        pf, row = self._pq.ParquetFile(self.path), 0
        for batch in pf.iter_batches(columns=[self.image_col], batch_size=1024):
            for value in batch.column(0).to_pylist():
                name = f"#{row}"
                if name in wanted:
                    data = value.get("bytes") if isinstance(value, dict) else value
                    yield name, data or b""
                row += 1


def open_source(path: str | os.PathLike, index: int = 0) -> Source:
    """Pick the reader by what `path` is: folder, .zip, .tar[.gz|.bz2|.xz], .parquet."""
    p = Path(path)
    if not p.exists():
        raise FakescopeError(f"data source not found: {p}")
    if p.is_dir():
        return FolderSource(p, index)
    name = p.name.lower()
    if name.endswith(".parquet"):
        return ParquetSource(p, index)
    if zipfile.is_zipfile(p):
        return ZipSource(p, index)
    try:
        if tarfile.is_tarfile(p):
            return TarSource(p, index)
    except OSError:
        pass
    raise FakescopeError(f"{p}: not a folder, zip, tar or parquet file")


def open_sources(paths: Iterable[str | os.PathLike]) -> list[Source]:
    """One source per distinct path (first-seen order): a source given twice would put each
    of its images into the set twice, and into both sides of a split."""
    unique: dict[str, str | os.PathLike] = {}
    for p in paths:
        unique.setdefault(os.path.realpath(p), p)
    sources = [open_source(p, i) for i, p in enumerate(unique.values())]
    if not sources:
        raise FakescopeError("no data source given (--data PATH ...)")
    return sources
