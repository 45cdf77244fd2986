"""Shipped models side by side on every shared data set, clean and perturbed.

For each model (default: the CIFAKE model, the photo model and the `auto` router that is the
default) and each data set (stratified samples of CIFAKE test, aivsreal256 validation and
sdv1coco validation), `fakescope.evaluation.robustness.run_robustness` scores every image as its
file and after each perturbation (made in memory, through the same `Detector` path), at the
model's own threshold. Writes `DIR/<model>/<set>/` (robustness.json, report.md, plots),
`DIR/compare.json` and `DIR/compare.md` (one table: accuracy, ROC-AUC, false-positive rate on
reals, detection rate on fakes, verdict flips, uncertain).

`--aggregate` also scores the photo model's clean images with each tile-aggregation rule
(`mean`, `topk`) to choose the shipped one by measurement.

    python benchmarks/model_compare.py --shared ../shared/data --out eval/compare
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time
from pathlib import Path

from fakescope.detector import Detector
from fakescope.evaluation.evaluate import evaluate
from fakescope.evaluation.robustness import run_robustness

SETS = {
    "cifake-test": ("cifake/cifake-test.tar.xz", "test"),
    "aivsreal256-val": ("aivsreal256/aivsreal256-validation.tar", None),
    "sdv1coco-val": ("sdv1coco/sdv1coco-crops256-validation.tar", None),
}
PERTS = "jpeg-q75,jpeg-q50,down-0.5x,blur-1,crop-75"


def _f(v, pct: bool = False) -> str:
    if v is None:
        return "—"
    return f"{100 * v:.1f}%" if pct else f"{v:.3f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shared", type=Path, default=Path("../shared/data"))
    p.add_argument(
        "--models", nargs="+", default=["cifake-resnet10s", "photo-effnet-lite2", "auto"]
    )
    p.add_argument(
        "--subsets",
        nargs="+",
        default=["cifake-test=1000", "aivsreal256-val=400", "sdv1coco-val=200"],
        help="SET=N: a stratified sample of N images of each set",
    )
    p.add_argument("--perturbations", default=PERTS)
    p.add_argument("--backend", default="auto")
    p.add_argument(
        "--reuse",
        nargs="*",
        default=[],
        metavar="MODEL:SET=DIR",
        help="take MODEL on SET from DIR/robustness.json, a run of the same sample (same model "
        "files, subset and seed) made elsewhere, e.g. by scripts/ship_photo_model.py",
    )
    p.add_argument("--aggregate", action="store_true", help="compare mean vs topk tile rules")
    p.add_argument("--out", type=Path, default=Path("eval/compare"))
    args = p.parse_args()

    subsets = dict(s.split("=") for s in args.subsets)
    reuse = dict(r.split("=", 1) for r in args.reuse)
    wanted = {"clean", *args.perturbations.split(",")}
    rows, t0 = [], time.time()
    for model in args.models:
        det = Detector.load(model, device="cpu", backend=args.backend, metadata=False)
        for key, n in subsets.items():
            rel, split = SETS[key]
            t = time.time()
            if f"{model}:{key}" in reuse:
                rep = json.loads((Path(reuse[f"{model}:{key}"]) / "robustness.json").read_text())
                assert rep["subset"] == float(n) and rep["model"] == model, rep["subset"]
                rep["results"] = [r for r in rep["results"] if r["name"] in wanted]
                for r in rep["results"]:
                    rows.append(
                        {"model": model, "data": key, "reused": reuse[f"{model}:{key}"], **r}
                    )
                continue
            rep = run_robustness(
                det,
                [str(args.shared / rel)],
                args.out / model / key,
                split=split,
                subset=float(n),
                perturbations=args.perturbations,
                progress=False,
            )
            for r in rep["results"]:
                rows.append({"model": model, "data": key, "seconds": time.time() - t, **r})
            print(model, key, json.dumps(rep["results"][0]), flush=True)

    agg = []
    if args.aggregate:
        for rule in ("mean", "topk"):
            det = Detector.load("photo-effnet-lite2", device="cpu", backend=args.backend)
            det.metadata = False
            det.tile_rule = dataclasses.replace(det.tile_rule, aggregate=rule)
            for key in ("aivsreal256-val", "sdv1coco-val"):
                rel, split = SETS[key]
                m = evaluate(
                    det,
                    [str(args.shared / rel)],
                    args.out / f"aggregate-{rule}" / key,
                    split=split,
                    subset=float(subsets[key]),
                    progress=False,
                )
                agg.append(
                    {
                        "rule": rule,
                        "data": key,
                        **{k: m.get(k) for k in ("roc_auc", "accuracy", "ece")},
                    }
                )
                print("aggregate", rule, key, m.get("roc_auc"), flush=True)

    meta = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} CPUs",
        "backend": args.backend,
        "subsets": subsets,
        "seconds": round(time.time() - t0),
    }
    (args.out / "compare.json").write_text(
        json.dumps({"meta": meta, "rows": rows, "aggregate": agg}, indent=1)
    )
    lines = [
        "| model | data | condition | accuracy | ROC-AUC | FPR on reals | detection on fakes "
        "| flips | uncertain |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['data']} | {r['name']} | {_f(r.get('accuracy'), True)} | "
            f"{_f(r.get('roc_auc'))} | {_f(r.get('false_positive_rate'), True)} | "
            f"{_f(r.get('detection_rate'), True)} | "
            f"{'' if r['name'] == 'clean' else _f(r.get('flip_rate'), True)} | "
            f"{r.get('uncertain', 0)} |"
        )
    if agg:
        lines += [
            "",
            "| tile aggregation | data | ROC-AUC | accuracy | ECE |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {a['rule']} | {a['data']} | {_f(a['roc_auc'])} | {_f(a['accuracy'], True)} | "
            f"{_f(a['ece'])} |"
            for a in agg
        ]
    (args.out / "compare.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
