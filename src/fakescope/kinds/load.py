"""Which kind a model folder is (its config's `format`) and loading it by name or path."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fakescope.errors import FakescopeError
from fakescope.kinds.base import Kind
from fakescope.kinds.fusion import Fusion
from fakescope.kinds.network import Network
from fakescope.kinds.route import Route
from fakescope.model_dir import CONFIG, read_config, resolve_model_dir

# A config without `format` is a single network (the first run folders had none).
KINDS: dict[str, type[Kind]] = {
    "fakescope-model/1": Network,
    "fakescope-fusion/1": Fusion,
    "fakescope-route/1": Route,
}


def kind_class(config: dict[str, Any], where: Path | str = "") -> type[Kind]:
    """The class of a config's kind, from its `format`."""
    fmt = config.get("format")
    if fmt is None:
        for key, name in (("route", "fakescope-route/1"), ("fusion", "fakescope-fusion/1")):
            if key in config:  # a hand-written folder: say what it lacks, not "no arch"
                raise FakescopeError(f'{where}: a config with {key!r} needs "format": "{name}"')
        return Network
    if fmt not in KINDS:
        raise FakescopeError(f"{where}: unknown model format {fmt!r} ({', '.join(KINDS)})")
    return KINDS[fmt]


def model_name(path: Path) -> str:
    """What rows call a model: a shipped model by its name, a user's folder by its folder name
    (never an absolute path: rows, reports and notebooks travel between machines)."""
    return Path(path).name


def load_kind(model: str | os.PathLike | None, device: str = "auto", backend: str = "auto") -> Kind:
    """A loaded model of any kind: a shipped name (default: `DEFAULT_MODEL`) or a folder."""
    path, shipped = resolve_model_dir(model)
    config = read_config(path)
    cls = kind_class(config, path / CONFIG)
    name = model_name(path)
    if cls is Network:
        return Network.load(path, config, name, shipped, device, backend)

    def member(ref: str) -> Kind:
        return load_kind(ref, device=device, backend=backend)

    return cls.load(path, config, name, member)


def describe(model: str | os.PathLike | None) -> Kind:
    """A model's kind built from its config alone (no weights loaded): for descriptions."""
    path, _ = resolve_model_dir(model)
    config = read_config(path)
    return kind_class(config, path / CONFIG)(config, model_name(path))


def model_summary(model: str | os.PathLike | None) -> dict[str, Any]:
    """What `fakescope models` shows of a model folder: one line of description and its
    measured headline metrics."""
    kind = describe(model)
    metrics = [] if isinstance(kind, Route) else _metric_lines(kind.config)
    return {"description": kind.description(), "metrics": metrics}


def _metric_lines(cfg: dict[str, Any]) -> list[str]:
    """Headline lines of a config's measured metrics (those with a ROC-AUC)."""
    lines = []
    for key, m in (cfg.get("metrics") or {}).items():
        if isinstance(m, dict) and m.get("roc_auc") is not None:
            acc = m.get("accuracy", m.get("accuracy_decided"))
            line = f"{key}: " + (f"accuracy {acc:.4f}, " if acc is not None else "")
            line += f"ROC-AUC {m['roc_auc']:.4f}"
            fpr = m.get("fpr", m.get("false_positive_rate"))
            if fpr is not None:
                line += f", false-positive rate {fpr:.4f}"
            n = m.get("n", (m.get("n_real") or 0) + (m.get("n_fake") or 0))
            lines.append(line + f" (n={n})")
    return lines
