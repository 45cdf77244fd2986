"""examples/quickstart.ipynb runs top to bottom on the CPU (issue 18.12): executed here on this
interpreter's kernel, every cell without error, the tables, heatmaps and the ROC curve there.
The evaluation cell skips itself, with a message, when ../shared/data is absent."""

from __future__ import annotations

import importlib.util

import pytest

from tests.conftest import ROOT, SHARED

NOTEBOOK = ROOT / "examples" / "quickstart.ipynb"
pytestmark = pytest.mark.slow


def _runner():
    spec = importlib.util.spec_from_file_location(
        "run_notebook", ROOT / "scripts" / "run_notebook.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.run_notebook


def _text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", "") or out.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def test_quickstart_notebook_executes(monkeypatch):
    monkeypatch.setenv("FAKESCOPE_SHARED_DATA", str(SHARED))
    nb = _runner()(NOTEBOOK, timeout=300)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code)
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    text = "\n".join(_text(c) for c in code)
    assert "cifake-resnet10s" in text and "photo-effnet-lite2" in text  # the DataFrames
    assert "png-parameters:stable-diffusion" in text and "'verdict_source': 'metadata'" in text
    assert "the map shows: tile scores" in text
    pictures = [c for c in code if any("image/png" in o.get("data", {}) for o in c.outputs)]
    heatmaps = [c for c in pictures if "panel()" in c.source]
    assert len(heatmaps) == 2
    roc = next(c for c in code if "roc_curve" in c.source)
    if (SHARED / "sdv1coco" / "sdv1coco-crops256-validation.tar").exists():
        assert "200 images (100 real, 100 fake); ROC-AUC" in _text(roc)
        assert roc in pictures  # the plotted curve
    else:
        assert _text(roc).startswith("skipped: ")
