"""A shipped model's measured results, read from one place and rendered for people.

Why: numbers typed into the README, the docs and the model cards drift from the files that
ship. Each model's numbers live once, machine-readable: `results.json` beside its
`config.json` when a release wrote one, else derived here from the `metrics` block of the
config (where the ship scripts put them). `scripts/results_tables.py` writes `results.json` and
regenerates the tables between `<!-- results:NAME -->` and `<!-- /results -->` markers;
`fakescope models` prints the same numbers; `tests/test_docs_numbers.py` fails when a document
quotes another one.

Rates count every image of the split: `reals_called_fake` is the share of real images labelled
`fake`, `fakes_caught` the share of fakes labelled `fake`; an `uncertain` or out-of-scope image
is neither (as a user meets it). `accuracy_decided` leaves the `uncertain` images out.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fakescope.errors import FakescopeError
from fakescope.model_dir import read_config, resolve_model_dir

RESULTS = "results.json"
RESULTS_FORMAT = "fakescope-results/1"
STAMP = "format"  # the results file's own stamp (a model's kind is never asked here)
# metrics keys that describe the training run itself, not a measurement a user meets
_NOT_SOURCES = {"train", "val"}


@dataclass(frozen=True)
class SourceResult:
    """One labelled split scored at the model's shipped threshold."""

    source: str  # what the images are, e.g. "aivsreal256 (validation)"
    n_real: int
    n_fake: int
    reals_called_fake: float | None  # None when the split has no real image
    fakes_caught: float | None  # None when it has no fake
    uncertain: int  # images labelled `uncertain` (or out of scope)
    roc_auc: float | None = None
    auc_against: str | None = None  # the reals a fake-only split was ranked against
    accuracy_decided: float | None = None  # over images not `uncertain`


@dataclass(frozen=True)
class ModelResults:
    """What a model is for and what it was measured to do, at its shipped threshold."""

    model: str
    purpose: str
    threshold: float | None  # None for a routing folder (each member has its own)
    uncertain: tuple[float, float] | None
    sources: list[SourceResult] = field(default_factory=list)
    limits: str = ""
    other: dict[str, Any] = field(default_factory=dict)  # further measurements, as shipped

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["uncertain"] = list(self.uncertain) if self.uncertain else None
        return {STAMP: RESULTS_FORMAT, **d}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ModelResults:
        if d.get(STAMP) != RESULTS_FORMAT:
            raise FakescopeError(f"not a {RESULTS_FORMAT} file ({STAMP} {d.get(STAMP)!r})")
        band = d.get("uncertain")
        return cls(
            model=d["model"],
            purpose=d.get("purpose", ""),
            threshold=d.get("threshold"),
            uncertain=(float(band[0]), float(band[1])) if band else None,
            sources=[SourceResult(**s) for s in d.get("sources", [])],
            limits=d.get("limits", ""),
            other=d.get("other", {}),
        )


def load_results(model: str | os.PathLike) -> ModelResults:
    """A model's results: its `results.json` when present, else derived from `config.json`."""
    path, _ = resolve_model_dir(model)
    name = path.name
    file = path / RESULTS
    if file.is_file():
        try:
            return ModelResults.from_json(json.loads(file.read_text()))
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise FakescopeError(f"cannot read {file}: {e}") from None
    return from_config(name, read_config(path))


def from_config(name: str, cfg: dict[str, Any]) -> ModelResults:
    """Results derived from a config's `metrics` (what every shipped config has today); what
    the model is for and its limits come from its kind (`fakescope.kinds`)."""
    from fakescope.kinds.load import kind_class

    kind = kind_class(cfg, name)(cfg, name)
    band = cfg.get("uncertain")
    sources = [s for key, m in (cfg.get("metrics") or {}).items() if (s := _source(name, key, m))]
    fakes = [s.n_fake for s in sources if s.n_fake]
    return ModelResults(
        model=name,
        purpose=kind.purpose(),
        threshold=float(cfg.get("threshold", 0.5)) if kind.own_threshold else None,
        uncertain=(float(band[0]), float(band[1])) if band else None,
        sources=sources,
        limits=kind.limits(min(fakes) if fakes else None),
        other={
            k: v
            for k, v in (cfg.get("metrics") or {}).items()
            if isinstance(v, dict) and not _source(name, k, v) and k not in _NOT_SOURCES
        },
    )


def _source(model: str, key: str, m: Any) -> SourceResult | None:
    """A metrics entry as a source row: per-source rates (photo releases) or a confusion
    matrix (`fakescope evaluate`); anything else is not one."""
    if not isinstance(m, dict) or key in _NOT_SOURCES:
        return None
    src, _, split = key.rpartition("_")
    # a bare split name ("test") is the model's own data set: cifake-resnet10s -> "cifake test"
    label = f"{src} ({split})" if src else f"{model.split('-')[0]} {split}"
    if "n_real" in m and "n_fake" in m:
        return SourceResult(
            source=label,
            n_real=int(m["n_real"]),
            n_fake=int(m["n_fake"]),
            reals_called_fake=m.get("false_positive_rate"),
            fakes_caught=m.get("detection_rate"),
            uncertain=int(m.get("uncertain") or 0),
            roc_auc=m.get("roc_auc"),
            auc_against=m.get("auc_against"),
            accuracy_decided=m.get("accuracy_decided"),
        )
    cm = m.get("confusion_matrix")
    if cm:  # rows true (real, fake), columns predicted; no uncertain band
        (tn, fp), (fn, tp) = cm
        return SourceResult(
            source=label,
            n_real=tn + fp,
            n_fake=fn + tp,
            reals_called_fake=fp / (tn + fp) if tn + fp else None,
            fakes_caught=tp / (fn + tp) if fn + tp else None,
            uncertain=0,
            roc_auc=m.get("roc_auc"),
            accuracy_decided=m.get("accuracy"),
        )
    return None


# ---- rendering ----------------------------------------------------------------------------


def pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.1f}%"


def threshold_text(r: ModelResults) -> str:
    """`0.7251, uncertain in [0.625, 0.825)`: the precisions the documents quote."""
    if r.threshold is None:
        return "each routed model's own"
    text = f"{r.threshold:.4g}"
    if r.uncertain:
        text += f", `uncertain` in [{r.uncertain[0]:.3g}, {r.uncertain[1]:.3g})"
    return text


def markdown_table(r: ModelResults) -> str:
    """Per source: reals called fake, fakes caught, uncertain, ROC-AUC, images."""
    rows = [
        "| images | reals called fake | fakes caught | uncertain | ROC-AUC | real / fake |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for s in r.sources:
        auc = "—" if s.roc_auc is None else f"{s.roc_auc:.3f}"
        if s.roc_auc is not None and s.auc_against and not s.source.startswith(s.auc_against):
            auc += f" (vs {s.auc_against} reals)"
        rows.append(
            f"| {s.source} | {pct(s.reals_called_fake)} | {pct(s.fakes_caught)} | "
            f"{s.uncertain} | {auc} | {s.n_real:,} / {s.n_fake:,} |"
        )
    return "\n".join(rows)


def markdown_block(r: ModelResults) -> str:
    """The generated part of a document for one model (between its markers)."""
    if r.threshold is None:
        return f"`{r.model}`: {r.purpose} (no measurements of its own)."
    head = f"`{r.model}` at its shipped threshold {threshold_text(r)}"
    return (
        f"{head}:\n\n{markdown_table(r)}\n\n"
        "Rates count every image: an `uncertain` one is neither called fake nor caught. "
        "Generated from the shipped files by `python scripts/results_tables.py`; do not edit."
    )


def text_lines(r: ModelResults) -> list[str]:
    """`fakescope models`' lines for one model's sources (a plain-text table)."""
    if not r.sources:
        return []
    width = max(len(s.source) for s in r.sources)
    lines = [
        f"{'images':<{width}}  reals called fake  fakes caught  uncertain  ROC-AUC  "
        "accuracy of decided (n)  real/fake"
    ]
    for s in r.sources:
        auc = "—" if s.roc_auc is None else f"{s.roc_auc:.3f}"
        decided = s.n_real + s.n_fake - s.uncertain
        acc = "—" if s.accuracy_decided is None else f"{s.accuracy_decided:.3f} ({decided})"
        lines.append(
            f"{s.source:<{width}}  {pct(s.reals_called_fake):>17}  {pct(s.fakes_caught):>12}  "
            f"{s.uncertain:>9}  {auc:>7}  {acc:>23}  {s.n_real}/{s.n_fake}"
        )
    return lines


def shipped_results() -> dict[str, ModelResults]:
    """Every shipped model's results, by name (the default first)."""
    from fakescope.model_dir import available_models

    return {name: load_results(name) for name in available_models()}


def write_results(model: str | os.PathLike, out: Path | None = None) -> Path:
    """Write a model folder's `results.json` from its config's metrics (`out`: elsewhere)."""
    from fakescope.fileio import write_json

    path, _ = resolve_model_dir(model)
    r = from_config(path.name, read_config(path))
    target = out or path / RESULTS
    write_json(target, r.to_json())
    return target


# ---- generated blocks in documents ----------------------------------------------------------

# `<!-- results:NAME -->` ... `<!-- /results -->`: what is between is generated, never typed
BLOCK = re.compile(r"(<!-- results:([\w.-]+) -->\n)(.*?)(<!-- /results -->)", re.S)


def blocks(text: str) -> list[tuple[str, str]]:
    """(model name, current content) of each generated block in a document."""
    return [(m.group(2), m.group(3)) for m in BLOCK.finditer(text)]


def fill_blocks(text: str, results: dict[str, ModelResults] | None = None) -> str:
    """The document with every generated block rendered again from the shipped results."""
    cache = dict(results or {})

    def render(m: re.Match[str]) -> str:
        name = m.group(2)
        if name not in cache:
            cache[name] = load_results(name)
        return f"{m.group(1)}{markdown_block(cache[name])}\n{m.group(4)}"

    return BLOCK.sub(render, text)
