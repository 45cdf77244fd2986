"""`fakescope inspect`: per image, every piece of provenance evidence, the pixel score with its
model, and the combined verdict (the rule is in `fakescope.provenance`)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import IO, Any

from fakescope.cli.options import add_common_args, subcommand
from fakescope.inputs import Expansion, at_least_one_image
from fakescope.predict import Missing, expand_paths


def add_parser(sub) -> None:
    i = subcommand(
        sub,
        "inspect",
        "provenance evidence (C2PA, IPTC, generator metadata) + pixel score, per image",
        "fakescope inspect photo.jpg generated.png",
        "fakescope inspect downloads/*.png --format json",
        details="Reads metadata without decoding pixels, scores the pixels with the model, "
        "and shows the verdict the two give together (see README: Provenance evidence).",
    )
    i.add_argument("paths", nargs="+", metavar="PATH", help="image files to inspect")
    add_common_args(i)
    i.add_argument(
        "--format",
        choices=["table", "json"],
        default="table",
        help="a readable report per image, or JSON (default: table)",
    )
    i.set_defaults(func=run)


def inspect_rows(det, paths: list[str], batch_size: int = 64) -> Iterator[dict[str, Any]]:
    """Combined rows (predict's fields + model, provenance, verdict_source) with the evidence
    as a list of item dicts under `evidence` and the deciding tag under `decided_by`."""
    from fakescope.provenance import Evidence, read_evidence

    missing: set[str] = set()
    stats = Expansion()

    def images() -> Iterator[str]:
        for p in at_least_one_image(paths, expand_paths(paths, stats), stats):
            if isinstance(p, Missing):
                missing.add(str(p))
            yield p  # through the Detector too, so that rows keep the order of the arguments

    # the verdict is the Detector's (loaded with metadata on): the same as predict's; the
    # evidence is read again here only to list its items
    for row in det.iter_predict(images(), batch_size=batch_size):
        if row["path"] in missing:
            row = {**row, "error": "no such file"}
        ev = Evidence() if row["error"] else read_evidence(row["path"])
        d = ev.to_dict()
        yield {**row, "decided_by": d["decided_by"], "evidence": d["items"]}


def format_report(r: dict[str, Any]) -> str:
    """The readable block for one image."""
    lines = [r["path"]]
    if r["error"]:  # nothing was read: say why first, and nothing about evidence
        lines.append(f"  error     {r['error']}")
        lines.append("  verdict   none")
        return "\n".join(lines)
    if r["evidence"]:
        w = max(len(i["source"]) for i in r["evidence"])
        for n, i in enumerate(r["evidence"]):
            head = "  evidence  " if n == 0 else " " * 12
            lines.append(
                f"{head}{i['source']:<{w}}  {i['claim']:<12}  {i['strength']:<9}  {i['detail']}"
            )
    else:
        lines.append("  evidence  none (no C2PA, IPTC/XMP, generator text or EXIF found)")
    lines.append(f"  pixels    prob_fake {r['prob_fake']:.4f} (model {r['model']})")
    why = (
        f"metadata: {r['decided_by']}"
        if r["verdict_source"] == "metadata"
        else "pixels (no metadata declares AI generation)"
    )
    note = f" ({r['note']})" if r.get("note") else ""
    lines.append(f"  verdict   {r['label']}{note}, decided by {why}")
    return "\n".join(lines)


def write_reports(rows: Iterator[dict[str, Any]], fmt: str, out: IO[str]) -> tuple[int, int]:
    """Stream the reports as text blocks or one JSON list; returns (images, errors)."""
    n = errors = 0
    for r in rows:  # the first row may raise (nothing to inspect): nothing is written before
        if fmt == "json":
            out.write(("[\n  " if n == 0 else ",\n  ") + json.dumps(r, ensure_ascii=False))
        else:
            out.write(("\n" if n else "") + format_report(r) + "\n")
        out.flush()
        n += 1
        errors += bool(r["error"])
    if fmt == "json":
        out.write("\n]\n" if n else "[]\n")
    return n, errors


def run(args) -> int:
    from fakescope.detector import Detector

    det = Detector.load(args.model, device=args.device)
    n, errors = write_reports(inspect_rows(det, args.paths), args.format, sys.stdout)
    print(f"{n} inspected, {errors} not scored", file=sys.stderr)
    return 0 if errors == 0 else 1
