"""`fakescope predict`: expand paths lazily, score through `Detector`, write rows as they come.

Rows come out in the order the images were named, error rows (a missing file, a failed download)
included. A run that finds no image at all is an error, not an empty success.
"""

from __future__ import annotations

import csv
import json
import sys
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from fakescope.detector import ROW_FIELDS, error_row
from fakescope.errors import ImageError
from fakescope.fetch import Downloads, is_url
from fakescope.inputs import Expansion, Missing, expand_paths, nothing_to_score

__all__ = [
    "FIELDS",
    "FORMATS",
    "Expansion",
    "Missing",
    "RowWriter",
    "Tally",
    "expand_paths",
    "format_for",
    "run_predict",
]

FIELDS = ROW_FIELDS
FORMATS = ("table", "csv", "json", "jsonl")
SUFFIX_FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def format_for(fmt: str | None, output: str | None) -> str:
    """The output format: `--format` when given; else from `--output`'s extension (`.csv`,
    `.json`, `.jsonl` / `.ndjson`), as `scan` names its format; else the table."""
    if fmt:
        return fmt
    return SUFFIX_FORMATS.get(Path(output).suffix.lower(), "table") if output else "table"


@dataclass
class Tally:
    """What a predict run scored: the summary line's numbers."""

    scored: int = 0
    errors: int = 0
    labels: Counter = field(default_factory=Counter)  # label -> rows
    models: Counter = field(default_factory=Counter)  # model name -> rows scored

    def line(self) -> str:
        parts = [f"{self.labels['fake']} fake"]
        if self.labels["uncertain"]:
            parts.append(f"{self.labels['uncertain']} uncertain")
        parts.append(f"{self.labels['real']} real")
        return f"{self.scored} scored ({', '.join(parts)}), {self.errors} not scored"


def why(row: dict[str, Any]) -> str:
    """The table's tail of a row: its provenance (and whether it decided) and its note (why
    it is `uncertain`), in brackets; '' when there is neither."""
    parts = []
    if prov := row.get("provenance") or "":
        by = "verdict from metadata: " if row.get("verdict_source") == "metadata" else ""
        parts.append(f"[{by}{prov}]")
    if note := row.get("note") or "":
        parts.append(f"[{note}]")
    return "".join(f"  {p}" for p in parts)


class RowWriter:
    """Writes rows in one of FORMATS; table, csv and jsonl stream, json closes a list."""

    def __init__(self, fmt: str, out: IO[str]):
        self.fmt, self.out, self.first, self.started = fmt, out, True, False

    def _start(self) -> None:
        """The header, written with the first row: a run that ends in an error prints none."""
        self.started = True
        if self.fmt == "csv":
            self.csv = csv.DictWriter(self.out, fieldnames=FIELDS, lineterminator="\n")
            self.csv.writeheader()
        elif self.fmt == "json":
            self.out.write("[")
        elif self.fmt == "table":
            self.out.write(f"{'prob_fake':>9}  {'label':<9}  {'model':<20}  path\n")

    def write(self, row: dict[str, Any]) -> None:
        if not self.started:
            self._start()
        if self.fmt == "csv":
            self.csv.writerow({k: "" if row.get(k) is None else row[k] for k in FIELDS})
        elif self.fmt == "jsonl":
            self.out.write(json.dumps(row, ensure_ascii=False) + "\n")
        elif self.fmt == "json":
            self.out.write(
                ("\n  " if self.first else ",\n  ") + json.dumps(row, ensure_ascii=False)
            )
        else:
            if row["error"]:
                err = f"{row['path']}: {row['error']}"
                self.out.write(f"{'-':>9}  {'error':<9}  {'':<20}  {err}\n")
            else:
                self.out.write(
                    f"{row['prob_fake']:>9.4f}  {row['label']:<9}  {row.get('model', ''):<20}  "
                    f"{row['path']}{why(row)}\n"
                )
        self.first = False
        self.out.flush()

    def close(self) -> None:
        if not self.started:
            self._start()
        if self.fmt == "json":
            self.out.write("\n]\n" if not self.first else "]\n")


def run_predict(
    det,
    paths: list[str],
    fmt: str,
    out: IO[str],
    batch_size: int = 256,
    progress: bool = True,
    stats: Expansion | None = None,
    threshold: float | None = None,
) -> Tally:
    """Score everything; returns the tally. `stats` collects what the walk skipped; `threshold`
    (when given) replaces each model's own threshold in the Detector's verdict (the scope and
    metadata rules still hold). Raises FakescopeError (before
    writing anything) when no image was found at all."""
    from tqdm import tqdm

    stats = stats if stats is not None else Expansion()
    writer = RowWriter(fmt, out)
    # One entry per named thing, in order: a ready error row, or a slot for the Detector's next
    # row (with the URL to show and the downloaded file to delete, for a URL). Bounded: the
    # Detector consumes at most a batch ahead of the rows it yields.
    queue: deque[tuple[dict[str, Any] | None, str | None, Path | None]] = deque()
    problems: list[str] = []
    found = 0
    tally = Tally()

    def failed(path: str, error: str) -> None:
        queue.append((error_row(path, error), None, None))
        if len(problems) < 3:
            problems.append(f"{path}: {error}")

    def emit(row: dict[str, Any]) -> None:
        writer.write(row)
        if row["error"]:
            tally.errors += 1
        else:
            tally.scored += 1
            tally.labels[row["label"]] += 1
            tally.models[row.get("model", "")] += 1

    with Downloads() as downloads:

        def images():
            nonlocal found
            for item in expand_paths(paths, stats):
                if isinstance(item, Missing):
                    failed(str(item), item.reason)
                elif is_url(item):
                    try:
                        tmp = downloads.fetch(item)
                    except ImageError as e:
                        failed(item, str(e))
                        continue
                    found += 1
                    queue.append((None, item, tmp))
                    yield str(tmp)
                else:
                    found += 1
                    queue.append((None, None, None))
                    yield item

        bar = tqdm(desc="scoring", unit="img", file=sys.stderr, disable=not progress, leave=False)
        for row in det.iter_predict(images(), batch_size=batch_size, threshold=threshold):
            while queue[0][0] is not None:
                emit(queue.popleft()[0])
            _, name, tmp = queue.popleft()
            if tmp is not None:
                row = {**row, "path": name}
                downloads.done(tmp)
            emit(row)
            bar.update(1)
        bar.close()
    if found == 0:
        raise nothing_to_score(paths, stats, problems)
    while queue:
        emit(queue.popleft()[0])
    writer.close()
    return tally
