"""Hostile inputs at scale (issue 31): the fuzzer's regression files and a short seeded run.

The long campaign is `benchmarks/fuzz.py` (numbers in BENCHMARKS.md); this runs the same code
on a fixed seed for a few thousand inputs, so that a change that lets a parser crash, hang or
blow up memory on a mutated file fails here.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import pytest

from fakescope.cli import main
from tests.fuzz.runner import run_campaign
from tests.fuzz.targets import ARCHIVE_TARGETS, SMALL_MODEL, TARGETS, run_target

REGRESSIONS = Path(__file__).parent / "fuzz" / "regressions"
FILES = sorted(p for p in REGRESSIONS.iterdir() if p.suffix != ".md")
ARCHIVES = {p for p in FILES if p.name.endswith((".zip", ".tar.gz"))}
VALID_PIXELS = {"tiff-thin-strip-16bit.tif"}
# Short run: about 45 s on a shared 2-core CPU, most of it starting the worker processes.
SHORT_PLAN = {
    "decode": 3000,
    "evidence": 3000,
    "archive": 1500,
    "predict_small": 200,
    "predict_default": 40,
    "inspect": 100,
    "scan": 100,
    "rest": 150,
}
PEAK_RSS_MB = {"predict_default": 2048}  # the photo models and the CLIP encoder
PEAK_RSS_MB_OTHERS = 1024


def _cases() -> list[tuple[Path, str]]:
    out = []
    for f in FILES:
        for t in TARGETS:
            if (t in ARCHIVE_TARGETS) == (f in ARCHIVES):
                out.append((f, t))
    return out


def test_regression_files_are_present():
    assert len(FILES) >= 8 and ARCHIVES
    listed = (REGRESSIONS / "README.md").read_text()
    assert all(f"`{f.name}`" in listed for f in FILES)  # each says what it broke


@pytest.mark.parametrize(("path", "target"), _cases(), ids=lambda x: getattr(x, "name", x))
def test_regression_file_ends_in_one_clean_error(path: Path, target: str):
    with warnings.catch_warnings(), tempfile.TemporaryDirectory() as tmp:
        warnings.simplefilter("ignore")  # Pillow warns about the corrupt EXIF these carry
        out = run_target(target, path.read_bytes(), path.name, Path(tmp))
    if path.name in VALID_PIXELS:  # a bomb, not a broken file: decoded, or refused by a limit
        assert out.status in ("ok", "error"), out.detail
    else:
        assert out.status == "error", out.detail  # a broken file: one clean error, no crash


def test_predict_cli_on_the_regression_files(capsys):
    code = main(["predict", str(REGRESSIONS), "--model", SMALL_MODEL, "--device", "cpu"])
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in err
    images = [f for f in FILES if f not in ARCHIVES]
    assert sum(f.name in line for line in out.splitlines() for f in images) == len(images)


def test_runner_catches_hangs_dead_workers_and_crashes(tmp_path):
    """What "0 hangs, 0 crashes" rests on: the runner sees each, saves the input, and goes on
    with a fresh worker."""
    report = run_campaign({"_selftest": 5}, time_limit_s=2, save_to=tmp_path)
    kinds = sorted(f.kind for f in report.findings)
    assert kinds == ["crash", "died", "hang"] and report.counts["_selftest"]["ok"] == 2
    assert "ValueError: boom" in next(f.detail for f in report.findings if f.kind == "crash")
    assert len(list(tmp_path.glob("*.txt"))) == 3


@pytest.mark.slow
def test_scan_of_a_damaged_zip_writes_an_error_row(tmp_path, capsys):
    """The scan worker used to raise on a member that fails to inflate (zlib.error), failing the
    whole scan; now that member is an error row and the others are scored."""
    out = tmp_path / "out.csv"
    args = ["scan", str(REGRESSIONS / "zip-member-bad-deflate.zip"), "--output", str(out)]
    code = main([*args, "--model", SMALL_MODEL, "--device", "cpu", "--workers", "1"])
    err = capsys.readouterr().err
    assert "Traceback" not in err and out.exists(), err
    rows = out.read_text().splitlines()[1:]
    assert any("cannot read file" in r for r in rows) and code in (0, 1)


@pytest.mark.slow
def test_seeded_short_campaign_finds_nothing(tmp_path):
    """Every input ends in a row or one clean error, within the time limit, with bounded
    memory; a finding is saved under tmp_path with its traceback (shown in the failure)."""
    seed = int(os.environ.get("FAKESCOPE_FUZZ_SEED", "2026"))
    report = run_campaign(SHORT_PLAN, seed=seed, save_to=tmp_path)
    shown = [
        f"{f.kind} {f.case.target} #{f.case.index}: {f.detail[-400:]}" for f in report.findings
    ]
    assert not report.findings, "\n".join(shown[:3])
    for target, n in SHORT_PLAN.items():
        counts, peak = dict(report.counts[target]), report.peak_rss_mb[target]
        assert report.total(target) == n and set(counts) == {"ok", "error"}, (target, counts)
        assert peak < PEAK_RSS_MB.get(target, PEAK_RSS_MB_OTHERS), (target, peak)


def test_padding_a_thin_strip_past_the_pixel_limit_is_refused(monkeypatch):
    """What made a 248-byte TIFF cost 5 GB: padding to the tile size multiplies the pixels."""
    import numpy as np

    from fakescope import images
    from fakescope.errors import ImageError

    monkeypatch.setattr(images, "MAX_PIXELS", 2000)
    assert images.pad_to(np.zeros((30, 30, 3), np.uint8), 32).shape == (32, 32, 3)
    with pytest.raises(ImageError, match="padded to 32x100"):
        images.pad_to(np.zeros((100, 5, 3), np.uint8), 32)


def test_16_bit_scaling_is_exact_in_integers():
    import numpy as np

    from fakescope.images import _scale_to_uint8

    a = np.arange(65536, dtype=np.uint16)
    assert (_scale_to_uint8(a, 65535.0) == np.round(a * (255 / 65535)).astype(np.uint8)).all()
