"""Two views of a photo, one score: native-resolution tiles + frozen CLIP features.

A fusion model folder (`fusion` in its config.json) holds no network of its own. It names a
tile model (a model folder, scored through its own `Detector`: the same pre-processing and
backends), a linear head on CLIP embeddings (`clip_head.safetensors`: `weight` 512, `bias` 1)
and a combiner: the image's logit is

    w_tiles * (tile model's raw image logit) + w_clip * (head's logit on the CLIP embedding) + b
        - small_shift * clip((1/e - 1/ref) / (1 - 1/ref), 0, 1)

fitted by logistic regression on held-out photos that neither view trained on; the folder's own
`calibration` / `threshold` / `uncertain` then apply to that logit like any model's.

Small images, less evidence: an image of one tile (both sides at most one tile, e.g. a 256-px
photo halved) gives the tile view a quarter of the evidence of the 256-px held-out photos the
threshold was set on, and more of its reals cross the threshold (docs/history.md, "Why half-size
photos"). `small_shift` is the logit distance between the threshold the shipped rule sets on
the held-out photos halved (one tile each) and the shipped threshold. Between one tile and
`ref` (the held-out photos' tile count, 4) the shift falls with the image's evidence e, its
area in tiles (`fakescope.tiles.evidence`: overlapping tiles share pixels), in proportion to
the excess variance 1/e - 1/ref of a mean over e tiles; from `ref` tiles on it is 0. A shift,
not a second threshold, so that one threshold, one `prob_fake` and one `uncertain` band hold
for every size: a small image's score is lowered, not judged against a line that the web page,
`evaluate` and `explain` would not know.

When the CLIP encoder is not installed (`fakescope setup clip`), `Detector.load` falls back to
the tile model alone, with its own calibrated threshold, and says so once on stderr: rows then
name the tile model, so a score never silently comes from a different model than it says.

The head is stored as safetensors and read here with numpy (the format is an 8-byte header
length, a JSON header, raw little-endian tensors): the light install has no `safetensors`.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fakescope.errors import FakescopeError

HEAD_FILE = "clip_head.safetensors"
_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64}


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Tensors of a .safetensors file as numpy arrays (float types only)."""
    try:
        raw = path.read_bytes()
        (n,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8 : 8 + n])
    except (OSError, struct.error, ValueError) as e:
        raise FakescopeError(f"cannot read {path}: {e}") from None
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        if t.get("dtype") not in _DTYPES:
            raise FakescopeError(f"{path}: tensor {name} has unsupported dtype {t.get('dtype')}")
        a, b = t["data_offsets"]
        arr = np.frombuffer(raw[8 + n + a : 8 + n + b], dtype=_DTYPES[t["dtype"]])
        out[name] = arr.reshape(t["shape"]).astype(np.float32)
    return out


def write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    """The inverse of `read_safetensors` (float32), written atomically."""
    from fakescope.fileio import write_bytes

    header, blobs, offset = {}, [], 0
    for name, arr in tensors.items():
        b = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        header[name] = {
            "dtype": "F32",
            "shape": list(arr.shape),
            "data_offsets": [offset, offset + len(b)],
        }
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    write_bytes(path, struct.pack("<Q", len(h)) + h + b"".join(blobs))


@dataclass
class Head:
    """A linear probe on L2-normalised CLIP embeddings."""

    weight: np.ndarray  # (512,)
    bias: float

    def __call__(self, emb: np.ndarray) -> np.ndarray:
        return emb.astype(np.float64) @ self.weight.astype(np.float64) + self.bias

    @classmethod
    def load(cls, path: Path) -> Head:
        t = read_safetensors(path)
        return cls(t["weight"].reshape(-1), float(t["bias"].reshape(-1)[0]))


ART_NOTE = (
    "out of scope: looks like an artwork or illustration (a painting, drawing, cartoon or "
    "digital art), not a photo; fakescope judges photos, so it does not call it real or fake"
)


@dataclass
class ArtRule:
    """Artworks and illustrations are not photos: a linear probe on the same CLIP embedding
    (art 1, real photos 0; `art_weight`/`art_bias` in the head file), its `threshold` (a
    logit) set so that about 1% of the training part's real photos are marked. A marked image is
    out of scope: `uncertain` with `ART_NOTE`, never called fake (or real) on its pixels."""

    weight: np.ndarray  # (512,)
    bias: float
    threshold: float

    def __call__(self, emb: np.ndarray) -> np.ndarray:
        return emb.astype(np.float64) @ self.weight.astype(np.float64) + self.bias

    def marks(self, emb: np.ndarray) -> np.ndarray:
        return self(emb) >= self.threshold

    @classmethod
    def load(cls, path: Path, spec: dict | None) -> ArtRule | None:
        """The rule of a head file and its config entry (`fusion.art`); None without one."""
        if not spec:
            return None
        t = read_safetensors(path)
        if "art_weight" not in t:
            raise FakescopeError(f"{path}: the config names an art rule but the file has none")
        return cls(
            t["art_weight"].reshape(-1), float(t["art_bias"].reshape(-1)[0]), spec["threshold"]
        )


@dataclass
class Combiner:
    """The fusion logit from the two views' logits and the image's evidence (area in tiles)."""

    w_tiles: float
    w_clip: float
    bias: float
    small_shift: float = 0.0  # the shift at one tile of evidence
    small_ref: float = 0.0  # evidence (tiles) from which on there is none; 0 = no shift

    def small_weight(self, evidence: np.ndarray) -> np.ndarray:
        """The share of `small_shift` an image of `evidence` tiles gets (1 at one tile)."""
        e = np.maximum(np.asarray(evidence, np.float64), 1.0)
        if self.small_ref <= 1:
            return np.zeros_like(e)
        r = 1.0 / self.small_ref
        return np.clip((1.0 / e - r) / (1.0 - r), 0.0, 1.0)

    def __call__(self, z_tiles: np.ndarray, z_clip: np.ndarray, evidence: np.ndarray) -> np.ndarray:
        z = self.w_tiles * np.asarray(z_tiles) + self.w_clip * np.asarray(z_clip) + self.bias
        return z - self.small_shift * self.small_weight(evidence)

    @classmethod
    def from_config(cls, c: dict) -> Combiner:
        small = c.get("small_images") or {}
        return cls(
            float(c["w_tiles"]),
            float(c["w_clip"]),
            float(c["bias"]),
            float(small.get("shift", 0.0)),
            float(small.get("ref_tiles", 0.0)),
        )


@dataclass
class FusionInput:
    """One image's input to a fusion model: its tiles (for the tile model) and its CLIP view."""

    tiles: np.ndarray  # T×t×t×3 uint8
    view: np.ndarray  # 224×224×3 uint8
    evidence: float  # the image's area in tiles, at most len(tiles) (`fakescope.tiles`)
    # a scope note only the model's features can give (the artwork rule on the CLIP
    # embedding), set when the image is scored; the Detector's verdict reads it
    note: str = ""

    def __len__(self) -> int:  # counted like the tile model's arrays for batching
        return len(self.tiles)
