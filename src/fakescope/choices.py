"""Option values the command line lists in `--help`, kept free of heavy imports.

`build_parser` runs for every command, the torch-free `predict` of the light install included,
so the names it shows must not come from modules that import PyTorch (`models`, `explain`,
`tune`); those modules take them from here and check against them.
"""

from __future__ import annotations

ARCH_NAMES = (
    "resnet18",
    "resnet18_cifar",
    "resnet10s",
    "resnet10t",
    "effnet_lite2",
    "effnet_lite2_npr",
    "effnet_lite2_rgbnpr",
    "effnet_lite0",
    "effnet_lite0_rgbnpr",
)
METHOD_NAMES = ("gradcam", "gradcam++", "hirescam", "xgradcam", "layercam", "eigencam")
LR_RANGE = (1e-4, 1e-2)  # tune: sampled on a log scale
BATCH_SIZES = (16, 32, 64, 128, 256)  # tune
OPTIMIZERS = ("adam", "sgd")  # tune
