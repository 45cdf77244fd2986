"""`fakescope predict`: expand paths lazily, score through `Detector`, write rows as they come."""

from __future__ import annotations

import csv
import glob
import json
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from fakescope.detector import ROW_FIELDS

FIELDS = ROW_FIELDS
FORMATS = ("table", "csv", "json", "jsonl")


class Missing(str):
    """A path argument that matched nothing; scored as an error row, not an image."""


def expand_paths(args: Iterable[str]) -> Iterator[str | Missing]:
    """Files as given; folders walked recursively in sorted order (hidden files skipped);
    glob patterns expanded. Lazy, so a folder of millions of files is never listed at once."""
    for arg in args:
        p = Path(arg)
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for f in sorted(files):
                    if not f.startswith("."):
                        yield os.path.join(root, f)
        elif p.exists() or p.is_symlink():
            yield arg
        elif glob.has_magic(arg):
            matches = sorted(glob.iglob(arg, recursive=True))
            if not matches:
                yield Missing(arg)
            for m in matches:
                yield from expand_paths([m])
        else:
            yield Missing(arg)


class RowWriter:
    """Writes rows in one of FORMATS; table, csv and jsonl stream, json closes a list."""

    def __init__(self, fmt: str, out: IO[str]):
        self.fmt, self.out, self.first = fmt, out, True
        if fmt == "csv":
            self.csv = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
            self.csv.writeheader()
        elif fmt == "json":
            out.write("[")
        elif fmt == "table":
            out.write(f"{'prob_fake':>9}  {'label':<9}  {'model':<20}  path\n")

    def write(self, row: dict[str, Any]) -> None:
        if self.fmt == "csv":
            self.csv.writerow({k: "" if row[k] is None else row[k] for k in FIELDS})
        elif self.fmt == "jsonl":
            self.out.write(json.dumps(row, ensure_ascii=False) + "\n")
        elif self.fmt == "json":
            self.out.write(
                ("\n  " if self.first else ",\n  ") + json.dumps(row, ensure_ascii=False)
            )
        else:
            if row["error"]:
                self.out.write(f"{'-':>9}  {'error':<9}  {'':<20}  {row['path']}: {row['error']}\n")
            else:
                self.out.write(
                    f"{row['prob_fake']:>9.4f}  {row['label']:<9}  {row.get('model', ''):<20}  "
                    f"{row['path']}\n"
                )
        self.first = False
        self.out.flush()

    def close(self) -> None:
        if self.fmt == "json":
            self.out.write("\n]\n" if not self.first else "]\n")


def run_predict(
    det, paths: list[str], fmt: str, out: IO[str], batch_size: int = 256, progress: bool = True
) -> tuple[int, int, int]:
    """Score everything; returns (scored, fake, errors)."""
    from tqdm import tqdm

    writer = RowWriter(fmt, out)
    scored = fake = errors = 0
    items = (p for p in expand_paths(paths))
    missing_rows: list[dict[str, Any]] = []

    def images() -> Iterator[str]:
        for p in items:
            if isinstance(p, Missing):
                missing_rows.append(
                    {k: None for k in FIELDS}
                    | {"path": str(p), "model": "", "error": "no such file"}
                )
            else:
                yield p

    bar = tqdm(desc="scoring", unit="img", file=sys.stderr, disable=not progress, leave=False)
    for row in det.iter_predict(images(), batch_size=batch_size):
        while missing_rows:
            writer.write(missing_rows.pop(0))
            errors += 1
        writer.write(row)
        bar.update(1)
        if row["error"]:
            errors += 1
        else:
            scored += 1
            fake += row["label"] == "fake"
    for row in missing_rows:
        writer.write(row)
        errors += 1
    bar.close()
    writer.close()
    return scored, fake, errors
