"""Compare recipes for the native-resolution photo detector on the same data and budget.

Each recipe trains with the package's own `fit` (the crop recipe of `fakescope.training.loop`) for
the same number of epochs on the same training images, and is scored through `Detector` (tiles at
native scale, mean logit; the network exported to ONNX and run by ONNX Runtime, as the shipped
models run on the CPU) on stratified samples of the aivsreal256 and sdv1coco validation splits.
A frozen-feature baseline (ImageNet EfficientNet-Lite2 features of each tile, mean-pooled,
logistic regression) runs beside them. Prints one JSON line per recipe and writes a Markdown
table.

    python benchmarks/photo_compare.py --shared ../shared/data --epochs 2 \
        --recipes pretrained scratch rgbnpr frozen --out photo_compare.md
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from fakescope.data import load_images
from fakescope.data.splits import split_two
from fakescope.detector import Detector
from fakescope.export import export_onnx
from fakescope.model_dir import model_config, save_model
from fakescope.models import build_model, load_backbone_file, pretrained_backbone_file
from fakescope.training.config import resolve_config
from fakescope.training.loop import fit

RECIPES: dict[str, dict] = {
    "pretrained": {},  # the photo preset as it is: ImageNet EfficientNet-Lite2, RGB, tile 96
    "scratch": {"pretrained": None},
    "rgbnpr": {"arch": "effnet_lite2_rgbnpr"},
    "npr": {"arch": "effnet_lite2_npr"},
    "tile64": {"crop": 64},
    "tile128": {"crop": 128},
    "lite0": {"arch": "effnet_lite0"},
    "frozen": {},  # frozen features + logistic regression (no fine-tuning)
}
TRAIN_SETS = {
    "a": [
        "aivsreal256/aivsreal256-train-real-1.tar",
        "aivsreal256/aivsreal256-train-real-2.tar",
        "aivsreal256/aivsreal256-train-fake-1.tar",
        "aivsreal256/aivsreal256-train-fake-2.tar",
    ],
    "s": ["sdv1coco/sdv1coco-crops256-train.tar"],
}


def val_sets(shared: Path, n_a: int, n_s: int | None) -> dict:
    return {
        "aivsreal256": load_images(
            [shared / "aivsreal256/aivsreal256-validation.tar"],
            size=256,
            rule="crop",
            split="validation",
            purpose="eval",
            subset=n_a,
            progress=False,
        ),
        "sdv1coco": load_images(
            [shared / "sdv1coco/sdv1coco-crops256-validation.tar"],
            size=256,
            rule="crop",
            split="validation",
            purpose="eval",
            subset=n_s,
            progress=False,
        ),
    }


def scores(det: Detector, x: np.ndarray) -> np.ndarray:
    rows = det.iter_predict(iter(x), batch_size=64)
    return np.array([r["prob_fake"] for r in rows])


def onnx_detector(model, cfg, folder: Path) -> Detector:
    """The trained network as the shipped models run on the CPU: saved, exported to ONNX and
    scored by ONNX Runtime through `Detector` (the same scores as PyTorch within 1e-4, several
    times faster on this CPU for EfficientNet-Lite)."""
    state = {k: v.clone() for k, v in model.state_dict().items()}  # no shared tensors
    save_model(folder, type("S", (), {"state_dict": lambda self: state})(), model_config(cfg))
    export_onnx(str(folder), exporter="torchscript")
    return Detector.load(str(folder), device="cpu", backend="onnx", metadata=False)


def frozen_probe(train, vals, crop: int, folder: Path) -> dict:
    """Tile features of the frozen pretrained backbone (stride-1 stem), mean over tiles, then
    logistic regression. The feature network runs on ONNX Runtime (exported once)."""
    import onnxruntime as ort

    from fakescope.tiles import TileRule, cut

    model = build_model("effnet_lite2")
    model.net.load_backbone(load_backbone_file(pretrained_backbone_file("effnet_lite2")))
    model.eval()

    class Features(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):  # uint8 N×H×W×3 -> pooled features N×C
            x = (x.permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.5
            return self.net.features(x).mean((2, 3))

    path = folder / "features.onnx"
    example = torch.zeros(2, crop, crop, 3, dtype=torch.uint8)
    torch.onnx.export(
        Features(model.net).eval(),
        (example,),
        str(path),
        dynamo=False,
        input_names=["x"],
        output_names=["f"],
        dynamic_axes={"x": {0: "n"}, "f": {0: "n"}},
    )
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rule = TileRule(tile=crop)

    def feats(x):
        return np.stack([sess.run(None, {"x": cut(img, rule)[0]})[0].mean(0) for img in x])

    clf = LogisticRegression(max_iter=2000, C=1.0).fit(feats(train.x), train.y)
    return {name: clf.predict_proba(feats(v.x))[:, 1] for name, v in vals.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shared", type=Path, default=Path("../shared/data"))
    p.add_argument("--recipes", nargs="+", default=["pretrained", "scratch", "frozen"])
    p.add_argument("--train", default="as", help="training sets: a (aivsreal256), s (sdv1coco)")
    p.add_argument("--subset", type=int, default=2000, help="training images (stratified)")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--val-a", type=int, default=400, help="aivsreal256 validation sample")
    p.add_argument("--val-s", type=int, default=None, help="sdv1coco validation sample")
    p.add_argument("--out", type=Path, default=Path("photo_compare.md"))
    args = p.parse_args()

    paths = [args.shared / f for k in args.train for f in TRAIN_SETS[k]]
    data = load_images(paths, size=256, rule="crop", split="train", progress=False)
    train = data
    if args.subset < len(data.y):
        keep, _ = split_two(data.y, 1 - args.subset / len(data.y), 0)
        train = data.take(keep)
    tr, va = split_two(train.y, 0.1, 0)
    vals = val_sets(args.shared, args.val_a, args.val_s)
    lines = [
        f"Training: {args.train} ({len(train.y)} images), {args.epochs} epochs; validation: "
        f"aivsreal256 {len(vals['aivsreal256'].y)}, sdv1coco {len(vals['sdv1coco'].y)}.",
        "",
        "| recipe | aivsreal256 AUC | acc@0.5 | sdv1coco AUC | acc@0.5 | train s |",
        "|---|---|---|---|---|---|",
    ]
    for name in args.recipes:
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as d:
            if name == "frozen":
                probs = frozen_probe(train, vals, 96, Path(d))
            else:
                over = {"epochs": args.epochs, "device": "cpu", **RECIPES[name]}
                cfg = resolve_config("photo", None, over)
                if "pretrained" in RECIPES[name]:  # resolve_config ignores None overrides
                    cfg = dataclasses.replace(cfg, pretrained=RECIPES[name]["pretrained"])
                model, _ = fit(
                    cfg,
                    train.x[tr],
                    train.y[tr],
                    train.x[va],
                    train.y[va],
                    Path(d) / "run",
                    progress=False,
                    log=lambda *_: None,
                )
                det = onnx_detector(model, cfg.to_dict(), Path(d) / "model")
                probs = {k: scores(det, v.x) for k, v in vals.items()}
        sec = time.perf_counter() - t0
        r = {"recipe": name, "seconds": round(sec)}
        for k, v in vals.items():
            r[f"{k}_auc"] = round(float(roc_auc_score(v.y, probs[k])), 4)
            r[f"{k}_acc"] = round(float(((probs[k] >= 0.5) == v.y).mean()), 4)
        print(json.dumps(r), flush=True)
        lines.append(
            f"| {name} | {r['aivsreal256_auc']:.4f} | {r['aivsreal256_acc']:.4f} | "
            f"{r['sdv1coco_auc']:.4f} | {r['sdv1coco_acc']:.4f} | {sec:.0f} |"
        )
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
