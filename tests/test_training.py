"""Models, training loop, early stopping, metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from fakescope.data import load_images, make_splits
from fakescope.detector import Detector
from fakescope.errors import FakescopeError
from fakescope.metrics import compute_metrics
from fakescope.model_dir import model_config
from fakescope.models import ARCHS, build_model, cam_layer
from fakescope.training import loop as training
from fakescope.training.config import TrainConfig, resolve_config


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_initial_loss_is_ln2_and_output_shape(arch):
    torch.manual_seed(0)
    model = build_model(arch).eval()
    x = torch.rand(32, 3, 32, 32)
    with torch.no_grad():
        logits = model(x)
    assert logits.shape == (32,)
    y = torch.randint(0, 2, (32,)).float()
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y).item()
    assert abs(loss - math.log(2)) < 0.15, loss


def test_cifar_stem_keeps_4x4_map():
    feats = {}
    for arch in ("resnet18_cifar", "resnet10s", "resnet18"):
        model = build_model(arch).eval()
        h = cam_layer(model).register_forward_hook(lambda m, i, o, a=arch: feats.update({a: o}))
        with torch.no_grad():
            model(torch.rand(1, 3, 32, 32))
        h.remove()
    assert feats["resnet18_cifar"].shape[-2:] == (4, 4)
    assert feats["resnet10s"].shape[-2:] == (4, 4)
    assert feats["resnet18"].shape[-2:] == (1, 1)  # the ImageNet-stem trap


def test_overfits_one_small_batch():
    torch.manual_seed(0)
    model = build_model("resnet10t")
    x = torch.rand(16, 3, 32, 32)
    y = torch.tensor([0.0, 1.0] * 8)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(80):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05


def test_unknown_arch_and_preset():
    with pytest.raises(FakescopeError, match="unknown architecture"):
        build_model("vit_huge")
    with pytest.raises(FakescopeError, match="unknown preset"):
        resolve_config("turbo")
    with pytest.raises(FakescopeError, match="unknown config keys"):
        resolve_config("reference", overrides={"learning_rate": 1})


def test_config_resolution_order(tmp_path):
    ref = resolve_config("reference")
    assert (ref.arch, ref.batch_size, ref.lr, ref.optimizer, ref.patience, ref.flip) == (
        "resnet18",
        16,
        5e-4,
        "adam",
        3,
        True,
    )
    f = tmp_path / "c.json"
    f.write_text('{"lr": 0.01, "batch_size": 64}')
    cfg = resolve_config("reference", f, {"batch_size": 32, "epochs": None})
    assert (cfg.lr, cfg.batch_size, cfg.epochs) == (0.01, 32, 100)


def test_augment_flip_and_translate_preserve_content():
    cfg = TrainConfig(flip=True, translate=2)
    x = torch.rand(64, 3, 32, 32)
    draws = training.Draws.draw(64, torch.Generator().manual_seed(0), cfg, "cpu")
    assert 10 < int(draws.flip.sum()) < 54 and set(draws.shift.unique().tolist()) <= set(range(5))
    out = training.augment(x, draws, cfg)
    assert out.shape == x.shape
    # a translated image is a shifted copy: its centre 28×28 appears in the input somewhere
    for i in range(4):
        found = False
        for dy in range(5):
            for dx in range(5):
                for src in (x[i], x[i].flip(2)):
                    crop = torch.nn.functional.pad(src[None], (2, 2, 2, 2), mode="reflect")[0]
                    if torch.equal(crop[:, dy : dy + 32, dx : dx + 32], out[i]):
                        found = True
        assert found


def test_early_stopping_stops_and_restores_best(tmp_path, monkeypatch):
    losses = iter([0.50, 0.40, 0.45, 0.46, 0.47, 0.30])
    snapshots = []

    def fake_validate(model, x, y, cfg, device):
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        return {"val_loss": next(losses), "val_acc": 0.5}

    monkeypatch.setattr(training, "validate", fake_validate)
    cfg = TrainConfig(arch="resnet10t", epochs=10, batch_size=8, lr=1e-3, patience=3)
    x = np.random.default_rng(0).integers(0, 255, (32, 32, 32, 3), dtype=np.uint8)
    y = np.array([0, 1] * 16)
    model, state = training.fit(cfg, x, y, x, y, tmp_path, progress=False, log=lambda _: None)
    assert state.epoch == 5 and state.stopped_early and state.best_epoch == 2
    for k, v in model.state_dict().items():
        assert torch.equal(v, snapshots[1][k]), k  # weights of epoch 2, not epoch 5
    assert not torch.equal(snapshots[1]["net.fc.weight"], snapshots[4]["net.fc.weight"])


def test_ema_is_returned_validated_and_resumes_exactly(tmp_path):
    """The weight average is what fit returns (not the raw weights), and a run cut after an
    epoch and resumed ends on the same average as an uninterrupted one."""
    from safetensors.torch import load_file

    cfg = TrainConfig(arch="resnet10t", epochs=2, batch_size=8, lr=1e-2, patience=0, ema=0.9)
    x = np.random.default_rng(0).integers(0, 255, (32, 32, 32, 3), dtype=np.uint8)
    y = np.array([0, 1] * 16)
    quiet = {"progress": False, "log": lambda _: None}
    whole, _ = training.fit(cfg, x, y, x, y, tmp_path / "whole", **quiet)
    ckpt = load_file(str(tmp_path / "whole" / training.CHECKPOINT))
    for k, v in whole.state_dict().items():
        assert torch.equal(v, ckpt[f"ema.module.{k}"]), k
    assert not torch.equal(whole.state_dict()["net.fc.weight"], ckpt["model.net.fc.weight"])

    class Cut(Exception):
        pass

    def cut(epoch, row, model):
        raise Cut

    with pytest.raises(Cut):
        training.fit(cfg, x, y, x, y, tmp_path / "cut", on_epoch=cut, **quiet)
    resumed, state = training.fit(cfg, x, y, x, y, tmp_path / "cut", resume=True, **quiet)
    assert state.epoch == 2
    for k, v in whole.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k
    with pytest.raises(FakescopeError, match="ema"):
        resolve_config("fast", overrides={"ema": 1.0})
    with pytest.raises(FakescopeError, match="compile"):
        resolve_config("fast", overrides={"compile": "fastest"})
    with pytest.raises(FakescopeError, match="CUDA"):
        cpu = TrainConfig(arch="resnet10t", epochs=1, compile="reduce-overhead", device="cpu")
        training.fit(cpu, x, y, x, y, tmp_path / "compiled", **quiet)


@pytest.mark.parametrize("epochs", [1, 2, 4])
def test_one_cycle_survives_a_handful_of_steps(tmp_path, epochs):
    """A tiny run (one step per epoch) used to divide by zero inside OneCycleLR."""
    cfg = TrainConfig(
        arch="resnet10t", epochs=epochs, batch_size=16, schedule="onecycle", patience=0
    )
    x = np.random.default_rng(0).integers(0, 255, (16, 32, 32, 3), dtype=np.uint8)
    y = np.array([0, 1] * 8)
    _, state = training.fit(cfg, x, y, x, y, tmp_path, progress=False, log=lambda _: None)
    assert state.epoch == epochs and all(math.isfinite(r["train_loss"]) for r in state.history)
    assert all(0 <= r["lr"] <= cfg.lr for r in state.history)


@pytest.mark.slow
def test_short_real_training_beats_chance(cifake_dir):
    ds = load_images([str(cifake_dir)], split="train", progress=False)  # 600 real images
    test = load_images([str(cifake_dir)], split="test", purpose="eval", progress=False)
    cfg = resolve_config(
        "cpu", overrides={"epochs": 6, "device": "cpu", "amp": "off", "batch_size": 64, "lr": 0.05}
    )
    idx = make_splits(ds.y, "official", 0.2, 0)
    tr, va = ds.take(idx["train"]), ds.take(idx["val"])
    model, _ = training.fit(
        cfg, tr.x, tr.y, va.x, va.y, cifake_dir.parent / "run", progress=False, log=lambda _: None
    )
    det = Detector(model, model_config(cfg.to_dict()), torch.device("cpu"))
    m = compute_metrics(test.y, det.score_arrays(test.x))
    assert m["accuracy"] > 0.70 and m["roc_auc"] > 0.78, m  # 200 held-out CIFAKE test images


def test_metrics_match_sklearn_and_hand_values():
    y = np.array([0, 0, 1, 1, 1])
    p = np.array([0.1, 0.6, 0.7, 0.4, 0.9])
    m = compute_metrics(y, p)
    assert m["confusion_matrix"] == [[1, 1], [1, 2]]
    assert m["accuracy"] == pytest.approx(0.6)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["roc_auc"] == pytest.approx(5 / 6)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    p = np.clip(y * 0.3 + rng.random(500) * 0.7, 0, 1)
    m = compute_metrics(y, p, threshold=0.5)
    pred = (p >= 0.5).astype(int)
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p))
    assert m["average_precision"] == pytest.approx(skm.average_precision_score(y, p))
    one_class = compute_metrics(np.ones(4), np.full(4, 0.9))
    assert one_class["roc_auc"] is None and one_class["accuracy"] == 1.0


def test_a_fine_tune_draws_fresh_epochs_with_the_same_split(tiny_model):
    """`--init` keeps `--seed` (so the split stays its starting run's) but must not replay the
    draws and augmentations that run trained on: its draw seed mixes in the starting weights."""
    plain = TrainConfig(arch="resnet10t", seed=0)
    tuned = TrainConfig(arch="resnet10t", seed=0, init=str(tiny_model))
    assert training.draw_seed(plain) == 0
    assert training.draw_seed(tuned) != 0
    assert training.draw_seed(tuned) == training.draw_seed(tuned)  # reproducible
    first = [
        training.epoch_order(50, torch.Generator().manual_seed(s), training.current())
        for s in (training.draw_seed(plain), training.draw_seed(tuned))
    ]
    assert not torch.equal(first[0], first[1])
