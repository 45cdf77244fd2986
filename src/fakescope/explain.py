"""Grad-CAM explanations through the `grad-cam` package (extra `explain`).

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
from dataclasses import dataclass

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
    same size; 0 where the model did not look), the verdict, and the method."""

    image: np.ndarray
    heatmap: np.ndarray
    prob_fake: float
    label: str
    method: str
    model: str = ""

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


def _shrink(a: np.ndarray, heat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Image and heatmap shrunk together so the longer side is at most MAX_VIEW."""
    h, w = a.shape[:2]
    if max(h, w) <= MAX_VIEW:
        return a, heat
    f = MAX_VIEW / max(h, w)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    small = np.asarray(Image.fromarray(a).resize(size, Image.Resampling.LANCZOS))
    hm = np.asarray(Image.fromarray(heat.astype(np.float32)).resize(size, Image.BILINEAR))
    return small, np.clip(hm, 0, 1)


def explain_image(det, img: Image.Image, method: str = "gradcam") -> Explanation:
    """Explain one opened image with a single-model `Detector` (see `Detector.explain`).

    - `resize` models: Grad-CAM on the model input, mapped back onto the centre square of the
      original image the input was cut from (the rest of the image was not seen: heat 0).
    - `tiles` models: Grad-CAM within every tile towards the image's verdict, each tile's map
      weighted by how strongly that tile itself votes for the verdict (sigmoid of its signed
      logit), averaged where tiles overlap; regions no tile covered stay 0.
    """
    from fakescope.images import load_rgb, pad_to
    from fakescope.tiles import cut

    a = load_rgb(img)
    h, w = a.shape[:2]
    if det.rule == "resize":
        x = det.arrays(img)
        logit = det.image_logit(det.logits_arrays(x))
        row = det.row("", logit)
        pred = int(row["prob_fake"] >= det.threshold)
        cam = cam_batch(det.model, x, np.array([pred]), det.input_size, method)[0]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        heat = np.zeros((h, w), np.float32)
        placed = Image.fromarray(cam).resize((side, side), Image.BILINEAR)
        heat[top : top + side, left : left + side] = np.asarray(placed)
    else:
        big = pad_to(a, det.input_size)
        tiles, pos = cut(big, det.tile_rule)
        z = det.logits_arrays(tiles)
        logit = det.image_logit(z)
        row = det.row("", logit)
        pred = int(row["prob_fake"] >= det.threshold)
        cams = cam_batch(det.model, tiles, np.full(len(tiles), pred), det.input_size, method, 16)
        weight = 1 / (1 + np.exp(-(z if pred else -z)))  # the tile's own vote for the verdict
        acc = np.zeros(big.shape[:2], np.float32)
        cnt = np.zeros(big.shape[:2], np.float32)
        t = det.input_size
        for (y0, x0), c, wgt in zip(pos, cams, weight, strict=True):
            acc[y0 : y0 + t, x0 : x0 + t] += c * wgt
            cnt[y0 : y0 + t, x0 : x0 + t] += 1
        heat = (acc / np.maximum(cnt, 1))[:h, :w]
        heat = heat / max(float(heat.max()), 1e-9)
    a, heat = _shrink(a, heat)
    label = row["label"] or "real"
    return Explanation(a, heat, row["prob_fake"], label, method, det.name)
