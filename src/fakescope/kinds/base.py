"""`Kind`: the interface every kind of model offers the `Detector` (pytorch-grad-cam's `BaseCAM`
is the model: the Detector owns the pipeline, each kind overrides a few hooks)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from fakescope.errors import FakescopeError


@dataclass
class Map:
    """What a kind can show of one image: `image` (H×W×3 uint8, as the model saw it, shrunk
    for viewing), `heatmap` (H×W in [0, 1]), the `method` that made it and `shows`, one
    sentence saying what red means."""

    image: np.ndarray
    heatmap: np.ndarray
    method: str
    shows: str


class Kind:
    """A model the Detector can score with. Subclasses set `kind` and override the hooks."""

    kind = "?"
    # a router has no threshold of its own (each member has one)
    own_threshold = True
    # the decoded H×W×3 array is needed to prepare an image (tiles, CLIP view); a thumbnail
    # model prepares from the opened image alone
    needs_rgb = True

    def __init__(self, config: dict[str, Any], name: str):
        self.config = config
        self.name = name
        # photo models mark graphics, screenshots and text as out of scope (fakescope.scope)
        self.scope_check = bool(config.get("scope_check"))
        self.threshold = float(config.get("threshold", 0.5))
        self.calibration = config.get("calibration")
        self.uncertain = config.get("uncertain")
        self.device: Any = None
        self.batch_size = 64

    # ---- hooks ----------------------------------------------------------------------------

    def member(self, size: tuple[int, int]) -> Kind:
        """The single model that scores an image of `size` (w, h): itself, unless it routes."""
        return self

    def members(self) -> list[Kind]:
        """Every single model an image can be handed to."""
        return [self]

    def prepare(self, img: Image.Image, rgb: np.ndarray | None) -> Any:
        """The model input for one opened image (`rgb`: its decoded array when `needs_rgb`)."""
        raise FakescopeError(f"{self.name} ({self.kind}) scores images through its members")

    def logits(self, parts: list[Any]) -> list[float]:
        """Raw image logits (before calibration) for several images' prepared inputs."""
        raise FakescopeError(f"{self.name} ({self.kind}) scores images through its members")

    def explanation(self, img: Image.Image, rgb: np.ndarray, pred: int, method: str) -> Map:
        """A map of the pixel evidence over the image as this model scores it; `pred` is the
        pixel verdict (1 = fake) for methods that explain a class."""
        raise FakescopeError(f"{self.name} ({self.kind}) has no map of its own")

    def description(self) -> str:
        """One line: what this model is and how it sees an image."""
        raise NotImplementedError

    def purpose(self) -> str:
        """What the model is for, in one sentence (`fakescope models`, the results tables)."""
        return self.config.get("description") or self.description()

    def limits(self, fewest_fakes: int | None = None) -> str:
        """One line a user should read before trusting a verdict (`fewest_fakes`: the smallest
        number of fakes any of its measured sources has)."""
        few = (
            f"; as few as {fewest_fakes} fakes for some sources (wide error bars)"
            if fewest_fakes
            else ""
        )
        return (
            "photos only (graphics, screenshots, text, artworks: `uncertain`, out of scope); "
            "generators outside its training sources are caught far less often "
            f"(leave-one-source-out, model card){few}."
        )

    def network(self) -> Kind:
        """The one network this model is (what `export` writes); a refusal saying what to
        export instead, for kinds without a network of their own."""
        raise FakescopeError(f"{self.name} has no network of its own")

    def own_files(self, folder: Path) -> list[str]:
        """The files of this model's folder (besides config.json) that a copy needs
        (`calibrate` writes a calibrated copy); a refusal where a copy cannot be calibrated."""
        raise FakescopeError(f"{self.name} ({self.kind}) cannot be copied")

    def portable_config(self, folder: Path) -> dict[str, Any]:
        """The config for a copy of this model in another folder (references it resolves
        relative to `folder` made absolute)."""
        return dict(self.config)

    # ---- shared ---------------------------------------------------------------------------

    @property
    def model(self):
        """The PyTorch module, for Grad-CAM (None: this kind has none)."""
        return None

    def band(self) -> str:
        """The threshold and uncertain band, in words."""
        out = f"threshold {self.threshold:.4g}"
        if self.uncertain:
            lo, hi = self.uncertain
            out += f", uncertain in [{lo:.3g}, {hi:.3g})"
        return out

    def card(self) -> dict[str, Any]:
        """What a client needs to know about this model (`fakescope models`, the web API)."""
        card: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "description": self.description(),
            "threshold": self.threshold,
            "uncertain": self.uncertain,
        }
        for key in ("arch", "input_size", "input"):
            card[key] = self.config.get(key)
        for key in ("calibration", "tta"):
            if key in self.config:
                card[key] = self.config[key]
        card["metrics"] = self.config.get("metrics", {})
        return card
