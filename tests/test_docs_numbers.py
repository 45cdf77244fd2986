"""Numbers the documents quote for a shipped model are the shipped ones (issue 30).

The expected values are read from the shipped folders at test time (`fakescope.results`:
`results.json`, else `config.json`), never typed here, so the test still holds after a model is
re-shipped and `python scripts/results_tables.py` has regenerated the tables; it fails when a
document still quotes the old numbers.

What is checked, in README.md, docs/*.md (not docs/history.md, which keeps earlier releases on
purpose) and examples/README.md:

- every generated block (`<!-- results:NAME -->` ... `<!-- /results -->`) is exactly what the
  shipped results render to: per-source rates, threshold and band;
- thresholds and `uncertain` bands quoted in prose, found by the phrasings the documents use:
  "`MODEL` ... threshold 0.7251", "MODEL 0.7251" (the predict summary line), "0.7251 for
  `MODEL`", and a band "[0.625, 0.825)" or "0.63–0.83" after a model's name; each is compared at
  the precision it is written with, against the model named nearest before it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fakescope.cli import main
from fakescope.results import ModelResults, blocks, fill_blocks, load_results, shipped_results
from tests.conftest import ROOT

DOCS = [ROOT / "README.md", ROOT / "examples" / "README.md"] + sorted(
    p for p in (ROOT / "docs").glob("*.md") if p.name != "history.md"
)
NUM = r"(\d\.\d+)"


@pytest.fixture(scope="module")
def shipped() -> dict[str, ModelResults]:
    return shipped_results()


def _matches(written: str, value: float) -> bool:
    """`written` is `value` at the precision it is written with."""
    decimals = len(written.split(".")[1])
    return round(value, decimals) == float(written)


def quoted_numbers(text: str, names: list[str]) -> list[tuple[str, str, str]]:
    """(model, what, written number) for each threshold or band bound the prose quotes."""
    flat = " ".join(re.sub(r"<!-- results:.*?<!-- /results -->", " ", text, flags=re.S).split())
    # longest names first, so `photo-fusion` is not read as a prefix of another name
    pattern = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    hits = [
        (m.start(), m.end(), m.group(0))
        for m in re.finditer(rf"(?<![\w-])({pattern})(?![\w-])", flat)
    ]
    found = []
    for i, (_, end, name) in enumerate(hits):
        # the text after this name, up to the next name (at most 140 characters)
        stop = hits[i + 1][0] if i + 1 < len(hits) else len(flat)
        window = flat[end : min(stop, end + 140)]
        if m := re.match(rf"`?:? {NUM}(?![\d×x])", window):
            found.append((name, "threshold", m.group(1)))
        for m in re.finditer(rf"threshold (?:is )?\**{NUM}", window):
            found.append((name, "threshold", m.group(1)))
        for m in re.finditer(rf"\[{NUM}, {NUM}\)|(?<![\w.]){NUM}–{NUM}(?![\d×])", window):
            lo, hi = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
            found += [(name, "band low", lo), (name, "band high", hi)]
    for m in re.finditer(rf"{NUM} for `({pattern})`", flat):
        found.append((m.group(2), "threshold", m.group(1)))
    return found


def stale_numbers(text: str, shipped: dict[str, ModelResults]) -> list[str]:
    """What a document quotes that its model's shipped results do not say."""
    wrong = []
    for name, what, written in quoted_numbers(text, list(shipped)):
        r = shipped[name]
        if r.threshold is None:
            continue  # a routing folder has no threshold of its own
        if what == "threshold":
            value = r.threshold
        elif r.uncertain is None:
            wrong.append(f"{name}: quotes an uncertain band {written}, it has none")
            continue
        else:
            value = r.uncertain[0 if what == "band low" else 1]
        if not _matches(written, value):
            wrong.append(f"{name}: {what} written {written}, shipped {value:.6g}")
    return wrong


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_quoted_thresholds_and_bands_are_the_shipped_ones(doc: Path, shipped):
    wrong = stale_numbers(doc.read_text(encoding="utf-8"), shipped)
    assert not wrong, f"{doc.relative_to(ROOT)} quotes stale numbers:\n  " + "\n  ".join(wrong)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_generated_tables_are_current(doc: Path, shipped):
    text = doc.read_text(encoding="utf-8")
    assert text == fill_blocks(text, shipped), (
        f"{doc.relative_to(ROOT)}: a results table differs from the shipped files; run "
        "`python scripts/results_tables.py`"
    )


def test_the_readme_and_models_page_show_every_photo_and_thumbnail_model(shipped):
    readme = dict(blocks((ROOT / "README.md").read_text()))
    models_page = dict(blocks((ROOT / "docs" / "models.md").read_text()))
    assert {"photo-fusion", "cifake-resnet10s"} <= set(readme)
    assert {n for n, r in shipped.items() if r.threshold is not None} <= set(models_page)


def test_the_checker_catches_planted_stale_numbers(shipped):
    """The checks above could fail: old numbers in each phrasing are caught, current ones pass."""
    fusion = shipped["photo-fusion"]
    thr, (lo, hi) = fusion.threshold, fusion.uncertain
    good = (
        f"`photo-fusion` at its threshold {thr:.4f}, `uncertain` in [{lo:.3f}, {hi:.3f}); "
        f"thresholds cifake-resnet10s 0.5; photo-fusion {thr:.4f}; {thr:.2f} for "
        f"`photo-fusion`, shown as {lo:.2f}–{hi:.2f}."
    )
    assert len(quoted_numbers(good, list(shipped))) == 8
    assert stale_numbers(good, shipped) == []
    bad = [
        "photo-fusion scores it 0.59 against its threshold 0.8272",
        "thresholds cifake-resnet10s 0.5; photo-fusion 0.75 (each model's own)",
        "0.75 for `photo-fusion`",
        "for a photo scored by `photo-fusion`, the band 0.65–0.85",
        "`photo-fusion`: `uncertain` in [0.650, 0.850)",
        "`cifake-resnet10s`, threshold 0.6",
    ]
    for text in bad:
        assert stale_numbers(text, shipped), text
    table = "<!-- results:photo-fusion -->\n| aivsreal256 | 3.0% | 60.0% |\n<!-- /results -->"
    assert fill_blocks(table, shipped) != table


def test_the_examples_readme_quotes_the_score_the_readme_shows():
    """examples/README.md names the score and model of `sd-fake-256.jpg` that the README's first
    example prints (that output is checked against a real run by tests/test_examples.py)."""
    row = re.search(
        r"^\s*(\d\.\d{4})\s+(\w+)\s+(\S+)\s+examples/sd-fake-256\.jpg$",
        (ROOT / "README.md").read_text(),
        re.M,
    )
    assert row, "the README's first example scores examples/sd-fake-256.jpg"
    prob, label, model = row.groups()
    text = " ".join((ROOT / "examples" / "README.md").read_text().split())
    assert f"`{model}`" in text and f"`{label}`" in text and prob in text


def test_results_round_trip_through_results_json(tmp_path, shipped):
    from fakescope.results import write_results

    for name, r in shipped.items():
        out = write_results(name, tmp_path / f"{name}.json")
        assert ModelResults.from_json(__import__("json").loads(out.read_text())) == r


def test_models_command_shows_both_rates_per_source_and_limits(capsys, shipped):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    fusion = out.split("\nphoto-fusion", 1)[1]
    r = load_results("photo-fusion")
    for s in r.sources:
        line = next(ln for ln in fusion.splitlines() if ln.strip().startswith(s.source))
        for v in (s.reals_called_fake, s.fakes_caught):
            assert ("—" if v is None else f"{100 * v:.1f}%") in line, line
    assert f"threshold: {r.threshold:.4g}" in fusion
    assert "limits: photos only" in fusion and "accuracy counts only the decided" in fusion
    assert out.count("limits:") == len(shipped)
