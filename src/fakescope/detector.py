"""`Detector`: the one way from an image to a score and a verdict.

The CLI (predict, scan, evaluate, explain, ...), the web server and the Python API call this
class. A model is a folder with `config.json` (`fakescope.model_dir`); its `format` chooses the
kind of model (`fakescope.kinds`: one network with its input rule, a fusion of views, a router
by image size), and the kind does the model's part: prepare an image, give its logit, draw its
map. This class owns the pipeline around it: decode (once), score in batches, read the file's
provenance, and the verdict.

The verdict is made in one place, `decide`, in this order:

1. threshold and band: the model's own calibrated `threshold` and `uncertain` band, or a
   user's `threshold` (`--threshold`), which gives hard `fake`/`real` verdicts (the band belongs
   to the model's threshold);
2. the scope rule (`fakescope.scope`, for models with `scope_check`): an image out of scope is
   `uncertain` with a `note` saying why; a graphic-like image is never called `fake` on its
   pixels (`uncertain`, with a note) -- whatever the threshold; a kind may add a note of its
   own when it scores the image (the photo fusion's artwork rule on its CLIP features: a
   painting, drawing or illustration is not a photo);
3. the metadata rule (`fakescope.provenance`): evidence that declares AI generation makes the
   verdict `fake` with `verdict_source` `metadata` -- whatever the threshold.

`prob_fake` is always the pixel score. Every row names the (single) model that scored it, by
name, never by path.

This module imports no torch: scoring through another backend needs none.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from fakescope.calibration import apply_calibration, verdict
from fakescope.errors import FakescopeError, ImageError
from fakescope.fetch import url_bytes
from fakescope.images import ImageSource, load_rgb, open_image
from fakescope.kinds.base import Kind
from fakescope.kinds.fusion import Fusion
from fakescope.kinds.load import load_kind
from fakescope.kinds.network import BACKENDS, Network, pick_backend
from fakescope.kinds.route import Route

__all__ = ["BACKENDS", "ROW_FIELDS", "Detector", "error_row", "pick_backend"]

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


def error_row(path: str, error: str) -> dict[str, Any]:
    """The row of an image that was not scored (the one place such rows are built)."""
    return dict.fromkeys(ROW_FIELDS, "") | {
        "path": path,
        "prob_fake": None,
        "label": None,
        "error": error,
    }


@dataclass
class Prepared:
    """One image ready to score: the member that scores it, its input, and what the verdict
    needs besides the score (provenance evidence, scope note and caution)."""

    member: Kind
    arrays: Any
    evidence: Any = None
    note: str = ""
    caution: str = ""


def _delegate(attr: str, doc: str = "") -> property:
    """A Detector attribute that is its kind's (settable, as scripts and benchmarks do)."""
    return property(
        lambda self: getattr(self.kind, attr),
        lambda self, value: setattr(self.kind, attr, value),
        doc=doc or f"The model's `{attr}`.",
    )


class Detector:
    """Load a model once; score images, arrays or whole batches; explain a verdict.

    `Detector.load(name_or_folder)` is the usual way in; `Detector(kind)` wraps a loaded kind
    (`fakescope.kinds`), and `Detector(module, config, device)` (or `runner=`) a single network
    directly, as training does.
    """

    def __init__(
        self,
        kind: Kind | Any = None,
        config: dict[str, Any] | None = None,
        device=None,
        name: str = "",
        *,
        runner=None,
        metadata: bool = True,
    ):
        if not isinstance(kind, Kind):
            if runner is None:
                from fakescope.backends.torch_runner import TorchRunner

                runner = TorchRunner(kind, device)
            kind = Network(config or {}, name, runner)
        self.kind = kind
        self.metadata = metadata
        self._fusion_view: FusionParts | None = None

    @classmethod
    def load(
        cls,
        model: str | os.PathLike | None = None,
        device: str = "auto",
        backend: str = "auto",
        metadata: bool = True,
    ) -> Detector:
        """A shipped model by name (default: `DEFAULT_MODEL`) or a model folder of any kind.
        `metadata=False` scores pixels only (no provenance evidence is read)."""
        return cls(load_kind(model, device=device, backend=backend), metadata=metadata)

    name = _delegate("name", "The model's name (a shipped name, or its folder's name).")
    config = _delegate("config")
    threshold = _delegate("threshold")
    calibration = _delegate("calibration")
    uncertain = _delegate("uncertain")
    scope_check = _delegate("scope_check")
    device = _delegate("device")
    batch_size = _delegate("batch_size")
    runner = _delegate("runner", "A single network's backend runner.")
    tile_rule = _delegate("tile_rule", "A tiled (or fusion) model's `TileRule`.")
    input_size = _delegate("input_size")
    tta = _delegate("tta")

    @property
    def model(self):
        """The PyTorch module (Grad-CAM needs one; loaded on first use under ONNX Runtime)."""
        return self.kind.model

    @property
    def rule(self) -> str:
        """`resize` or `tiles` for a single network, else the kind (`fusion`, `route`)."""
        return getattr(self.kind, "rule", self.kind.kind)

    @property
    def fusion(self) -> FusionParts | None:
        """A fusion model's parts, `{"tiles": Detector, "head", "combiner"}` (None for other
        kinds); setting `["combiner"]` changes the model, as `scripts/ship_photo_fusion.py`
        does."""
        if not isinstance(self.kind, Fusion):
            return None
        if self._fusion_view is None:
            self._fusion_view = FusionParts(self.kind, self.metadata)
        return self._fusion_view

    @property
    def routes(self) -> list[tuple[int | None, Detector]] | None:
        """A router's (max side, member Detector) pairs (None for other kinds)."""
        if not isinstance(self.kind, Route):
            return None
        return [(m, Detector(k, metadata=self.metadata)) for m, k in self.kind.routes]

    def members(self) -> list[Detector]:
        """Every single model this Detector can hand an image to (itself, unless it routes)."""
        return [Detector(k, metadata=self.metadata) for k in self.kind.members()]

    def member_for(self, size: tuple[int, int]) -> Detector:
        """The model that takes an image of `size` (w, h)."""
        member = self.kind.member(size)
        return self if member is self.kind else Detector(member, metadata=self.metadata)

    def fixed_input_size(self) -> int | None:
        """The side of the square every image is resized to, for a model that sees whole
        images at one size (data-set Grad-CAM reports, training's fast path); None for a
        model that reads images at their own scale."""
        kind = self.kind
        return kind.input_size if isinstance(kind, Network) and kind.tile_rule is None else None

    def card(self) -> dict[str, Any]:
        """The model's description for clients (`fakescope.kinds.base.Kind.card`)."""
        return self.kind.card()

    def __repr__(self) -> str:
        backend = getattr(getattr(self.kind, "runner", None), "name", None)
        where = f", backend={backend!r}, device={str(self.device)!r}" if backend else ""
        thr = "" if isinstance(self.kind, Route) else f", threshold={self.threshold}"
        desc = self.kind.description()
        return f"Detector(name={self.name!r}, {self.kind.kind}: {desc}{where}{thr})"

    def describe_input(self) -> str:
        """How images are brought to the model's input, in words (for reports)."""
        if isinstance(self.kind, Route):
            return "; ".join(
                (f"images up to {m} px on the longer side" if m is not None else "other images")
                + f": {d.name} ({d.describe_input()})"
                for m, d in self.routes or []
            )
        return str(self.config.get("preprocessing", self.rule))

    # ---- a single network's steps (scripts and benchmarks call them) ---------------------

    def arrays(self, img) -> np.ndarray:
        return self.kind.prepare(open_image(img), None)

    def arrays_rgb(self, rgb: np.ndarray):
        """The model input from the decoded H×W×3 image."""
        return self.kind.prepare(None, rgb)

    def tile_input(self, rgb: np.ndarray) -> tuple[np.ndarray, float]:
        """(tiles, evidence) of a tiled model for the decoded image (`Network.tile_input`)."""
        kind = self.kind.tiles if isinstance(self.kind, Fusion) else self.kind
        return kind.tile_input(rgb)

    def logits_arrays(self, x: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Raw network logits for pre-processed uint8 N×H×W×3 arrays (a single network)."""
        if not isinstance(self.kind, Network):
            raise FakescopeError(f"{self.name} ({self.kind.kind}) scores images, not arrays")
        return self.kind.logits_arrays(x, batch_size)

    def score_arrays(self, x: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """prob_fake (calibrated) for pre-processed uint8 N×H×W×3 arrays, one per array."""
        return apply_calibration(self.logits_arrays(x, batch_size), self.calibration)

    def image_logit(self, array_logits: np.ndarray) -> float:
        """One image's raw logit from its arrays' logits."""
        return self.kind.image_logit(array_logits)

    def image_logits(self, parts: list) -> list[float]:
        """Raw image logits for several images' prepared inputs."""
        return self.kind.logits(parts)

    def preprocess(self, image: ImageSource):
        """Any image -> the input of the model that scores it; raises `ImageError`."""
        img = open_image(image)
        member = self.kind.member(img.size)
        return member.prepare(img, load_rgb(img) if member.needs_rgb else None)

    # ---- the pipeline ---------------------------------------------------------------------

    def _prepare(self, image: ImageSource) -> Prepared | str:
        """Decode once, prepare for the member that takes this size, read provenance and the
        scope; an error message instead when the image cannot be read."""
        try:
            image = url_bytes(image)  # an http(s) URL: downloaded with the CLI's limits
            img = open_image(image)
            member = self.kind.member(img.size)
            rgb = load_rgb(img) if member.needs_rgb or member.scope_check else None
            prep = Prepared(member, member.prepare(img, rgb))
            if self.metadata and not isinstance(image, np.ndarray):
                from fakescope.provenance import read_evidence

                prep.evidence = read_evidence(image)
            if member.scope_check:
                from fakescope.scope import measure

                sc = measure(rgb)
                prep.note, prep.caution = sc.note, sc.caution
            return prep
        except ImageError as e:
            return str(e)
        except OSError as e:
            return f"cannot read file: {e.strerror or e}"
        except MemoryError:
            return "out of memory decoding this image"

    def _iter_scored(
        self, images: Iterable[ImageSource], batch_size: int | None, workers: int | None
    ) -> Iterator[tuple[ImageSource, Prepared | str, float | None]]:
        """(image, prepared or error, raw logit or None), in input order.

        Images are decoded in threads with a bounded look-ahead (each keeps only its model
        input, never the decoded photo), then scored in network batches of about `batch_size`
        arrays (tiles or thumbnails), so memory stays bounded for any number of images."""
        workers = workers or min(4, os.cpu_count() or 1)
        batch_size = batch_size or 256
        lookahead = 2 * workers + (batch_size if not self.kind.needs_rgb else 8)
        ready: list[tuple[ImageSource, Prepared | str]] = []
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
                n_arrays += 0 if isinstance(item, str) else len(item.arrays)
                if n_arrays >= batch_size:
                    yield from self._score_ready(ready)
                    ready, n_arrays = [], 0
            if ready:
                yield from self._score_ready(ready)

    def _score_ready(self, ready) -> Iterator[tuple[ImageSource, Prepared | str, float | None]]:
        """Score prepared images: one network pass per member over all their inputs."""
        groups: dict[int, list[int]] = {}
        for i, (_, item) in enumerate(ready):
            if not isinstance(item, str):
                groups.setdefault(id(item.member), []).append(i)
        logits: dict[int, float] = {}
        for idx in groups.values():
            member = ready[idx[0]][1].member
            z = member.logits([ready[i][1].arrays for i in idx])
            logits.update(zip(idx, z, strict=True))
        for i, (img, item) in enumerate(ready):
            if not isinstance(item, str) and not item.note:
                item.note = getattr(item.arrays, "note", "")  # a kind's own scope note
            yield img, item, logits.get(i)

    # ---- the verdict ------------------------------------------------------------------------

    def decide(
        self,
        prob: float,
        member: Kind | None = None,
        *,
        threshold: float | None = None,
        note: str = "",
        caution: str = "",
        evidence=None,
    ) -> dict[str, Any]:
        """The verdict fields of a row (`label`, `verdict_source`, `provenance`, `note`) for a
        pixel score, under the rules in the module docstring, in their order."""
        member = member or self.kind
        if threshold is None:  # 1. threshold and band
            label = verdict(prob, member.threshold, member.uncertain)
        else:
            label = verdict(prob, threshold, None)
        if note:  # 2. scope
            label = "uncertain"
        elif caution and label == "fake":
            label, note = "uncertain", caution
        source, provenance = "pixels", ""
        if evidence is not None:  # 3. metadata
            provenance = evidence.summary()
            if evidence.decisive() is not None:
                label, source = "fake", "metadata"
        return {"label": label, "verdict_source": source, "provenance": provenance, "note": note}

    def _row(
        self, path: str, item: Prepared | str, logit: float | None, threshold: float | None
    ) -> dict[str, Any]:
        if isinstance(item, str):
            return error_row(path, item)
        member = item.member
        prob = float(apply_calibration(np.array([logit]), member.calibration)[0])
        fields = self.decide(
            prob,
            member,
            threshold=threshold,
            note=item.note,
            caution=item.caution,
            evidence=item.evidence,
        )
        return {
            "path": path,
            "prob_fake": round(prob, 6),
            "label": fields["label"],
            "model": member.name,
            "provenance": fields["provenance"],
            "verdict_source": fields["verdict_source"],
            "note": fields["note"],
            "error": "",
        }

    def row(
        self,
        path: str,
        logit: float | None,
        error: str = "",
        note: str = "",
        caution: str = "",
        threshold: float | None = None,
    ) -> dict[str, Any]:
        """A row from this (single) model's raw logit (no provenance)."""
        if logit is None:
            return error_row(path, error)
        prep = Prepared(self.kind, None, None, note, caution)
        return self._row(path, prep, logit, threshold)

    # ---- the public scoring API -------------------------------------------------------------

    def iter_predict(
        self,
        images: Iterable[ImageSource],
        batch_size: int = 256,
        workers: int | None = None,
        threshold: float | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Stream rows (`ROW_FIELDS`) for any number of images, in order; an unreadable image
        yields a row with `error` set. `threshold` replaces the model's (see `decide`)."""
        for img, item, logit in self._iter_scored(images, batch_size, workers):
            yield self._row(_name_of(img), item, logit, threshold)

    def iter_logits(
        self, images: Iterable[ImageSource], batch_size: int = 256
    ) -> Iterator[tuple[float | None, str]]:
        """(raw logit before calibration, "") or (None, error) per image, in order; for fitting
        calibration and for measurements that need the model's own score."""
        for _, item, logit in self._iter_scored(images, batch_size, None):
            yield (None, item) if isinstance(item, str) else (logit, "")

    def predict(self, image: ImageSource, threshold: float | None = None) -> dict[str, Any]:
        """One row (`ROW_FIELDS`) for one image; raises `ImageError` (naming the image) if it
        cannot be read."""
        (row,) = self.iter_predict([image], batch_size=1, workers=1, threshold=threshold)
        if row["error"]:
            raise ImageError(f"{row['path']}: {row['error']}")
        return row

    def predict_batch(
        self, images: Iterable[ImageSource], batch_size: int = 256, threshold: float | None = None
    ) -> list[dict[str, Any]]:
        """Rows for many images; bad images get an `error` instead of raising."""
        return list(self.iter_predict(images, batch_size, threshold=threshold))

    def explain(self, image: ImageSource, method: str = "gradcam", threshold: float | None = None):
        """`predict` + a map -> `Explanation`: the row is `predict`'s for the same image and
        threshold (same preparation, `prob_fake`, label and verdict source); the map is the
        scoring model's (`Kind.explanation`: Grad-CAM for thumbnail networks, the tile map of
        fake-evidence for tiled ones), with `shows` saying what it means. Needs the `explain`
        extra; raises `ImageError` (naming the image) if it cannot be read."""
        from fakescope.explain import Explanation

        image = url_bytes(image)
        row = self.predict(image, threshold=threshold)
        img = open_image(image)
        member = self.kind.member(img.size)
        line = member.threshold if threshold is None else threshold
        m = member.explanation(img, load_rgb(img), int(row["prob_fake"] >= line), method)
        return Explanation(
            m.image, m.heatmap, row["prob_fake"], row["label"], m.method, member.name, m.shows, row
        )


class FusionParts(MutableMapping):
    """`Detector.fusion`: a fusion kind's parts by the names scripts use; `tiles` is a Detector."""

    def __init__(self, kind: Fusion, metadata: bool):
        self._kind = kind
        self._tiles = Detector(kind.tiles, metadata=metadata)

    def __getitem__(self, key: str):
        return self._tiles if key == "tiles" else getattr(self._kind, _part(key))

    def __setitem__(self, key: str, value) -> None:
        setattr(self._kind, _part(key), value.kind if key == "tiles" else value)
        if key == "tiles":
            self._tiles = value

    def __delitem__(self, key: str) -> None:
        raise TypeError("a fusion model's parts cannot be removed")

    def __iter__(self):
        return iter(("tiles", "head", "combiner"))

    def __len__(self) -> int:
        return 3


def _part(key: str) -> str:
    if key not in ("tiles", "head", "combiner"):
        raise KeyError(key)
    return key


_END = object()


def _name_of(image: ImageSource) -> str:
    if isinstance(image, str | os.PathLike):
        return str(image)
    if isinstance(image, np.ndarray):
        return "<array>"
    return getattr(image, "filename", "") or "<image>"
