"""The README's first commands work as pasted: the install one-liner's `fakescope predict` scores
the shipped examples with the shipped model, and the output the README shows is the real one."""

from __future__ import annotations

import hashlib
import re
import shlex

import pytest

from fakescope.cli import main
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
EXAMPLES = ROOT / "examples"


def _install_commands() -> list[str]:
    """The one-line ```bash blocks of the '## Install and run' section (CUDA pin first, then
    the CPU-only variant)."""
    section = README.split("## Install and run", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    assert blocks, "no ```bash block under '## Install and run'"
    for block in blocks:
        lines = [line for line in block.splitlines() if line.strip()]
        assert len(lines) == 1, "an install-and-run command should be one line to paste"
    return [block.strip() for block in blocks]


def _predict_argv(command: str) -> list[str]:
    parts = [p.strip() for p in command.split("&&")]
    predict = [p for p in parts if p.startswith("fakescope predict ")]
    assert len(predict) == 1, parts
    return shlex.split(predict[0])[1:]


def test_readme_one_liner_scores_the_examples(monkeypatch, capsys):
    commands = _install_commands()
    argv = _predict_argv(commands[0])
    assert all(_predict_argv(c) == argv for c in commands)  # every variant ends the same way
    monkeypatch.chdir(ROOT)  # a fresh clone: the command runs from the repository root
    assert main(argv) == 0
    out, err = capsys.readouterr()
    rows = [line.split() for line in out.splitlines()[1:]]
    labels = ("real", "fake", "uncertain")
    assert rows and all(r[1] in labels and 0 <= float(r[0]) <= 1 for r in rows), out
    assert "error" not in out and "0 not scored" in err


def test_readme_shows_the_real_output(monkeypatch, capsys):
    """The README opens with `$ fakescope predict ...` and what that prints (stdout, then the
    summary line from stderr), probabilities to the 4 decimals shown."""
    block = re.search(r"```\n\$ (fakescope predict [^\n]*)\n(.*?)```", README, re.S)
    assert block, "README should open with a fakescope predict example"
    shown = block.group(2).rstrip("\n").splitlines()
    monkeypatch.chdir(ROOT)
    assert main(shlex.split(block.group(1))[1:]) == 0
    out, err = capsys.readouterr()
    got = out.splitlines() + err.splitlines()
    assert len(got) == len(shown), (got, shown)
    assert got[0] == shown[0] and got[-1] == shown[-1]
    for g, s in zip(got[1:-1], shown[1:-1], strict=True):
        (gp, gl, *grest), (sp, sl, *srest) = g.split(), s.split()
        assert (gl, grest) == (sl, srest) and float(gp) == pytest.approx(float(sp), abs=5e-4)


def test_examples_are_small_and_match_their_stated_sources():
    listed = dict(
        (name, digest)
        for digest, name in re.findall(
            r"^([0-9a-f]{64})  (\S+)$", (EXAMPLES / "README.md").read_text(), re.M
        )
    )
    # the images: not the README, nor the quickstart notebook (tests/test_notebook.py)
    files = sorted(p.name for p in EXAMPLES.iterdir() if p.suffix not in (".md", ".ipynb"))
    assert files and sorted(listed) == files
    for name in files:
        data = (EXAMPLES / name).read_bytes()
        assert len(data) < 100_000, name
        assert hashlib.sha256(data).hexdigest() == listed[name], name
