"""Release a run as a shipped model: fp16 safetensors + config.json + MODEL_CARD.md.

The card's numbers come from `fakescope.evaluation.evaluate` run on the *shipped* (fp16) file over
the whole CIFAKE test split, plus the same metrics without the 378 test/FAKE files that are
byte-identical to training files (CIFAKE's train/test leakage).

    python scripts/ship_model.py --run runs/cifake-resnet10s --name cifake-resnet10s \
        --train-archive ../shared/data/cifake/cifake-train.tar.xz \
        --test-archive ../shared/data/cifake/cifake-test.tar.xz --eval-out eval/cifake-resnet10s
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import platform
import tarfile
import time
from pathlib import Path

import numpy as np
import torch

from fakescope.detector import Detector
from fakescope.evaluation.evaluate import evaluate
from fakescope.fileio import write_json, write_text
from fakescope.metrics import compute_metrics
from fakescope.model_dir import CONFIG, WEIGHTS_DIR, save_model


def leaked_test_files(train: Path, test: Path) -> set[str]:
    """test/ members whose bytes equal some train/ member's bytes."""

    def hashes(path: Path) -> dict[str, str]:
        with tarfile.open(path) as tf:
            return {
                m.name: hashlib.sha256(tf.extractfile(m).read()).hexdigest()
                for m in tf
                if m.isfile()
            }

    train_h = set(hashes(train).values())
    return {name for name, h in hashes(test).items() if h in train_h}


CARD = """---
license: mit
library_name: fakescope
tags: [image-classification, ai-generated-image-detection, cifake]
datasets: [birdy654/cifake-real-and-ai-generated-synthetic-images]
metrics: [accuracy, precision, recall, f1, roc_auc]
model-index:
- name: {name}
  results:
  - task: {{type: image-classification, name: real vs AI-generated}}
    dataset: {{type: cifake, name: CIFAKE test split, split: test}}
    metrics:
    - {{type: accuracy, value: {accuracy:.4f}}}
    - {{type: precision, value: {precision:.4f}}}
    - {{type: recall, value: {recall:.4f}}}
    - {{type: f1, value: {f1:.4f}}}
    - {{type: roc_auc, value: {roc_auc:.4f}}}
---

# {name}

Binary detector of AI-generated images: `prob_fake` = probability that a 32×32 image is a
Stable Diffusion 1.4 CIFAKE fake rather than a real CIFAR-10 photo. Default model of fakescope.

## Model

- Architecture: `{arch}` ({arch_note}); {params:,} parameters; one logit, sigmoid → `prob_fake`.
- Input: any image, brought to 32×32 RGB by `fakescope.images.to_model_input` (first frame,
  EXIF orientation, RGB, centre square crop, Lanczos resize); normalised inside the model.
- Decision threshold {threshold}; test-time augmentation: {tta} (mean logit of image and mirror).
- Weights: `model.safetensors`, float16, {size_mb:.1f} MB, SHA-256 `{sha}` (checked at load).

## Training

- Data: CIFAKE train split (100,000 images, 50k real / 50k fake), official protocol: a
  stratified 20% (20,000) held out for validation, 80,000 used for training.
- Recipe (preset `{preset}`): {recipe}.
- {epochs} epochs, {train_seconds:.0f} s of training on {hardware}, seed {seed}.
- Command: `fakescope train --preset {preset} --epochs {epochs} --data cifake-train.tar.xz
  --test-data cifake-test.tar.xz --out runs/{name} --device cpu`

## Evaluation (CIFAKE test split, {n:,} images)

Measured with `fakescope evaluate --model {name} --data cifake-test.tar.xz` on the shipped fp16
file ({eval_date}, {eval_hw}).

| metric | value |
| --- | --- |
| accuracy | {accuracy:.4f} |
| precision (fake = positive) | {precision:.4f} |
| recall | {recall:.4f} |
| F1 | {f1:.4f} |
| ROC-AUC | {roc_auc:.4f} |
| average precision | {average_precision:.4f} |

Confusion matrix (rows true, columns predicted):

| | pred real | pred fake |
| --- | --- | --- |
| real | {tn} | {fp} |
| fake | {fn} | {tp} |

CIFAKE's test split contains {n_leak} FAKE files byte-identical to training files. Without them
({n_clean:,} images): accuracy {clean_accuracy:.4f}, recall {clean_recall:.4f}, F1 {clean_f1:.4f},
AUC {clean_auc:.4f}.

Reference system (ResNet-18 from scratch, the capstone): ~95% accuracy, 94% precision,
96% recall, 95% F1.

## Intended use

Screening 32×32 (or downscaled) images for CIFAKE-style Stable Diffusion 1.4 fakes; teaching and
research on AI-image detection; a baseline for detectors of other generators.

## Limitations

- Trained only on 32×32 CIFAR-10-class images and Stable Diffusion 1.4 fakes. Every input is
  shrunk to 32×32, which destroys most high-frequency evidence in high-resolution photos:
  expect unreliable scores on photographs, other generators (Midjourney, DALL·E, SDXL, …),
  edited, screenshotted or recompressed images. It is not a forensic tool.
- The CIFAKE fakes were made for the ten CIFAR-10 classes; other subjects are out of
  distribution.
- CIFAKE has {n_leak} test/FAKE files identical to train/FAKE files and duplicates inside each
  split; the numbers above are reported with and without the leaked files.
- A score is a probability from this model on this data distribution, not a calibrated
  likelihood for images in the wild.
"""

ARCH_NOTES = {
    "resnet10s": "a narrow ResNet-10, stage widths 48/96/192/384, CIFAR stem: 3×3 stride-1 "
    "first convolution, no max-pool",
    "resnet18_cifar": "ResNet-18 with the CIFAR stem",
    "resnet18": "torchvision ResNet-18, ImageNet stem",
}


def recipe_text(t: dict) -> str:
    parts = [f"BCE-with-logits, {t['optimizer'].upper()}"]
    if t["optimizer"] == "sgd":
        parts[-1] += f" (Nesterov, momentum {t['momentum']})"
    parts.append(f"{t['schedule']} schedule to lr {t['lr']}, batch {t['batch_size']}")
    parts.append(f"weight decay {t['weight_decay']}, label smoothing {t['label_smoothing']}")
    aug = ["horizontal flips"] if t["flip"] else []
    if t["translate"]:
        aug.append(f"±{t['translate']}-px translations (reflect padding)")
    parts.append("augmentation: " + (", ".join(aug) or "none"))
    parts.append(f"mixed precision {t['amp']}, channels_last {t['channels_last']}")
    return "; ".join(parts)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", required=True, type=Path)
    p.add_argument("--name", required=True)
    p.add_argument("--train-archive", required=True, type=Path)
    p.add_argument("--test-archive", required=True, type=Path)
    p.add_argument("--eval-out", required=True, type=Path)
    p.add_argument("--hardware", default=platform.processor() or "CPU")
    args = p.parse_args()

    run_det = Detector.load(str(args.run), device="cpu")
    run_cfg = json.loads((args.run / CONFIG).read_text())
    out = WEIGHTS_DIR / args.name
    config = {k: v for k, v in run_cfg.items() if k not in ("format", "weights_sha256")}
    config["metrics"] = {}
    save_model(out, run_det.model, config, half=True)

    det = Detector.load(args.name, device="cpu")  # the shipped fp16 file, sha-checked
    m = evaluate(det, [str(args.test_archive)], args.eval_out, progress=False)
    leaked = leaked_test_files(args.train_archive, args.test_archive)
    text = (args.eval_out / "predictions.csv").read_text()
    rows = list(csv.DictReader(text.splitlines()))
    keep = [r for r in rows if r["path"].split("::", 1)[1] not in leaked]
    clean = compute_metrics(
        np.array([r["true_label"] == "fake" for r in keep], int),
        np.array([float(r["prob_fake"]) for r in keep]),
    )
    metrics = {
        "test": {
            k: m[k]
            for k in (
                "accuracy",
                "precision",
                "recall",
                "f1",
                "roc_auc",
                "average_precision",
                "confusion_matrix",
                "n",
            )
        },
        "test_without_leaked": {k: clean[k] for k in ("accuracy", "recall", "f1", "roc_auc", "n")},
        "leaked_test_files": len(leaked),
        "train": {k: run_cfg["metrics"].get(k) for k in ("epochs", "train_seconds")},
        "val": run_cfg["metrics"].get("val"),
    }
    config["metrics"] = metrics
    config["weights_sha256"] = json.loads((out / CONFIG).read_text())["weights_sha256"]
    config["format"] = "fakescope-model/1"
    write_json(out / CONFIG, config)

    t = config["training"]
    (tn, fp), (fn, tp) = m["confusion_matrix"]
    card = CARD.format(
        name=args.name,
        arch=config["arch"],
        arch_note=ARCH_NOTES.get(config["arch"], ""),
        params=sum(p.numel() for p in det.model.parameters()),
        threshold=config["threshold"],
        tta=config["tta"],
        size_mb=(out / "model.safetensors").stat().st_size / 1e6,
        sha=config["weights_sha256"],
        preset="cpu" if t["arch"] == "resnet10s" else "fast",
        recipe=recipe_text(t),
        epochs=metrics["train"]["epochs"],
        train_seconds=metrics["train"]["train_seconds"],
        hardware=args.hardware,
        seed=t["seed"],
        n=m["n"],
        eval_date=time.strftime("%Y-%m-%d"),
        eval_hw=f"CPU, torch {torch.__version__}",
        tn=tn,
        fp=fp,
        fn=fn,
        tp=tp,
        n_leak=len(leaked),
        n_clean=clean["n"],
        clean_accuracy=clean["accuracy"],
        clean_recall=clean["recall"],
        clean_f1=clean["f1"],
        clean_auc=clean["roc_auc"],
        **{
            k: m[k]
            for k in ("accuracy", "precision", "recall", "f1", "roc_auc", "average_precision")
        },
    )
    write_text(out / "MODEL_CARD.md", card)
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
