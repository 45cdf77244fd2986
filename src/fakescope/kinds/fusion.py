"""A fusion of views (`fakescope-fusion/1`): a tile network and a linear head on frozen CLIP
features, combined into one logit (`fakescope.fusion`: the head, the combiner and the rule)."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from PIL import Image

from fakescope.errors import FakescopeError
from fakescope.fusion import ART_NOTE, HEAD_FILE, ArtRule, Combiner, FusionInput, Head
from fakescope.kinds.base import Kind, Map
from fakescope.kinds.network import Network
from fakescope.model_dir import CONFIG, sha256_file

_fallback_warned: set[str] = set()


class Fusion(Kind):
    """Tiles + CLIP. `tiles` is the tile `Network`; `head` and `combiner` as in `fusion`."""

    kind = "fusion"

    def __init__(
        self,
        config: dict[str, Any],
        name: str,
        tiles: Network | None = None,
        head: Head | None = None,
        combiner: Combiner | None = None,
        art: ArtRule | None = None,
    ):
        super().__init__(config, name)
        self.tiles, self.head, self.combiner, self.art = tiles, head, combiner, art
        if tiles is not None:
            self.device, self.batch_size = tiles.device, tiles.batch_size

    @staticmethod
    def tiles_ref(config: dict[str, Any], path) -> str:
        """The tile model as the config names it: a folder inside this one, else beside it,
        else a shipped name."""
        ref = config["fusion"]["tiles"]
        if "/" not in ref:
            for base in (path, path.parent):
                if (base / ref / CONFIG).is_file():
                    return str(base / ref)
        return ref

    @classmethod
    def load(cls, path, config: dict[str, Any], name: str, load_member) -> Kind:
        """Its tile model + CLIP head + combiner; the tile model alone (and a note on stderr,
        once) when the CLIP encoder is not installed: rows then name the tile model."""
        from fakescope import clip

        tiles = load_member(cls.tiles_ref(config, path))
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
        if not isinstance(tiles, Network) or tiles.tile_rule is None:
            raise FakescopeError(f"{path / CONFIG}: fusion.tiles must name a tiled network")
        head_file = path / HEAD_FILE
        expected = config["fusion"].get("head_sha256")
        if expected and sha256_file(head_file) != expected:
            raise FakescopeError(f"{head_file}: SHA-256 does not match {CONFIG}")
        combiner = Combiner.from_config(config["fusion"]["combiner"])
        art = ArtRule.load(head_file, config["fusion"].get("art"))
        return cls(config, name, tiles, Head.load(head_file), combiner, art)

    # the tile network's input rule is this model's (scripts read them from a fusion Detector)
    @property
    def tile_rule(self):
        return self.tiles.tile_rule if self.tiles else None

    @property
    def input_size(self):
        return self.tiles.input_size if self.tiles else None

    @property
    def model(self):
        return self.tiles.model if self.tiles else None

    def description(self) -> str:
        return (
            f"fusion of {self.config['fusion']['tiles']} (native tiles) and a linear probe on "
            f"frozen CLIP ViT-B/16 features (needs `fakescope setup clip`), {self.band()}"
        )

    def card(self) -> dict[str, Any]:
        return {
            **super().card(),
            "input_rule": "native-resolution tiles of "
            f"{self.config['fusion']['tiles']} + the whole image resized for CLIP (224x224)",
        }

    def network(self) -> Kind:
        raise FakescopeError(
            f"{self.name} is a fusion model with no network of its own (its CLIP encoder is "
            f"ONNX already); export its tile model instead: fakescope export --format onnx "
            f"--model {self.config['fusion']['tiles']}"
        )

    def own_files(self, folder) -> list[str]:
        return [HEAD_FILE]

    def portable_config(self, folder) -> dict[str, Any]:
        """The tile model named as the loader resolves it from `folder` (a copy elsewhere
        would not find a folder beside the original)."""
        fusion = {**self.config["fusion"], "tiles": self.tiles_ref(self.config, folder)}
        return {**self.config, "fusion": fusion}

    def prepare(self, img: Image.Image, rgb: np.ndarray | None) -> FusionInput:
        from fakescope.clip import view

        tiles, e = self.tiles.tile_input(rgb)
        return FusionInput(tiles, view(rgb), e)

    def logits(self, parts: list[FusionInput]) -> list[float]:
        """Tiles of all images in one pass, all CLIP views in one pass, then the combiner;
        an image the artwork rule marks gets its scope note (`FusionInput.note`)."""
        from fakescope.clip import shared_encoder

        zt = self.tiles.logits([p.tiles for p in parts])
        emb = shared_encoder().embed(np.stack([p.view for p in parts]))
        if self.scope_check and self.art is not None:
            for p, marked in zip(parts, self.art.marks(emb), strict=True):
                p.note = ART_NOTE if marked else ""
        e = np.array([p.evidence for p in parts])
        return [float(v) for v in self.combiner(np.array(zt), self.head(emb), e)]

    def explanation(self, img: Image.Image, rgb: np.ndarray, pred: int, method: str) -> Map:
        """The tile view's map (CLIP sees the image as a whole and has no map)."""
        m = self.tiles.explanation(img, rgb, pred, method)
        shows = (
            f"{m.shows} (the view of {self.name}'s tile model {self.tiles.name}; CLIP sees "
            "the whole image and has no map)"
        )
        return Map(m.image, m.heatmap, m.method, shows)
