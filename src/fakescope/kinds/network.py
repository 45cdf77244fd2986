"""One network and its input rule: `resize` (whole image -> centre square -> size×size, the
CIFAKE thumbnail models) or `tiles` (crops at the image's own pixel scale, aggregated; see
`fakescope.tiles`). The network runs on a backend (`fakescope.backends`): only it differs
between PyTorch and ONNX Runtime, the pre- and post-processing here are shared."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from fakescope.errors import FakescopeError
from fakescope.images import load_rgb, pad_to, to_model_input
from fakescope.kinds.base import Kind, Map
from fakescope.model_dir import CONFIG, VARIANTS, WEIGHTS, sha256_file, variants_present
from fakescope.tiles import TileRule, aggregate, cut, evidence, restore_scale

BACKENDS = ("auto", "torch", "onnx", "onnx-int8")


class Network(Kind):
    """A network with its input rule (`input` in the config, or `input_size` for old folders)."""

    kind = "network"

    def __init__(
        self,
        config: dict[str, Any],
        name: str,
        runner=None,
        torch_loader: Callable[[], Any] | None = None,
    ):
        super().__init__(config, name)
        self.runner = runner
        self._model = getattr(runner, "model", None)  # the torch module, for Grad-CAM
        self._torch_loader = torch_loader  # when scoring runs on another backend
        self.device = getattr(runner, "device", None)
        self.batch_size = getattr(runner, "batch_size", 64)
        self.tta = config.get("tta", "none")
        inp = config.get("input") or {"rule": "resize", "size": config.get("input_size")}
        self.rule = inp.get("rule")
        if self.rule == "tiles":
            fields = {k: v for k, v in inp.items() if k in TileRule.__dataclass_fields__}
            self.tile_rule: TileRule | None = TileRule(**fields)
            self.input_size = self.tile_rule.tile
        elif self.rule == "resize" and inp.get("size"):
            self.tile_rule, self.input_size = None, int(inp["size"])
        else:
            raise FakescopeError(
                f"{name}: unknown input rule {inp!r} (resize with a size, or tiles)"
            )
        self.needs_rgb = self.rule == "tiles"

    @classmethod
    def load(
        cls, path: Path, config: dict[str, Any], name: str, shipped: bool, device: str, backend: str
    ) -> Network:
        """The network of a model folder on the chosen backend (`pick_backend`)."""
        chosen = pick_backend(path, backend, device)
        if chosen == "torch":
            return cls(config, name, _load_torch_runner(path, config, shipped, device))
        from fakescope.backends.onnx_runner import load_onnx

        runner = load_onnx(path, config, device, chosen)
        return cls(config, name, runner, lambda: _load_torch_runner(path, config, shipped, device))

    @property
    def model(self):
        """The PyTorch module (Grad-CAM needs one); loaded from the same folder on first use
        when scoring runs on ONNX Runtime (needs the torch extra)."""
        if self._model is None and self._torch_loader is not None:
            self._model = self._torch_loader().model
        return self._model

    def purpose(self) -> str:
        if self.config.get("description"):
            return self.config["description"]
        arch, r = self.config.get("arch"), self.tile_rule
        if r is not None:
            return (
                f"Photos, one view: {arch} on {r.tile}-px tiles at the image's own pixel scale "
                "(never resized)."
            )
        s = self.input_size
        return f"Thumbnails like CIFAKE's {s}×{s} images: {arch} on the image resized."

    def limits(self, fewest_fakes: int | None = None) -> str:
        if self.tile_rule is not None:
            return super().limits(fewest_fakes)
        s = self.input_size
        return (
            f"trained and measured on {s}×{s} thumbnails of one generator only (CIFAKE's "
            "Stable Diffusion 1.4); says nothing reliable about photos or other generators."
        )

    def description(self) -> str:
        r = self.tile_rule
        if r is not None:
            rule = f"{r.tile}-px tiles at native scale (<= {r.budget}, {r.aggregate})"
        else:
            rule = f"whole image resized to {self.input_size}×{self.input_size}"
        return f"{self.config.get('arch')}, {rule}, {self.band()}"

    def input_rule(self) -> str:
        """How images are brought to the network, in words."""
        r = self.tile_rule
        if r is not None:
            return (
                f"{r.tile}x{r.tile} tiles at the image's own scale (never resized), at most "
                f"{r.budget}, {r.aggregate} of tile logits"
            )
        s = self.input_size
        return f"whole image: centre square crop, Lanczos resize to {s}x{s}"

    def card(self) -> dict[str, Any]:
        inp = self.config.get("input") or {"rule": "resize", "size": self.input_size}
        return {**super().card(), "input": inp, "input_rule": self.input_rule()}

    def network(self) -> Network:
        return self

    def own_files(self, folder: Path) -> list[str]:
        """The weights and any exported ONNX graphs (their SHA-256s are in the config: the
        copy then scores on the same backend, and so the same logits, as the original)."""
        return [WEIGHTS, *(VARIANTS[v][0] for v in variants_present(folder))]

    # ---- input ------------------------------------------------------------------------------

    def prepare(self, img: Image.Image, rgb: np.ndarray | None) -> np.ndarray:
        """1×S×S×3 (resize) or T×t×t×3 tiles (uint8)."""
        if self.rule == "resize":
            return to_model_input(img, self.input_size)[None]
        return self.tile_input(load_rgb(img) if rgb is None else rgb)[0]

    def scaled(self, rgb: np.ndarray) -> np.ndarray:
        """The decoded image at the scale the tiles are cut from (`restore_scale`: an image
        enlarged far beyond its detail is halved first), padded to at least one tile."""
        return pad_to(restore_scale(rgb, self.tile_rule)[0], self.input_size)

    def tile_input(self, rgb: np.ndarray) -> tuple[np.ndarray, float]:
        """(tiles, evidence): the image's tiles and its area in tiles (`tiles.evidence`)."""
        a = self.scaled(rgb)
        t = cut(a, self.tile_rule)[0]
        return t, evidence(a.shape[0], a.shape[1], len(t), self.tile_rule)

    # ---- scoring ----------------------------------------------------------------------------

    def logits_arrays(self, x: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Raw network logits for uint8 N×H×W×3 arrays; flip TTA when the model asks for it."""
        if self.runner is None:
            raise FakescopeError(f"{self.name}: no network loaded")
        bs = batch_size or self.runner.batch_size
        out = []
        for i in range(0, len(x), bs):
            xb = x[i : i + bs]
            z = self.runner(xb)
            if self.tta == "flip":
                z = (z + self.runner(np.ascontiguousarray(xb[:, :, ::-1]))) / 2
            out.append(z)
        return np.concatenate(out) if out else np.zeros(0)

    def image_logit(self, array_logits: np.ndarray) -> float:
        """One image's raw logit from its arrays' logits (tiles aggregated)."""
        if self.tile_rule is not None:
            return aggregate(array_logits, self.tile_rule)
        return float(array_logits[0])

    def logits(self, parts: list[np.ndarray]) -> list[float]:
        """One network pass over all images' arrays together."""
        z = self.logits_arrays(np.concatenate(parts))
        ends = np.cumsum([len(x) for x in parts])
        return [self.image_logit(z[end - len(x) : end]) for end, x in zip(ends, parts, strict=True)]

    # ---- explanation ------------------------------------------------------------------------

    def explanation(self, img: Image.Image, rgb: np.ndarray, pred: int, method: str) -> Map:
        """Thumbnail models: Grad-CAM (`method`) for the pixel verdict. Tiled models: each
        region's fake-evidence from tiles scored at the scale the model scored the image."""
        from fakescope import explain

        if self.rule == "resize":
            if self.model is None:
                raise FakescopeError(
                    "Grad-CAM needs the PyTorch backend: pip install 'fakescope[explain]'"
                )
            image, heat = explain.gradcam_map(self, img, rgb, pred, method)
            s = self.input_size
            shows = (
                f"Grad-CAM ({method}) on the {s}×{s} model input (the centre square of the "
                f"image): red = where the network found evidence for its pixel verdict "
                f"({'fake' if pred else 'real'}), scaled to its maximum; outside that square "
                "the model did not look"
            )
            return Map(image, heat, method, shows)
        scaled = self.scaled(rgb)
        h, w = restore_scale(rgb, self.tile_rule)[0].shape[:2]
        image, heat, n = explain.fake_evidence_map(self, scaled, (h, w), rgb)
        t = self.input_size
        shown = "" if (h, w) == rgb.shape[:2] else f", on the image halved to {w}×{h} as scored"
        shows = (
            "tile scores: red = looks generated, blue = looks real, whatever the verdict: each "
            f"region's own prob_fake from half-overlapping {t}×{t} tiles at the scale the "
            f"model scores ({n} here, at most {explain.explain_budget(t)}{shown}), "
            "interpolated over the image"
        )
        return Map(image, heat, "tile-scores", shows)


# ---- loading ---------------------------------------------------------------------------------


def _load_torch_runner(path: Path, config: dict[str, Any], shipped: bool, device: str):
    try:
        import safetensors  # noqa: F401 - load_classifier imports it lazily

        from fakescope.backends.torch_runner import TorchRunner
        from fakescope.models import load_classifier, resolve_device
    except ImportError as e:
        if e.name not in ("torch", "torchvision", "safetensors"):
            raise
        raise FakescopeError(
            "this needs the 'torch' extra (PyTorch): pip install 'fakescope[torch]'"
            + (" (or --backend onnx: this model has model.onnx)" if variants_present(path) else "")
        ) from None
    wfile = path / WEIGHTS
    if not wfile.is_file():
        raise FakescopeError(f"missing weights file {wfile}")
    expected = config.get("weights_sha256")
    if (shipped or expected) and sha256_file(wfile) != expected:
        raise FakescopeError(
            f"{wfile}: SHA-256 does not match {CONFIG} (corrupt or replaced weights file)"
        )
    dev = resolve_device(device)
    return TorchRunner(load_classifier(wfile, config).to(dev), dev)


def _gpu_present() -> bool:
    """An NVIDIA GPU is visible (without importing torch, which alone costs seconds)."""
    gpus = Path("/proc/driver/nvidia/gpus")
    return gpus.is_dir() and any(gpus.iterdir())


def pick_backend(path: Path, backend: str, device: str) -> str:
    """`auto`: on the CPU, the fastest ONNX graph the folder has (`onnx-int8`, then `onnx`)
    when onnxruntime is installed (faster than PyTorch eager and no torch import; see
    `benchmarks/cpu_infer.py` in BENCHMARKS.md), else PyTorch; PyTorch when a GPU is asked
    for (`--device cuda`), or visible with `--device auto` and torch installed."""
    import importlib.util

    if backend not in BACKENDS:
        raise FakescopeError(f"unknown backend {backend!r} ({', '.join(BACKENDS)})")
    if backend != "auto":
        return backend
    if device not in ("auto", "cpu"):
        return "torch"
    onnx = variants_present(path)
    if not onnx or importlib.util.find_spec("onnxruntime") is None:
        return "torch"
    if device == "auto" and _gpu_present() and importlib.util.find_spec("torch") is not None:
        return "torch"
    return onnx[0]
