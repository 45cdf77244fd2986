"""Write each shipped model's `results.json` and regenerate the results tables in the documents.

The numbers live once, in the shipped model folders; every table a document shows between
`<!-- results:NAME -->` and `<!-- /results -->` is rendered from them by
`fakescope.results`. Run after a model is (re-)shipped:

    python scripts/results_tables.py                 # regenerate the tables in the documents
    python scripts/results_tables.py --write-json    # also results.json beside each config.json
    python scripts/results_tables.py --check         # exit 1 when a table is stale (CI, tests)

Documents: README.md, BENCHMARKS.md, docs/**/*.md, examples/README.md and the shipped model
cards (`src/fakescope/weights/*/MODEL_CARD.md`); a document without markers is left alone.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fakescope.fileio import write_text
from fakescope.model_dir import WEIGHTS_DIR, available_models
from fakescope.results import fill_blocks, shipped_results, write_results

ROOT = Path(__file__).resolve().parents[1]


def documents(root: Path = ROOT) -> list[Path]:
    """Every document that may hold generated blocks."""
    found = [root / "README.md", root / "BENCHMARKS.md", root / "examples" / "README.md"]
    found += sorted((root / "docs").rglob("*.md"))
    found += sorted(WEIGHTS_DIR.glob("*/MODEL_CARD.md"))
    return [p for p in found if p.is_file()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--write-json",
        nargs="*",
        metavar="MODEL",
        help="write results.json for these shipped models (none named: every one)",
    )
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 if stale")
    args = ap.parse_args(argv)
    if args.write_json is not None and not args.check:
        for name in args.write_json or available_models():
            print(f"wrote {write_results(name)}")
    results = shipped_results()
    stale = []
    for doc in documents():
        text = doc.read_text(encoding="utf-8")
        new = fill_blocks(text, results)
        if new != text:
            stale.append(doc)
            if not args.check:
                write_text(doc, new)
    verb = "stale" if args.check else "regenerated"
    for doc in stale:
        print(f"{verb}: {doc.relative_to(ROOT) if doc.is_relative_to(ROOT) else doc}")
    if not stale:
        print("every results table is up to date")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
