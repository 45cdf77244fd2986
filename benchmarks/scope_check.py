"""How often the out-of-scope test (`fakescope.scope`) fires: on made-up graphics (it should)
and on the real and generated photos of every shared source and split (it should not).

    python benchmarks/scope_check.py --shared ../shared/data [--per-kind 8 --first-seed 100]
        [--model photo-fusion]

Prints a Markdown table; also scores the real screenshot docs/serve-page.png. With `--model`,
the graphics also go through that model's rows (as `fakescope predict` labels them).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sources import SOURCES, load_split  # noqa: E402

from fakescope.scope import (  # noqa: E402
    FLAT,
    FLAT_ALONE,
    LIKE_FLAT,
    LIKE_PALETTE,
    PALETTE,
    SHARP,
    measure,
)
from tests.graphics import KINDS, make_graphics  # noqa: E402


def through(model: str, graphics) -> None:
    """The graphics' labels through `model`, per kind (the table's other rows follow)."""
    from fakescope.detector import Detector

    det = Detector.load(model, device="cpu", metadata=False)
    rows = det.predict_batch([g for _, g in graphics])
    print(f"\nthrough {model}:\n")
    print("| kind | n | out of scope | fake withheld | uncertain (band) | fake | real |")
    print("|---|---|---|---|---|---|---|")
    for kind in [*KINDS, "all"]:
        rs = [r for (k, _), r in zip(graphics, rows, strict=True) if kind in (k, "all")]
        out = sum(r["note"].startswith("out of scope") for r in rs)
        held = sum(r["note"].startswith("not called fake") for r in rs)
        band = sum(r["label"] == "uncertain" and not r["note"] for r in rs)
        fake = sum(r["label"] == "fake" for r in rs)
        real = sum(r["label"] == "real" for r in rs)
        print(f"| {kind} | {len(rs)} | {out} | {held} | {band} | {fake} | {real} |")
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=Path("../shared/data"))
    ap.add_argument("--per-kind", type=int, default=8)
    ap.add_argument(
        "--first-seed", type=int, default=100, help="graphics seeds (the rule was designed on 0-7)"
    )
    ap.add_argument("--splits", nargs="*", default=["validation", "train"])
    ap.add_argument("--model", help="also label the graphics through this model")
    args = ap.parse_args()
    print(
        f"rule: palette >= {PALETTE} and (flat >= {FLAT_ALONE} or (flat >= {FLAT} and "
        f"sharp >= {SHARP})); graphic-like (never called fake): palette >= {LIKE_PALETTE} "
        f"and flat >= {LIKE_FLAT}\n"
    )
    print(
        "| images | n | marked out of scope | graphic-like, in scope (no `fake` verdict) | "
        "either | flat (median) | palette (median) |"
    )
    print("|---|---|---|---|---|---|---|")

    def row(label: str, scopes) -> None:
        flags = [s.out_of_scope for s in scopes]
        like = [s.graphic_like and not s.out_of_scope for s in scopes]
        either = [a or b for a, b in zip(flags, like, strict=True)]
        print(
            f"| {label} | {len(flags)} | {sum(flags)} ({np.mean(flags):.1%}) | "
            f"{sum(like)} ({np.mean(like):.1%}) | {sum(either)} ({np.mean(either):.1%}) | "
            f"{np.median([s.flat for s in scopes]):.3f} | "
            f"{np.median([s.palette for s in scopes]):.3f} |"
        )

    graphics = make_graphics(args.per_kind, args.first_seed)
    for kind in KINDS:
        row(f"made-up graphics: {kind}", [measure(img) for k, img in graphics if k == kind])
    row("made-up graphics: all", [measure(img) for _, img in graphics])
    if args.model:
        through(args.model, graphics)
    shot = ROOT / "docs" / "serve-page.png"
    if shot.exists():
        row("real screenshot (docs/serve-page.png)", [measure(Image.open(shot).convert("RGB"))])
    for split in args.splits:
        for name in SOURCES:
            ds = load_split(args.shared, name, split)
            for label, cls in ((0, "real"), (1, "fake")):
                x = ds.x[ds.y == label]
                if len(x):
                    row(f"{name} {split} {cls}", [measure(a) for a in x])


if __name__ == "__main__":
    main()
