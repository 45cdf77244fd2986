"""The light install: scoring without PyTorch (these tests import nothing from torch).

CI runs this file twice: in the full environment, and in a virtualenv made with a plain
`pip install .` (no torch at all; see .ci/run). Subprocesses block the torch extra's modules
(`sys.modules[name] = None` makes `import name` fail), so the full environment checks the same
thing: that scoring never needs them and every other command says what to install.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import CIFAKE_TEST, _sample_members

pytestmark = pytest.mark.light

TORCH_EXTRA = ("torch", "torchvision", "safetensors", "sklearn", "matplotlib")
HEAVY = TORCH_EXTRA + ("scipy", "onnx", "pandas", "cv2")
BLOCK = f"import sys\nfor m in {TORCH_EXTRA!r}: sys.modules[m] = None\n"


def run_cli(
    args: list[str], block: bool = True, report_modules: bool = False, also: tuple[str, ...] = ()
):
    """`fakescope ARGS` in a fresh interpreter, optionally with the torch extra blocked (and
    the modules `also` names, e.g. another extra's); returns (exit status, stdout, stderr,
    heavy modules that were imported)."""
    more = f"for m in {also!r}: sys.modules[m] = None\n"
    code = (
        (BLOCK if block else "import sys\n")
        + more
        + (
            "from fakescope.cli import main\n"
            f"rc = main({args!r})\n"
            "loaded = {m.split('.')[0] for m, v in sys.modules.items() if v is not None}\n"
            f"heavy = sorted(loaded & set({HEAVY!r}))\n"
            "print('HEAVY=' + ','.join(heavy), file=sys.stderr)\n"
            "sys.exit(rc)\n"
        )
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    lines = p.stderr.splitlines()
    heavy = next((ln[6:] for ln in reversed(lines) if ln.startswith("HEAVY=")), None)
    err = "\n".join(ln for ln in lines if not ln.startswith("HEAVY="))
    return p.returncode, p.stdout, err, heavy


@pytest.fixture(scope="module")
def cifake_sample(tmp_path_factory) -> tuple[list[Path], np.ndarray]:
    """100 real CIFAKE test files (50 per class) on disk, or 4 synthetic images without
    ../shared (then labels are unknown: -1)."""
    d = tmp_path_factory.mktemp("light")
    if CIFAKE_TEST.exists():
        files = _sample_members(CIFAKE_TEST, 50, seed=5)
        paths, labels = [], []
        for i, (name, data) in enumerate(sorted(files.items())):
            p = d / f"{i:03d}.jpg"
            p.write_bytes(data)
            paths.append(p)
            labels.append(1 if "/FAKE/" in name else 0)
        return paths, np.array(labels)
    rng = np.random.default_rng(0)
    paths = []
    for i, size in enumerate([(32, 32), (64, 48), (300, 200), (17, 90)]):
        p = d / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    return paths, np.full(len(paths), -1)


def test_predict_needs_no_torch_and_is_accurate(cifake_sample):
    paths, labels = cifake_sample
    rc, out, err, heavy = run_cli(["predict", *map(str, paths), "--format", "jsonl", "-q"])
    assert rc == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == len(paths) and all(r["error"] == "" for r in rows)
    assert all(0 <= r["prob_fake"] <= 1 for r in rows)
    # `auto` routes: CIFAKE's 32×32 files to the CIFAKE model, larger images to the photo
    # model: the fusion when the CLIP encoder is installed, else its tile model
    from fakescope.clip import find_encoder

    photo = "photo-fusion" if find_encoder() is not None else "photo-effnet-lite2"
    small = [max(Image.open(p).size) <= 64 for p in paths]
    expected = ["cifake-resnet10s" if s else photo for s in small]
    assert [r["model"] for r in rows] == expected
    assert heavy == ""  # not even scipy or onnx: onnxruntime, numpy, Pillow, tqdm
    if labels[0] >= 0:
        correct = np.mean(
            [(r["label"] == "fake") == bool(y) for r, y in zip(rows, labels, strict=True)]
        )
        assert correct >= 0.9, correct  # the shipped model is ~98% accurate on CIFAKE test


def test_predict_imports_nothing_heavy_even_when_torch_is_installed(cifake_sample):
    rc, _, err, heavy = run_cli(["predict", str(cifake_sample[0][0]), "-q"], block=False)
    assert rc == 0, err
    assert heavy == "", f"predict imported {heavy}"


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--data", "x", "--out", "y"],
        ["evaluate", "--data", "x", "--out", "y"],
        ["explain", "a.png", "--out", "y"],
        ["tune", "--data", "x", "--out", "y"],
        ["export", "--format", "onnx", "--model", "cifake-resnet10s"],
        ["predict", "a.png", "--backend", "torch"],
    ],
    ids=lambda a: a[0] if a[0] != "predict" else "predict-backend-torch",
)
def test_torch_commands_say_what_to_install_in_one_line(args, tmp_path):
    rc, _, err, _ = run_cli(args)
    assert rc == 2
    assert err.strip().count("\n") == 0 and err.startswith("error: "), err
    if args[0] == "explain":  # the one extra with everything explain needs (issue 18.9)
        assert "pip install 'fakescope[explain]'" in err, err
    else:
        assert "pip install 'fakescope[torch]'" in err or "pip install 'fakescope[onnx]'" in err


@pytest.mark.parametrize("args", [["models"], ["train", "--help"], ["explain", "--help"]])
def test_the_command_line_itself_needs_no_torch(args):
    """Building the parser (every command's options and choices) must not import the torch
    extra: it runs before any command, the light install's predict included."""
    rc, out, err, _ = run_cli(args)
    assert rc == 0, err
    assert "photo-effnet-lite2" in out or "usage" in out


@pytest.mark.parametrize("torch_too", [True, False], ids=["light", "light+torch"])
def test_serve_without_its_extra_is_one_line(torch_too):
    """Issue 18.1: the light install (and light + [torch]) has no FastAPI."""
    rc, out, err, _ = run_cli(["serve", "--port", "0"], block=torch_too, also=("fastapi",))
    assert rc == 2, err
    assert err.strip().count("\n") == 0 and err.startswith("error: "), err
    assert "pip install 'fakescope[serve]'" in err and "Traceback" not in err


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_scan_of_an_archive_needs_no_torch(kind, tmp_path):
    """Issue 18.6: listing an archive's members (fakescope.data.sources) must not import
    scikit-learn or torch: `scan photos.zip --output r.csv` works on the light install."""
    import tarfile
    import zipfile

    buf = io.BytesIO()
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(buf, "PNG")
    arc = tmp_path / f"photos.{kind}"
    if kind == "zip":
        with zipfile.ZipFile(arc, "w") as zf:
            zf.writestr("a/one.png", buf.getvalue())
            zf.writestr("a/two.png", buf.getvalue())
    else:
        with tarfile.open(arc, "w") as tf:
            for name in ("a/one.png", "a/two.png"):
                info = tarfile.TarInfo(name)
                info.size = len(buf.getvalue())
                tf.addfile(info, io.BytesIO(buf.getvalue()))
    out = tmp_path / "r.csv"
    rc, _, err, heavy = run_cli(["scan", str(arc), "--output", str(out), "--workers", "1", "-q"])
    assert rc == 0, err
    rows = out.read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("path,prob_fake")
    assert all(f"{kind}://a/" in r for r in rows[1:])
    assert heavy == "", f"scan imported {heavy}"


@pytest.mark.parametrize("torch_too", [True, False], ids=["light", "light+torch"])
def test_explain_names_its_one_extra_once(torch_too, tmp_path):
    """Issue 18.9: `explain` on the light install (or with torch but no grad-cam) asks for
    `[explain]`, which has everything, in one line; the API raises FakescopeError with it."""
    img = tmp_path / "a.png"
    Image.fromarray(np.full((40, 40, 3), 120, np.uint8)).save(img)
    rc, _, err, _ = run_cli(
        ["explain", str(img), "--out", str(tmp_path / "why")],
        block=torch_too,
        also=("pytorch_grad_cam",),
    )
    assert rc == 2 and err.strip().count("\n") == 0, err
    assert err.count("pip install") == 1 and "pip install 'fakescope[explain]'" in err, err
    code = (BLOCK if torch_too else "import sys\n") + (
        "sys.modules['pytorch_grad_cam'] = None\n"
        "from fakescope import Detector\n"
        "from fakescope.errors import FakescopeError\n"
        "det = Detector.load()\n"
        "try:\n"
        f"    det.explain({str(img)!r})\n"
        "except FakescopeError as e:\n"
        "    print('FakescopeError:', e)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    assert p.stdout.startswith("FakescopeError: ") and "fakescope[explain]" in p.stdout, p.stdout
