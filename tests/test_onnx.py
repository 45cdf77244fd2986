"""ONNX export and the ONNX Runtime backend: the file, parity with PyTorch, backend selection."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from fakescope import model_dir as detector_mod
from fakescope.calibration import apply_calibration
from fakescope.cli import main
from fakescope.detector import Detector
from fakescope.errors import FakescopeError
from fakescope.export import export_onnx
from fakescope.model_dir import model_config, save_model
from fakescope.models import build_model
from tests.conftest import CIFAKE_TEST, SHARED, make_image_tree

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

CIFAKE, PHOTO = "cifake-resnet10s", "photo-effnet-lite2"
PARITY = 1e-4  # max |Δ prob_fake| allowed between the backends
DATASETS = {
    "cifake-test": ([CIFAKE_TEST], "test"),
    "aivsreal256-validation": ([SHARED / "aivsreal256" / "aivsreal256-validation.tar"], None),
    "sdv1coco-validation": ([SHARED / "sdv1coco" / "sdv1coco-crops256-validation.tar"], None),
}


def shared_images(name: str, n: int = 200, labels: bool = False):
    """`n` real files (stratified, half of each class) of a shared data set, as raw bytes
    (and their labels)."""
    from fakescope.data import list_labelled

    paths, split = DATASETS[name]
    if not all(p.exists() for p in paths):
        pytest.skip(f"needs {paths[0]} (shared data not present here)")
    files = list_labelled(paths, split=split, subset=n, seed=0)
    items = list(files.iter_bytes())
    raws = [raw for _, raw in items]
    return (raws, np.array([files.labels[i] for i, _ in items])) if labels else raws


def probs(det: Detector, images) -> np.ndarray:
    """Calibrated prob_fake from each image's raw logit (no 6-digit rounding of the rows)."""
    z = [logit for logit, error in det.iter_logits(images) if not error]
    assert len(z) == len(images)
    return apply_calibration(np.array(z), det.calibration)


def spread_fc(model, seed: int = 0, std: float = 3.0):
    """A random model's near-zero final layer gives p = 0.5 for everything, which would make
    parity trivial: widen it so logits spread over several units."""
    torch.manual_seed(seed)
    torch.nn.init.normal_(model.net.fc.weight, std=std)
    return model


def save_unshared(folder, model, config) -> None:
    """`save_model` for EffNetLite, whose `fc` is also `net._fc`: safetensors refuses tensors
    that share memory, so each name gets its own copy."""
    clones = {k: v.clone() for k, v in model.state_dict().items()}
    model = type("State", (), {"state_dict": lambda self: clones})()
    save_model(folder, model, config)


@pytest.fixture(scope="module")
def tiled_onnx_model(tmp_path_factory):
    """A randomly initialised tiled model (resnet10t on 32×32 tiles) exported into its folder."""
    d = tmp_path_factory.mktemp("tiled-onnx")
    cfg = {"arch": "resnet10t", "image_size": 64, "crop": 32, "tiles": {"budget": 12}}
    torch.manual_seed(0)
    save_model(d, spread_fc(build_model("resnet10t"), std=20.0), model_config(cfg))
    export_onnx(str(d))  # the default (dynamo) exporter
    return d


def test_shipped_onnx_file_is_recorded_small_and_dynamic():
    folder = detector_mod.WEIGHTS_DIR / CIFAKE
    f = folder / "model.onnx"
    cfg = json.loads((folder / "config.json").read_text())
    assert f.stat().st_size <= 25 * 1024 * 1024
    assert cfg["onnx_sha256"] == detector_mod.sha256_file(f)
    assert cfg["onnx"]["from_weights_sha256"] == cfg["weights_sha256"]
    m = onnx.load(str(f))
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in m.graph.initializer)
    meta = {p.key: p.value for p in m.metadata_props}
    opset = {o.domain: o.version for o in m.opset_import}[""]
    assert int(meta["opset"]) == cfg["onnx"]["opset"] == opset
    assert json.loads(meta["fakescope_config"])["arch"] == cfg["arch"]
    (inp,) = m.graph.input
    dims = inp.type.tensor_type.shape.dim
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [32, 32, 3]
    det = Detector.load(CIFAKE, backend="onnx")
    assert det.runner.name == "onnx" and "torch" not in repr(det)
    for n in (1, 3, 70):  # dynamic batch, and more than one runner batch
        assert det.logits_arrays(np.zeros((n, 32, 32, 3), np.uint8)).shape == (n,)


def test_shipped_int8_graph_is_the_default_cpu_path_and_agrees():
    folder = detector_mod.WEIGHTS_DIR / CIFAKE
    f = folder / "model.int8.onnx"
    cfg = json.loads((folder / "config.json").read_text())
    assert f.stat().st_size <= 25 * 1024 * 1024
    assert cfg["onnx_int8_sha256"] == detector_mod.sha256_file(f)
    q = cfg["onnx_int8"]["quantization"]
    assert q["calibration_data"] == ["cifake-train.tar.xz"]  # training images, not test
    assert q["verdict_agreement_with_fp32"] >= 0.99
    det = Detector.load(CIFAKE, device="cpu")  # auto
    assert det.runner.name == "onnx" and det.runner.path.name == "model.int8.onnx"
    assert Detector.load(CIFAKE, device="cpu", backend="onnx").runner.path.name == "model.onnx"


@pytest.mark.slow
def test_int8_keeps_accuracy_on_200_cifake_test_images():
    images, y = shared_images("cifake-test", labels=True)
    p_fp32 = probs(Detector.load(CIFAKE, backend="onnx"), images)
    p_int8 = probs(Detector.load(CIFAKE, backend="onnx-int8"), images)
    acc_fp32, acc_int8 = ((p_fp32 >= 0.5) == y).mean(), ((p_int8 >= 0.5) == y).mean()
    assert acc_int8 >= acc_fp32 - 0.01 and acc_int8 >= 0.95
    assert np.abs(p_fp32 - p_int8).max() < 0.2  # close, not equal: int8 moves scores a little


def test_int8_export_with_calibration_data(exported_copy, tmp_path):
    data = make_image_tree(tmp_path / "calib", {"train/real": 12, "train/fake": 12})
    with pytest.raises(FakescopeError, match="needs --calibration-data"):
        export_onnx(str(exported_copy), int8=True)
    r = export_onnx(
        str(exported_copy),
        exporter="torchscript",
        int8=True,
        calibration_data=[str(data)],
        calibration_n=20,
    )
    assert r["recorded_in_config"] and r["file"] == "model.int8.onnx"
    assert r["quantization"]["calibration_images"] == 20
    det = Detector.load(str(exported_copy), device="cpu")  # auto: the int8 graph
    assert det.runner.path.name == "model.int8.onnx"
    x = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    ref = Detector.load(str(exported_copy), backend="onnx").logits_arrays(x)
    assert np.abs(det.logits_arrays(x) - ref).max() < 0.5 * np.abs(ref).max() + 0.05


@pytest.mark.slow
@pytest.mark.parametrize("model", [CIFAKE, PHOTO])
@pytest.mark.parametrize("name", list(DATASETS))
def test_parity_shipped_model_on_200_shared_images(name, model):
    """Every shipped network, on 200 real images of every shared data set (the photo model
    on every tile of each image, up to its budget)."""
    images = shared_images(name)
    p_torch = probs(Detector.load(model, backend="torch", device="cpu"), images)
    p_onnx = probs(Detector.load(model, backend="onnx"), images)
    assert np.abs(p_torch - p_onnx).max() < PARITY
    assert p_torch.std() > 0.05  # the comparison covers a spread of scores, not one value


@pytest.mark.slow
def test_parity_tiled_model_on_shared_photos(tiled_onnx_model):
    images = shared_images("aivsreal256-validation", 40)  # 256 px: 12 tiles each
    p_torch = probs(Detector.load(str(tiled_onnx_model), backend="torch", device="cpu"), images)
    p_onnx = probs(Detector.load(str(tiled_onnx_model), backend="onnx"), images)
    assert np.abs(p_torch - p_onnx).max() < PARITY
    assert np.ptp(p_torch) > 0.2  # image scores (means of 12 tile logits) spread


def test_parity_tiled_model_any_image_size(tiled_onnx_model):
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 256, s, dtype=np.uint8) for s in [(20, 20, 3), (64, 90, 3)]]
    imgs.append(rng.integers(0, 256, (500, 700, 3), dtype=np.uint8))
    det_t = Detector.load(str(tiled_onnx_model), backend="torch", device="cpu")
    det_o = Detector.load(str(tiled_onnx_model), backend="onnx")
    assert np.abs(probs(det_t, imgs) - probs(det_o, imgs)).max() < PARITY


@pytest.mark.slow
def test_effnet_lite_tiled_model_exports_with_parity(tmp_path):
    """EfficientNet-Lite (TF 'same' padding, depthwise convolutions) on 48×48 tiles."""
    pytest.importorskip("efficientnet_lite_pytorch")
    cfg = {"arch": "effnet_lite0", "image_size": 64, "crop": 48, "tiles": {"budget": 4}}
    torch.manual_seed(0)
    save_unshared(tmp_path, spread_fc(build_model("effnet_lite0"), 1), model_config(cfg))
    r = export_onnx(str(tmp_path))
    assert r["recorded_in_config"] and r["max_abs_logit_diff_vs_torch"] < 1e-4
    rng = np.random.default_rng(1)
    imgs = [rng.integers(0, 256, (100, 130, 3), dtype=np.uint8) for _ in range(3)]
    det_t = Detector.load(str(tmp_path), backend="torch", device="cpu")
    det_o = Detector.load(str(tmp_path), backend="onnx")
    assert np.abs(probs(det_t, imgs) - probs(det_o, imgs)).max() < PARITY


def test_torchscript_exporter_and_export_elsewhere(tiny_model, tmp_path, capsys):
    out = tmp_path / "elsewhere.onnx"
    args = ["export", "--model", str(tiny_model), "--out", str(out), "--exporter", "torchscript"]
    assert main(args) == 0
    assert "written:" in capsys.readouterr().out and out.is_file()
    assert "onnx" not in json.loads((tiny_model / "config.json").read_text())  # not recorded
    from fakescope.backends.onnx_runner import OnnxRunner

    x = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    ref = Detector.load(str(tiny_model), backend="torch", device="cpu").runner(x)
    assert np.abs(OnnxRunner(out)(x) - ref).max() < 1e-4


@pytest.fixture(scope="module")
def exported(tiny_model, tmp_path_factory):
    """The tiny model with its fp32 graph (TorchScript exporter: seconds, not tens of them)."""
    d = tmp_path_factory.mktemp("exported") / "model"
    shutil.copytree(tiny_model, d)
    export_onnx(str(d), exporter="torchscript")
    return d


@pytest.fixture
def exported_copy(exported, tmp_path):
    """A private copy for tests that change the folder."""
    return Path(shutil.copytree(exported, tmp_path / "model"))


def test_auto_backend_prefers_onnx_on_the_cpu_and_falls_back_to_torch(exported, tiny_model):
    assert Detector.load(str(exported), device="cpu").runner.name == "onnx"
    assert Detector.load(str(exported), device="cpu").runner.path.name == "model.onnx"
    assert Detector.load(str(exported), device="cpu", backend="torch").runner.name == "torch"
    assert Detector.load(str(tiny_model), device="cpu").runner.name == "torch"  # no model.onnx
    with pytest.raises(FakescopeError, match="has no model.onnx"):
        Detector.load(str(tiny_model), backend="onnx")
    with pytest.raises(FakescopeError, match="runs on the CPU"):
        Detector.load(str(exported), backend="onnx", device="cuda")
    with pytest.raises(FakescopeError, match="unknown backend"):
        Detector.load(str(exported), backend="tensorrt")


def test_tampered_or_stale_onnx_is_refused(exported_copy):
    f = exported_copy / "model.onnx"
    data = bytearray(f.read_bytes())
    data[-1] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(FakescopeError, match="SHA-256 does not match"):
        Detector.load(str(exported_copy), backend="onnx")
    export_onnx(str(exported_copy), exporter="torchscript")
    # retrained weights (a new weights_sha256) make the exported graph stale
    save_model(
        exported_copy,
        build_model("resnet10t"),
        json.loads((exported_copy / "config.json").read_text()),
    )
    with pytest.raises(FakescopeError, match="exported from other weights"):
        Detector.load(str(exported_copy), backend="onnx")


def test_routing_folder_exports_nothing_and_routes_on_onnx(exported, tmp_path):
    route = tmp_path / "route"
    route.mkdir()
    (route / "config.json").write_text(
        json.dumps({"format": "fakescope-route/1", "route": [{"model": str(exported)}]})
    )
    with pytest.raises(FakescopeError, match="routing model"):
        export_onnx(str(route))
    det = Detector.load(str(route), device="cpu")
    assert det.routes[0][1].runner.name == "onnx"


def test_predict_and_explain_with_the_onnx_backend(exported):
    img = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    det_o = Detector.load(str(exported), backend="onnx")
    det_t = Detector.load(str(exported), backend="torch", device="cpu")
    assert abs(det_o.predict(img)["prob_fake"] - det_t.predict(img)["prob_fake"]) < PARITY
    pytest.importorskip("pytorch_grad_cam")
    ex = det_o.explain(img)  # Grad-CAM loads the PyTorch network from the same folder
    assert det_o.runner.name == "onnx" and det_o.model is not None
    assert ex.heatmap.shape == img.shape[:2] and ex.label == det_o.predict(img)["label"]
