"""Explanation maps (extra `explain`): Grad-CAM through the `grad-cam` package for thumbnail
networks, and tile maps of fake-evidence for tiled photo networks.

The explained target is always the predicted class: the "fake" logit when the verdict is fake,
its negative when real (`BinaryClassifierOutputTarget(pred)`); `targets=None` would silently
explain class 0 of a one-logit model. The layer is the last stage whose map is at least 4×4 on
the model's input (the ImageNet-stem ResNet-18 leaves 1×1 at layer4 on 32×32 input, where a CAM is
constant). A CAM object hooks the model it is given, and hooks see *every* forward pass of that
model, including other threads' scoring. So each call explains a private deep copy of the model:
no state is shared between calls, and scoring never waits for an explanation.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from fakescope.errors import FakescopeError, missing_extra, require_extra

# Everything the `explain` extra brings, checked before torch is imported: `det.explain()` and
# `fakescope explain` on a light install name that one extra, once (not torch, then grad-cam).
EXPLAIN_NEEDS = {
    "torch": "torch",
    "torchvision": "torchvision",
    "safetensors": "safetensors",
    "matplotlib": "matplotlib",
    "pytorch_grad_cam": "grad-cam",
}
require_extra("explain", EXPLAIN_NEEDS)

import torch  # noqa: E402 - after the check above

from fakescope.choices import METHOD_NAMES  # noqa: E402
from fakescope.models import Classifier, to_input  # noqa: E402

VIEW_SIZE = 256  # small inputs are upscaled for viewing: image nearest-neighbour, heat bilinear
MIN_MAP = 4


def _methods() -> dict[str, type]:
    try:
        import pytorch_grad_cam as pgc
    except ImportError:
        raise missing_extra("grad-cam", "explain") from None
    return {
        "gradcam": pgc.GradCAM,
        "gradcam++": pgc.GradCAMPlusPlus,
        "hirescam": pgc.HiResCAM,
        "xgradcam": pgc.XGradCAM,
        "layercam": pgc.LayerCAM,
        "eigencam": pgc.EigenCAM,
    }


def target_layer(model: Classifier, input_size: int) -> tuple[torch.nn.Module, str, int]:
    """(layer, name, map size): the deepest of layer4..layer2 with a map of >= 4×4."""
    sizes: dict[str, int] = {}
    hooks = [
        getattr(model.net, n).register_forward_hook(
            lambda m, i, o, n=n: sizes.__setitem__(n, o.shape[-1])
        )
        for n in ("layer2", "layer3", "layer4")
    ]
    try:
        with torch.no_grad():
            p = next(model.parameters())
            model(torch.zeros(1, 3, input_size, input_size, device=p.device))
    finally:
        for h in hooks:
            h.remove()
    for name in ("layer4", "layer3", "layer2"):
        if sizes[name] >= MIN_MAP:
            return getattr(model.net, name), name, sizes[name]
    raise FakescopeError(
        f"no layer keeps a {MIN_MAP}×{MIN_MAP} map at input size {input_size}; "
        "Grad-CAM would be constant"
    )


def cam_batch(
    model: Classifier,
    x: np.ndarray,
    preds: np.ndarray,
    input_size: int,
    method: str = "gradcam",
    batch_size: int = 128,
) -> np.ndarray:
    """Heatmaps (N×H×W in [0, 1], input size) for uint8 N×H×W×3 images and predicted labels."""
    methods = _methods()
    if method not in methods:
        raise FakescopeError(f"unknown method {method!r} (choose {', '.join(METHOD_NAMES)})")
    from pytorch_grad_cam.utils.model_targets import BinaryClassifierOutputTarget

    model = copy.deepcopy(model).eval()  # private copy: the CAM's hooks touch nothing shared
    device = next(model.parameters()).device
    layer, _, _ = target_layer(model, input_size)
    out = []
    with methods[method](model=model, target_layers=[layer]) as cam:
        for i in range(0, len(x), batch_size):
            xb = to_input(torch.as_tensor(x[i : i + batch_size]).to(device), False)
            targets = [BinaryClassifierOutputTarget(int(p)) for p in preds[i : i + batch_size]]
            out.append(cam(input_tensor=xb, targets=targets).astype(np.float32))
    heat = np.concatenate(out) if out else np.zeros((0, input_size, input_size), np.float32)
    return np.clip(heat, 0.0, 1.0)


def deletion_drops(
    score: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    preds: np.ndarray,
    heat: np.ndarray,
    fraction: float = 0.1,
    seed: int = 0,
    chunk: int = 1024,
) -> dict[str, np.ndarray]:
    """Faithfulness check: how much the explained logit (of the predicted class) drops when
    `fraction` of each image's pixels are set to the image's mean colour, chosen as

    - `top`: the hottest pixels of its heatmap,
    - `random`: the hottest pixels of a random map at the CAM's resolution (4×4 uniform noise,
      upsampled bilinearly), i.e. random pixels in blobs shaped like a CAM's,
    - `cold`: the coldest pixels of its heatmap.

    Returns per-image drops for each. A faithful map gives top > random > cold. Scattered single
    pixels are not used as the random control: they plant high-frequency artefacts, which are
    evidence in themselves for a fake detector (on CIFAKE they lowered the shipped model's
    score more than any blob-shaped deletion, hot or not, in an exploratory run), so they say
    nothing about where the model looks. `score` maps uint8 N×H×W×3 to prob_fake (e.g.
    `Detector.score_arrays`)."""
    n, h, w = heat.shape
    k = max(1, int(fraction * h * w))
    gen = torch.Generator().manual_seed(seed)
    sign = np.where(np.asarray(preds) == 1, 1.0, -1.0)

    def logit(arr: np.ndarray) -> np.ndarray:
        p = np.clip(score(arr), 1e-6, 1 - 1e-6)
        return np.log(p / (1 - p))

    out: dict[str, list[np.ndarray]] = {"top": [], "random": [], "cold": []}
    for i in range(0, n, chunk):
        xs, hs = x[i : i + chunk], heat[i : i + chunk]
        noise = torch.rand(len(xs), 1, MIN_MAP, MIN_MAP, generator=gen)
        rand = torch.nn.functional.interpolate(noise, size=(h, w), mode="bilinear")[:, 0].numpy()
        base = logit(xs)
        mean = xs.reshape(len(xs), -1, xs.shape[-1]).mean(1).astype(xs.dtype)
        for name, maps in (("top", hs), ("random", rand), ("cold", -hs)):
            order = np.argsort(-maps.reshape(len(xs), -1), axis=1, kind="stable")[:, :k]
            grey = xs.copy()
            flat = grey.reshape(len(xs), h * w, -1)
            flat[np.arange(len(xs))[:, None], order] = mean[:, None, :]
            out[name].append((base - logit(grey)) * sign[i : i + chunk])
    return {name: np.concatenate(v) for name, v in out.items()}


@dataclass
class Explanation:
    """One explained verdict over the whole image: `image` (H×W×3 uint8, the image as scored,
    shrunk for viewing when its longer side exceeds `MAX_VIEW`), `heatmap` (H×W in [0, 1], the
    same size), the verdict, the method and `shows`, what the heatmap means in one sentence."""

    image: np.ndarray
    heatmap: np.ndarray
    prob_fake: float
    label: str
    method: str
    model: str = ""
    shows: str = ""
    row: dict = field(default_factory=dict)  # predict's row for the same image

    @property
    def context(self) -> str:
        """What the map is not, when the verdict is more than the pixels' (metadata, scope)."""
        if self.row.get("verdict_source") == "metadata":
            return (
                f"The verdict comes from the file's metadata ({self.row.get('provenance')}); "
                "the map shows only what the pixels say."
            )
        if self.row.get("note"):
            return f"Verdict uncertain: {self.row['note']}; the map shows what the pixels say."
        return ""

    @property
    def overlay(self) -> Image.Image:
        return overlay(self.image, self.heatmap)

    def panel(self, title: str = "") -> Image.Image:
        return panel(self.image, self.heatmap, self.label, self.prob_fake, title)


MAX_VIEW = 1024  # explanations of large photos are drawn at most this size


def _view_size(h: int, w: int, size: int | None = None) -> tuple[int, int]:
    """(w, h) to draw at: small images upscaled by a whole factor to about VIEW_SIZE (nearest
    neighbour, no invented detail); large ones shrunk to MAX_VIEW; aspect ratio kept."""
    if size is not None:
        f = size / max(h, w)
        return max(1, round(w * f)), max(1, round(h * f))
    if max(h, w) < VIEW_SIZE:
        k = max(1, VIEW_SIZE // max(h, w))
        return w * k, h * k
    return w, h


def overlay(image: np.ndarray, heat: np.ndarray, size: int | None = None) -> Image.Image:
    """Heatmap (jet colours) blended over the image, both at the view size."""
    import matplotlib

    h, w = image.shape[:2]
    vw, vh = _view_size(h, w, size)
    big = np.asarray(Image.fromarray(image).resize((vw, vh), Image.Resampling.NEAREST))
    hm = Image.fromarray((np.clip(heat, 0, 1) * 255).astype(np.uint8)).resize(
        (vw, vh), Image.BILINEAR
    )
    colour = matplotlib.colormaps["jet"](np.asarray(hm) / 255.0)[..., :3] * 255
    return Image.fromarray((0.55 * big + 0.45 * colour).clip(0, 255).astype(np.uint8))


def panel(
    image: np.ndarray, heat: np.ndarray, label: str, prob: float, title: str = ""
) -> Image.Image:
    """[image | overlay] with the verdict and probability written underneath."""
    h, w = image.shape[:2]
    size = VIEW_SIZE if max(h, w) <= VIEW_SIZE else min(max(h, w), 512)
    vw, vh = _view_size(h, w, size)
    canvas = Image.new("RGB", (2 * vw + 12, vh + 36), "white")
    canvas.paste(Image.fromarray(image).resize((vw, vh), Image.Resampling.NEAREST), (4, 4))
    canvas.paste(overlay(image, heat, size), (vw + 8, 4))
    text = f"{label.upper()}  prob_fake={prob:.3f}" + (f"   {title}" if title else "")
    font = ImageFont.load_default(size=16)
    colour = {"fake": "red", "real": "green"}.get(label, "darkorange")
    ImageDraw.Draw(canvas).text((6, vh + 8), text, fill=colour, font=font)
    return canvas


def _view_hw(h: int, w: int) -> tuple[int, int]:
    """(h, w) an explanation is kept at: the image's own, or shrunk to MAX_VIEW on the longer
    side."""
    if max(h, w) <= MAX_VIEW:
        return h, w
    f = MAX_VIEW / max(h, w)
    return max(1, round(h * f)), max(1, round(w * f))


def _shrink(a: np.ndarray, heat: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Image (and heatmap, when given at the image's size) shrunk together so the longer side
    is at most MAX_VIEW."""
    h, w = a.shape[:2]
    vh, vw = _view_hw(h, w)
    if (vh, vw) == (h, w):
        return a, heat
    small = np.asarray(Image.fromarray(a).resize((vw, vh), Image.Resampling.LANCZOS))
    if heat is None:
        return small, None
    hm = np.asarray(Image.fromarray(heat.astype(np.float32)).resize((vw, vh), Image.BILINEAR))
    return small, np.clip(hm, 0, 1)


# Tiles scored for the map of one tiled explanation: half-overlapping tiles of the model's size;
# for 96-px tiles up to about 1600×1200 px they cover every pixel, larger photos get this many
# spread evenly over the whole image (every region sampled, the map interpolated between them).
# Larger tiles get fewer, for the same pixels scored (a 192-px model: 64), so an explanation
# costs about the same whatever the tile size (BENCHMARKS.md, "Explanations").
EXPLAIN_TILES = 256


def explain_budget(tile: int) -> int:
    """Tiles for one explanation map: EXPLAIN_TILES 96-px tiles' worth of pixels."""
    return max(16, min(EXPLAIN_TILES, int(EXPLAIN_TILES * (96 / tile) ** 2)))


def _axis(centres: np.ndarray, n: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """For `n` output pixels whose centres sit at (j + 0.5) / scale in image coordinates: the
    index of the tile centre at or before each, and the linear weight of the next one
    (clamped at both ends, so the map is flat beyond the outermost tile centres)."""
    x = (np.arange(n) + 0.5) / scale
    if len(centres) == 1:
        return np.zeros(n, int), np.zeros(n)
    i = np.clip(np.searchsorted(centres, x, side="right") - 1, 0, len(centres) - 2)
    t = np.clip((x - centres[i]) / (centres[i + 1] - centres[i]), 0.0, 1.0)
    return i, t


def tile_map(
    det, big: np.ndarray, pred: int, hw: tuple[int, int], view_hw: tuple[int, int]
) -> tuple[np.ndarray, int]:
    """(heatmap of `view_hw`, tiles scored) for a tiled model: a grid of half-overlapping
    tiles (at most EXPLAIN_TILES) over the whole image, each scored on its own at native scale
    through the Detector's backend; each tile's probability for the verdict (its prob_fake for
    `fake`, 1 - prob_fake for `real`) is placed at the tile's centre and interpolated
    bilinearly over the image. Forward passes only: no gradients, any backend."""
    from fakescope.calibration import apply_calibration
    from fakescope.tiles import TileRule, cut

    t = det.input_size
    tiles, pos = cut(big, TileRule(tile=t, overlap=0.5, budget=explain_budget(t)))
    p = apply_calibration(det.logits_arrays(tiles), det.calibration)
    vote = p if pred else 1.0 - p
    ys, xs = sorted({y for y, _ in pos}), sorted({x for _, x in pos})
    grid = np.zeros((len(ys), len(xs)))
    for (y, x), v in zip(pos, vote, strict=True):
        grid[ys.index(y), xs.index(x)] = v
    (h, w), (vh, vw) = hw, view_hw
    iy, ty = _axis(np.asarray(ys) + t / 2, vh, vh / h)
    ix, tx = _axis(np.asarray(xs) + t / 2, vw, vw / w)
    if len(xs) == 1:
        rows = np.repeat(grid[:, :1], vw, axis=1)
    else:
        rows = grid[:, ix] * (1 - tx) + grid[:, ix + 1] * tx  # len(ys) × vw
    heat = rows[iy] if len(ys) == 1 else rows[iy] * (1 - ty)[:, None] + rows[iy + 1] * ty[:, None]
    return np.clip(heat, 0, 1).astype(np.float32), len(tiles)


def gradcam_map(
    net, img: Image.Image, rgb: np.ndarray, pred: int, method: str = "gradcam"
) -> tuple[np.ndarray, np.ndarray]:
    """(image, heatmap) for a thumbnail network (`fakescope.kinds.network.Network`): Grad-CAM
    (`method`) for the class `pred` on the model input, mapped back onto the centre square of
    the image the input was cut from (the rest of the image was not seen: heat 0)."""
    x = net.prepare(img, rgb)
    cam = cam_batch(net.model, x, np.array([pred]), net.input_size, method)[0]
    h, w = rgb.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    heat = np.zeros((h, w), np.float32)
    placed = Image.fromarray(cam).resize((side, side), Image.BILINEAR)
    heat[top : top + side, left : left + side] = np.asarray(placed)
    return _shrink(rgb, heat)


def fake_evidence_map(
    net, scaled: np.ndarray, hw: tuple[int, int], rgb: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int]:
    """(image, heatmap, tiles scored) for a tiled network: tiles cut from the image at the
    scale the model scores it (`scaled`, padded to a tile; `hw` its size before padding), each
    region's prob_fake (`tile_map` of the fake class: red = looks generated, whatever the
    verdict), drawn over the decoded image `rgb` (shrunk for viewing). Grad-CAM within 96-px
    tiles cost about a second per tile on a CPU and gave separate squares with gaps on large
    photos, so tiled models do not use it."""
    heat, n = tile_map(net, scaled, 1, hw, _view_hw(*rgb.shape[:2]))
    image, _ = _shrink(rgb)
    return image, heat, n
