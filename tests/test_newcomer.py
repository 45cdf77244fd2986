"""What the second newcomer pass (issue 18) found: formats from file names, user thresholds,
unwritable outputs, empty inputs for every command that takes paths."""

from __future__ import annotations

import csv
import io
import json

import pytest

from fakescope.calibration import verdict
from fakescope.cli import main
from fakescope.detector import Detector
from fakescope.errors import FakescopeError
from fakescope.fileio import write_text
from tests.conftest import ROOT

EXAMPLES = ROOT / "examples"


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("name", "fmt"), [("r.csv", "csv"), ("r.json", "json"), ("r.jsonl", "jsonl"), ("r.txt", None)]
)
def test_predict_output_format_follows_the_file_name(name, fmt, tmp_path, capsys):
    """Issue 18.7: `--output out/r.csv` without --format writes CSV (as scan names its
    format); an explicit --format still wins; an unknown extension gets the table."""
    out = tmp_path / "out" / name
    code, _, err = _run(["predict", str(EXAMPLES), "--output", str(out), "-q"], capsys)
    assert code == 0, err
    text = out.read_text()
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        assert len(rows) == 3 and rows[0]["path"].endswith("cifake-fake.jpg")
    elif fmt == "json":
        assert len(json.loads(text)) == 3
    elif fmt == "jsonl":
        assert [json.loads(line)["error"] for line in text.splitlines()] == [""] * 3
    else:
        assert text.splitlines()[0].split() == ["prob_fake", "label", "model", "path"]
    # --format wins over the name
    code, _, _ = _run(
        ["predict", str(EXAMPLES), "--output", str(out), "--format", "jsonl", "-q"], capsys
    )
    assert code == 0 and len(out.read_text().splitlines()) == 3
    assert all(json.loads(line) for line in out.read_text().splitlines())


def _scores(capsys, *extra: str) -> tuple[list[dict], str]:
    code, out, err = _run(["predict", str(EXAMPLES), "--format", "jsonl", "-q", *extra], capsys)
    assert code == 0, err
    return [json.loads(line) for line in out.splitlines()], err


def test_predict_threshold_sets_the_labels_and_is_shown(capsys):
    """Issue 18.11: the default is each model's calibrated threshold (named in the summary);
    --threshold T labels fake exactly the rows with prob_fake >= T, hard verdicts."""
    rows, err = _scores(capsys)
    members = {d.name: d for _, d in Detector.load(metadata=False).routes}
    photo = list(members.values())[-1]  # photo-fusion, or its tile model without the encoder
    shown = f"thresholds cifake-resnet10s 0.5; {photo.name} {photo.threshold:.4g}"
    assert shown + " (each model's own)" in err
    assert [r["label"] for r in rows] == [
        verdict(r["prob_fake"], members[r["model"]].threshold, members[r["model"]].uncertain)
        for r in rows
    ]
    probs = sorted(r["prob_fake"] for r in rows)
    t = (probs[0] + probs[1]) / 2  # between the lowest score and the next: 2 fakes
    rows_t, err_t = _scores(capsys, "--threshold", f"{t:.6f}")
    assert [r["prob_fake"] for r in rows_t] == [r["prob_fake"] for r in rows]
    assert [r["label"] for r in rows_t] == ["fake" if r["prob_fake"] >= t else "real" for r in rows]
    assert sum(r["label"] == "fake" for r in rows_t) == 2
    assert f"threshold {float(f'{t:.6f}'):g} (--threshold)" in err_t
    assert "3 scored (2 fake, 1 real)" in err_t
    # within the photo model's uncertain band [0.7, 0.9) a user threshold still decides
    rows_hi, _ = _scores(capsys, "--threshold", "0.0")
    assert {r["label"] for r in rows_hi} == {"fake"}


def test_predict_threshold_is_checked(capsys):
    with pytest.raises(SystemExit) as e:
        main(["predict", str(EXAMPLES), "--threshold", "1.5"])
    assert e.value.code == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_unwritable_output_names_the_file_and_the_reason(tmp_path, capsys):
    """Issue 18.11: `--output /proc/x.csv` says which file cannot be written, and why."""
    with pytest.raises(FakescopeError) as e:
        write_text("/proc/fakescope-test.csv", "x")
    msg = str(e.value)
    assert msg.startswith("cannot write /proc/fakescope-test.csv: ") and "/proc" in msg
    assert "does not accept new files" in msg
    code, out, err = _run(
        ["predict", str(EXAMPLES / "cifake-fake.jpg"), "--output", "/proc/x.csv", "-q"], capsys
    )
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: cannot write /proc/x.csv: "), err


@pytest.mark.parametrize("case", ["empty folder", "missing file", "unmatched glob"])
@pytest.mark.parametrize("command", ["predict", "explain", "inspect", "scan"])
def test_every_path_command_refuses_empty_inputs_alike(command, case, tmp_path, capsys):
    """Issue 18.8: `inspect emptydir` and `scan emptydir` exit 2 with one line, as predict and
    explain do, and write nothing."""
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / ".hidden.png").write_bytes(b"x")
    arg = {
        "empty folder": str(empty),
        "missing file": str(tmp_path / "nope.jpg"),
        "unmatched glob": str(tmp_path / "*.webp"),
    }[case]
    extra = {
        "predict": ["--format", "csv"],
        "explain": ["--out", str(tmp_path / "why")],
        "inspect": ["--format", "json"],
        "scan": ["--output", str(tmp_path / "r.csv"), "--workers", "1"],
    }[command]
    code, out, err = _run([command, arg, *extra, "-q"], capsys)
    assert code == 2, (command, case, err)
    assert out == "" and err.count("\n") == 1 and err.startswith("error: nothing to score"), err
    assert not (tmp_path / "r.csv").exists()
    assert not (tmp_path / "why" / "index.html").exists()


# ---- issue 30: the notebook's extra, named instead of a traceback ---------------------------


def test_run_notebook_names_the_missing_extra(tmp_path):
    """Without nbformat (the README's "Everything" install), `scripts/run_notebook.py` says which
    extra to install, in one line, instead of `No module named 'nbformat'`."""
    import subprocess
    import sys

    block = tmp_path / "sitecustomize.py"  # makes nbformat unimportable in the child
    block.write_text(
        "import importlib.util as u\n_f = u.find_spec\n"
        "u.find_spec = lambda n, *a: None if n == 'nbformat' else _f(n, *a)\n"
    )
    env = {"PYTHONPATH": f"{tmp_path}:{ROOT / 'src'}", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "run_notebook.py"), str(EXAMPLES / "x.ipynb")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "missing: nbformat" in proc.stderr and "'.[notebook]'" in proc.stderr, proc.stderr


def test_the_notebook_extra_has_what_the_notebook_needs():
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    names = " ".join(extras["notebook"])
    for need in ("jupyterlab", "nbclient", "nbformat", "ipykernel", "pandas", "fakescope[explain]"):
        assert need in names, need
    description = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["description"]
    assert "CIFAKE-trained" not in description
