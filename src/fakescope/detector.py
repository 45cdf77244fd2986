"""`Detector`: the one way from an image to a score.

The CLI (predict, evaluate, explain, ...), the Python API and every later entry point call this
class. A model is a folder with `config.json` + weights (a run folder or a shipped model under
`fakescope/weights/`; file names, resolution and config I/O: `fakescope.model_dir`); nothing else
is ever read from a model path. The config names:

- the network (`arch`), run by a backend (`fakescope.backends`: only the network differs);
- its **input rule** (`input`): `resize` (whole image -> centre square -> `size`×`size`, the
  CIFAKE thumbnail models) or `tiles` (crops at the image's own pixel scale, aggregated; see
  `fakescope.tiles`);
- how a logit becomes `prob_fake` and a verdict (`calibration`, `threshold`, `uncertain`; see
  `fakescope.calibration`).

A *routing* folder (`route` in its config) holds no network: it names other models and the
image sizes each one takes (e.g. thumbnails to the CIFAKE model, photos to the native-resolution
model). Every row names the model that scored it.

With `metadata` on (the default), each row also carries the provenance evidence the file itself
holds (C2PA, IPTC, generator text chunks, EXIF; `fakescope.provenance`) and `verdict_source`:
`metadata` when that evidence decides the verdict under the one documented rule, else `pixels`.
`prob_fake` is always the pixel score.

This module imports no torch: scoring through another backend needs none.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from fakescope.calibration import apply_calibration, verdict
from fakescope.errors import FakescopeError, ImageError
from fakescope.fetch import url_bytes
from fakescope.images import ImageSource, load_rgb, open_image, pad_to, to_model_input
from fakescope.model_dir import (
    CONFIG,
    WEIGHTS,
    read_config,
    resolve_model_dir,
    sha256_file,
    variants_present,
)
from fakescope.tiles import TileRule, aggregate, cut, evidence, restore_scale

ROW_FIELDS = (
    "path",
    "prob_fake",
    "label",
    "model",
    "provenance",
    "verdict_source",
    "note",
    "error",
)


BACKENDS = ("auto", "torch", "onnx", "onnx-int8")


def _load_torch_runner(path: Path, config: dict[str, Any], shipped: bool, device: str):
    try:
        import safetensors  # noqa: F401 - load_classifier imports it lazily

        from fakescope.backends.torch_runner import TorchRunner
        from fakescope.models import load_classifier, resolve_device
    except ImportError as e:
        if e.name not in ("torch", "torchvision", "safetensors"):
            raise
        raise FakescopeError(
            f"this needs PyTorch ({e.name} is not installed): pip install 'fakescope[torch]'"
            + (" (or --backend onnx: this model has model.onnx)" if _onnx_variants(path) else "")
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


def _onnx_variants(path: Path) -> list[str]:
    """The ONNX backends whose files this folder has, fastest first."""
    return variants_present(path)


def _load_onnx_runner(path: Path, config: dict[str, Any], device: str, backend: str):
    from fakescope.backends.onnx_runner import load_onnx

    return load_onnx(path, config, device, backend)


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
    onnx = _onnx_variants(path)
    if not onnx or importlib.util.find_spec("onnxruntime") is None:
        return "torch"
    if device == "auto" and _gpu_present() and importlib.util.find_spec("torch") is not None:
        return "torch"
    return onnx[0]


class Detector:
    """Load a model once; score images, arrays or whole batches; explain a verdict.

    `Detector(model, config, device)` wraps a PyTorch `Classifier` directly (training uses it);
    `Detector.load(name_or_folder)` is the usual way in.
    """

    def __init__(
        self,
        model=None,
        config: dict[str, Any] | None = None,
        device=None,
        name: str = "",
        *,
        runner=None,
        routes: list[tuple[int | None, Detector]] | None = None,
        metadata: bool = True,
        fusion: dict[str, Any] | None = None,
    ):
        self.config = config or {}
        self.metadata = metadata
        self.name = name
        self.routes = routes
        # a fusion model: {"tiles": Detector, "head": Head, "combiner": Combiner}
        self.fusion = fusion
        # photo models mark graphics, screenshots and text as out of scope (fakescope.scope)
        self.scope_check = bool(self.config.get("scope_check"))
        if runner is None and model is not None:
            from fakescope.backends.torch_runner import TorchRunner

            runner = TorchRunner(model, device)
        self.runner = runner
        self._model = getattr(runner, "model", None)  # the torch module, for Grad-CAM
        self._torch_loader = None  # set by `load` when scoring runs on another backend
        self.device = getattr(runner, "device", None)
        if routes:  # where its members run (they are loaded with the same device)
            self.device = routes[0][1].device
        if fusion:
            self.device = fusion["tiles"].device
        self.batch_size = getattr(runner, "batch_size", 64)
        if routes:
            self.rule, self.tile_rule, self.input_size = "route", None, None
        elif fusion:
            tiles = fusion["tiles"]
            self.rule, self.tile_rule, self.input_size = "fusion", None, tiles.input_size
        else:
            inp = self.config.get("input") or {
                "rule": "resize",
                "size": self.config["input_size"],
            }
            self.rule = inp["rule"]
            if self.rule == "tiles":
                fields = {k: v for k, v in inp.items() if k in TileRule.__dataclass_fields__}
                self.tile_rule = TileRule(**fields)
                self.input_size = self.tile_rule.tile
            elif self.rule == "resize":
                self.tile_rule, self.input_size = None, int(inp["size"])
            else:
                raise FakescopeError(f"unknown input rule {self.rule!r} (resize or tiles)")
        self.threshold = float(self.config.get("threshold", 0.5))
        self.calibration = self.config.get("calibration")
        self.uncertain = self.config.get("uncertain")
        self.tta = self.config.get("tta", "none")

    @classmethod
    def load(
        cls,
        model: str | os.PathLike | None = None,
        device: str = "auto",
        backend: str = "auto",
        metadata: bool = True,
    ) -> Detector:
        """A shipped model by name (default: `DEFAULT_MODEL`), a run folder, or a routing
        folder. `metadata=False` scores pixels only (no provenance evidence is read)."""
        path, shipped = resolve_model_dir(model)
        config = read_config(path)
        name = path.name if shipped else str(path)
        if "route" in config:
            routes = []
            for r in config["route"]:
                member = cls.load(r["model"], device=device, backend=backend)
                routes.append((r.get("max_side"), member))
            if not routes or routes[-1][0] is not None:
                raise FakescopeError(f"{path / CONFIG}: the last route must take every size")
            return cls(config=config, name=name, routes=routes, metadata=metadata)
        if "fusion" in config:
            return _load_fusion(cls, path, config, name, device, backend, metadata)
        chosen = pick_backend(path, backend, device)
        if chosen != "torch":
            runner = _load_onnx_runner(path, config, device, chosen)
            det = cls(config=config, name=name, runner=runner, metadata=metadata)
            det._torch_loader = lambda: _load_torch_runner(path, config, shipped, device)
            return det
        runner = _load_torch_runner(path, config, shipped, device)
        return cls(config=config, name=name, runner=runner, metadata=metadata)

    @property
    def model(self):
        """The PyTorch module (Grad-CAM needs one). When scoring runs on ONNX Runtime it is
        loaded from the same folder on first use (needs the torch extra)."""
        if self.fusion:
            return self.fusion["tiles"].model
        if self._model is None and self._torch_loader is not None:
            self._model = self._torch_loader().model
        return self._model

    def __repr__(self) -> str:
        if self.routes:
            parts = ", ".join(
                f"max side {m} -> {d.name}" if m is not None else f"else -> {d.name}"
                for m, d in self.routes
            )
            return f"Detector(name={self.name!r}, route=[{parts}])"
        if self.fusion:
            return (
                f"Detector(name={self.name!r}, fusion=[tiles: {self.fusion['tiles'].name}, "
                f"clip], threshold={self.threshold})"
            )
        if self.rule == "tiles":
            r = self.tile_rule
            inp = f"tiles {r.tile}×{r.tile} (budget {r.budget}, {r.aggregate})"
        else:
            inp = f"resize {self.input_size}×{self.input_size}"
        backend = getattr(self.runner, "name", "?")
        return (
            f"Detector(name={self.name!r}, backend={backend!r}, device={str(self.device)!r}, "
            f"input={inp!r}, threshold={self.threshold})"
        )

    def describe_input(self) -> str:
        """How images are brought to the model's input, in words (for reports)."""
        if self.routes:
            return "; ".join(
                (f"images up to {m} px on the longer side" if m is not None else "other images")
                + f": {d.name} ({d.describe_input()})"
                for m, d in self.routes
            )
        return str(self.config.get("preprocessing", self.rule))

    # ---- pre-processing (shared by every backend) --------------------------------------

    def member_for(self, size: tuple[int, int]) -> Detector:
        """The model that takes an image of `size` (w, h): itself, or the first route that fits."""
        if not self.routes:
            return self
        for max_side, det in self.routes:
            if max_side is None or max(size) <= max_side:
                return det.member_for(size)
        raise AssertionError("the last route takes every size")

    def arrays(self, img: Image.Image) -> np.ndarray:
        """The model input for one opened image: 1×S×S×3 (resize) or T×t×t×3 tiles (uint8)."""
        if self.rule == "resize":
            return to_model_input(img, self.input_size)[None]
        return self.arrays_rgb(load_rgb(img))

    def arrays_rgb(self, rgb: np.ndarray):
        """`arrays` of a tiles or fusion model from the decoded H×W×3 image (decoded once:
        a 12-MP photo costs tens of milliseconds each time)."""
        if self.fusion:
            from fakescope.clip import view
            from fakescope.fusion import FusionInput

            tiles, e = self.fusion["tiles"].tile_input(rgb)
            return FusionInput(tiles, view(rgb), e)
        return self.tile_input(rgb)[0]

    def tile_input(self, rgb: np.ndarray) -> tuple[np.ndarray, float]:
        """(tiles, evidence) of a tiles model for the decoded image: its tiles and its area in
        tiles (at most their count; `fakescope.tiles.evidence`)."""
        a = pad_to(restore_scale(rgb, self.tile_rule)[0], self.input_size)
        t = cut(a, self.tile_rule)[0]
        return t, evidence(a.shape[0], a.shape[1], len(t), self.tile_rule)

    def preprocess(self, image: ImageSource) -> np.ndarray:
        """Any image -> this model's input arrays (see `arrays`); raises `ImageError`."""
        img = open_image(image)
        return self.member_for(img.size).arrays(img)

    def _prepare(self, image: ImageSource) -> tuple[Detector, np.ndarray, Any] | str:
        try:
            image = url_bytes(image)  # an http(s) URL: downloaded with the CLI's limits
            img = open_image(image)
            member = self.member_for(img.size)
            rgb = None if member.rule == "resize" else load_rgb(img)
            arrays = member.arrays(img) if rgb is None else member.arrays_rgb(rgb)
            evidence = None
            if self.metadata and not isinstance(image, np.ndarray):
                from fakescope.provenance import read_evidence

                evidence = read_evidence(image)
            note = caution = ""
            if member.scope_check:
                from fakescope.scope import measure

                sc = measure(load_rgb(img) if rgb is None else rgb)
                note, caution = sc.note, sc.caution
            return member, arrays, (evidence, note, caution)
        except ImageError as e:
            return str(e)
        except OSError as e:
            return f"cannot read file: {e.strerror or e}"
        except MemoryError:
            return "out of memory decoding this image"

    # ---- scoring ------------------------------------------------------------------------

    def logits_arrays(self, x: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Raw network logits (before aggregation and calibration) for pre-processed uint8
        N×H×W×3 arrays; flip TTA when the model asks for it."""
        if self.runner is None:
            raise FakescopeError("a routing detector scores images, not arrays")
        bs = batch_size or self.runner.batch_size
        out = []
        for i in range(0, len(x), bs):
            xb = x[i : i + bs]
            z = self.runner(xb)
            if self.tta == "flip":
                z = (z + self.runner(np.ascontiguousarray(xb[:, :, ::-1]))) / 2
            out.append(z)
        return np.concatenate(out) if out else np.zeros(0)

    def score_arrays(self, x: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """prob_fake (calibrated) for pre-processed uint8 N×H×W×3 arrays, one per array."""
        return apply_calibration(self.logits_arrays(x, batch_size), self.calibration)

    def image_logit(self, tile_logits: np.ndarray) -> float:
        """One image's raw logit from its arrays' logits."""
        if self.rule == "tiles":
            return aggregate(tile_logits, self.tile_rule)
        return float(tile_logits[0])

    def _iter_scored(
        self, images: Iterable[ImageSource], batch_size: int | None, workers: int | None
    ) -> Iterator[tuple[ImageSource, Detector | None, float | None, str, Any]]:
        """(image, model, raw logit, "", evidence) or (image, None, None, error, None), in input
        order.

        Images are decoded in threads with a bounded look-ahead (each keeps only its model
        input, never the decoded photo), then scored in network batches of about `batch_size`
        arrays (tiles or thumbnails), so memory stays bounded for any number of images."""
        workers = workers or min(4, os.cpu_count() or 1)
        batch_size = batch_size or 256
        lookahead = 2 * workers + (batch_size if self.rule == "resize" else 8)
        ready: list[tuple[ImageSource, tuple[Detector, np.ndarray, Any] | str]] = []
        n_arrays = 0
        with ThreadPoolExecutor(max_workers=workers) as pool:
            pending: deque = deque()
            it = iter(images)
            for img in it:
                pending.append((img, pool.submit(self._prepare, img)))
                if len(pending) >= lookahead:
                    break
            while pending:
                img, fut = pending.popleft()
                nxt = next(it, _END)
                if nxt is not _END:
                    pending.append((nxt, pool.submit(self._prepare, nxt)))
                item = fut.result()
                ready.append((img, item))
                n_arrays += 0 if isinstance(item, str) else len(item[1])
                if n_arrays >= batch_size:
                    yield from self._score_ready(ready)
                    ready, n_arrays = [], 0
            if ready:
                yield from self._score_ready(ready)

    def _score_ready(self, ready) -> Iterator[tuple[ImageSource, Detector | None, float, str, Any]]:
        """Score prepared images: one network pass per model over all their arrays."""
        groups: dict[int, list[int]] = {}
        for i, (_, item) in enumerate(ready):
            if not isinstance(item, str):
                groups.setdefault(id(item[0]), []).append(i)
        logits: dict[int, float] = {}
        for idx in groups.values():
            member = ready[idx[0]][1][0]
            z = member.image_logits([ready[i][1][1] for i in idx])
            logits.update(zip(idx, z, strict=True))
        for i, (img, item) in enumerate(ready):
            if isinstance(item, str):
                yield img, None, None, item, None
            else:
                yield img, item[0], logits[i], "", item[2]

    def image_logits(self, parts: list) -> list[float]:
        """Raw image logits for several images' pre-processed inputs (`arrays`), in one network
        pass per model: tiles of all images together, and for a fusion model all CLIP views
        together."""
        if self.fusion:
            tiles = self.fusion["tiles"].image_logits([p.tiles for p in parts])
            from fakescope.clip import shared_encoder

            emb = shared_encoder().embed(np.stack([p.view for p in parts]))
            e = np.array([p.evidence for p in parts])
            z = self.fusion["combiner"](np.array(tiles), self.fusion["head"](emb), e)
            return [float(v) for v in z]
        z = self.logits_arrays(np.concatenate(parts))
        ends = np.cumsum([len(x) for x in parts])
        return [self.image_logit(z[end - len(x) : end]) for end, x in zip(ends, parts, strict=True)]

    def row(
        self, path: str, logit: float | None, error: str = "", note: str = "", caution: str = ""
    ) -> dict[str, Any]:
        """A result row from this (single) model's raw logit; a `note` (out of scope) makes
        the verdict `uncertain` and says why; a `caution` (graphic-like, `fakescope.scope`)
        does so only for a `fake` verdict."""
        if logit is None:
            return dict.fromkeys(ROW_FIELDS, "") | {
                "path": path,
                "prob_fake": None,
                "label": None,
                "error": error,
            }
        prob = float(apply_calibration(np.array([logit]), self.calibration)[0])
        label = "uncertain" if note else verdict(prob, self.threshold, self.uncertain)
        if label == "fake" and caution:
            label, note = "uncertain", caution
        return {
            "path": path,
            "prob_fake": round(prob, 6),
            "label": label,
            "model": self.name,
            "provenance": "",
            "verdict_source": "pixels",
            "note": note,
            "error": "",
        }

    def iter_predict(
        self,
        images: Iterable[ImageSource],
        batch_size: int = 256,
        workers: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Stream rows (`ROW_FIELDS`) for any number of images, in order; an unreadable image
        yields a row with `error` set."""
        for img, member, logit, error, extra in self._iter_scored(images, batch_size, workers):
            if member is None:
                yield self.row(_name_of(img), None, error)
                continue
            evidence, note, caution = extra
            row = member.row(_name_of(img), logit, note=note, caution=caution)
            if evidence is not None:
                from fakescope.provenance import combine

                row = combine(row, evidence)
            yield row

    def iter_logits(
        self, images: Iterable[ImageSource], batch_size: int = 256
    ) -> Iterator[tuple[float | None, str]]:
        """(raw logit before calibration, "") or (None, error) per image, in order; for fitting
        calibration and for measurements that need the model's own score."""
        for _, _, logit, error, _ in self._iter_scored(images, batch_size, None):
            yield logit, error

    def predict(self, image: ImageSource) -> dict[str, Any]:
        """One row (`ROW_FIELDS`) for one image; raises `ImageError` if it cannot be read."""
        (row,) = self.iter_predict([image], batch_size=1, workers=1)
        if row["error"]:
            raise ImageError(row["error"])
        return row

    def predict_batch(
        self, images: Iterable[ImageSource], batch_size: int = 256
    ) -> list[dict[str, Any]]:
        """Rows for many images; bad images get an `error` instead of raising."""
        return list(self.iter_predict(images, batch_size))

    def explain(self, image: ImageSource, method: str = "gradcam"):
        """Grad-CAM for the predicted class over the whole image -> `Explanation` (`.image`: the
        image as scored, `.heatmap` in [0, 1] of the same size, `.overlay`, `.panel()`). Needs
        the PyTorch backend and the `explain` extra."""
        from fakescope.explain import explain_image

        img = open_image(url_bytes(image))
        member = self.member_for(img.size)
        if member.fusion:  # the heatmap is the tile view's (CLIP sees the image as a whole)
            member = member.fusion["tiles"]
        if member.model is None:
            raise FakescopeError(
                "explanations need the PyTorch backend: pip install 'fakescope[torch]'"
            )
        return explain_image(member, img, method)


_END = object()
_fallback_warned: set[str] = set()


def _load_fusion(cls, path, config, name, device, backend, metadata) -> Detector:
    """A fusion folder: its tile model + CLIP head + combiner; the tile model alone (and a
    note on stderr, once) when the CLIP encoder is not installed."""
    import sys

    from fakescope import clip
    from fakescope.fusion import HEAD_FILE, Combiner, Head

    spec = config["fusion"]
    tiles_ref = spec["tiles"]
    if "/" not in tiles_ref:  # a folder inside this one, else beside it, else a shipped name
        for base in (path, path.parent):
            if (base / tiles_ref / CONFIG).is_file():
                tiles_ref = str(base / tiles_ref)
                break
    tiles = cls.load(tiles_ref, device=device, backend=backend, metadata=metadata)
    if clip.find_encoder() is None:
        if name not in _fallback_warned:
            _fallback_warned.add(name)
            print(
                f"note: the CLIP encoder is not installed, so {name} scores photos with its "
                f"tile model {tiles.name} alone (its own threshold); for both views, "
                f"{clip.SETUP_HINT.removeprefix('run ')}",
                file=sys.stderr,
            )
        return tiles
    head_file = path / HEAD_FILE
    expected = spec.get("head_sha256")
    if expected and sha256_file(head_file) != expected:
        raise FakescopeError(f"{head_file}: SHA-256 does not match {CONFIG}")
    parts = {
        "tiles": tiles,
        "head": Head.load(head_file),
        "combiner": Combiner.from_config(spec["combiner"]),
    }
    return cls(config=config, name=name, metadata=metadata, fusion=parts)


def _name_of(image: ImageSource) -> str:
    if isinstance(image, str | os.PathLike):
        return str(image)
    if isinstance(image, np.ndarray):
        return "<array>"
    return getattr(image, "filename", "") or "<image>"
