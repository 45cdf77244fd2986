"""`fakescope scan`: listing, workers, part files and resume, the local and the Ray engines."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from fakescope.cli import main
from fakescope.errors import FakescopeError
from fakescope.predict import FIELDS, Missing, expand_paths
from fakescope.scan import Scorer, Sink, iter_refs, scan
from tests.conftest import ROOT, make_image_tree
from tests.hostile import make_corpus


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """8 synthetic images and the hostile corpus (valid odd images and broken files)."""
    root = tmp_path_factory.mktemp("scan") / "imgs"
    make_image_tree(root, {"a/real": 4, "a/fake": 4})
    make_corpus(root / "hostile")
    return root


@pytest.fixture(scope="module")
def archives(folder, tmp_path_factory) -> tuple[Path, Path]:
    """The synthetic images (not the corpus) as a zip and a .tar.xz, named relative to `a/`."""
    out = tmp_path_factory.mktemp("arch")
    files = sorted((folder / "a").rglob("*.png"))
    with zipfile.ZipFile(out / "a.zip", "w") as zf:
        for f in files:
            zf.write(f, f.relative_to(folder / "a").as_posix())
        zf.writestr(".hidden.png", b"x")
        zf.writestr("README.txt", "not an image")
    with tarfile.open(out / "a.tar.xz", "w:xz") as tf:
        for f in files:
            tf.add(f, f.relative_to(folder / "a").as_posix())
    return out / "a.zip", out / "a.tar.xz"


def read_rows(path: Path) -> list[dict]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def predict_csv(model: Path, paths: list[str], out: Path) -> dict[str, dict]:
    main(["predict", *paths, "--model", str(model), "--format", "csv", "--output", str(out), "-q"])
    return {r["path"]: r for r in read_rows(out)}


def _env() -> dict[str, str]:
    """For a `python -m fakescope` child: this checkout's source first."""
    pythonpath = os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": pythonpath}


def _member_of(path: str) -> str:
    return path.split("://", 1)[1].split("::", 1)[0]


# ---- listing and scoring, in process ---------------------------------------------------------


def test_listing_follows_predict_and_names_archive_members(folder, archives, tmp_path):
    zip_path, tar_path = archives
    fake_zip = tmp_path / "x.jpg"  # a zip named like an image is an image (that fails)
    shutil.copy(zip_path, fake_zip)
    refs = list(iter_refs([str(folder / "a"), str(zip_path), str(fake_zip), "nothere.png"]))
    plain = [r["path"] for r in refs[:8]]
    assert plain == list(expand_paths([str(folder / "a")]))
    names = sorted(p.relative_to(folder / "a").as_posix() for p in (folder / "a").rglob("*.png"))
    members = [r["path"] for r in refs[:-1] if r["member"]]
    assert members == [f"zip://{n}::{zip_path}" for n in names]  # hidden, README.txt skipped
    assert refs[-2] == {"path": str(fake_zip), "src": str(fake_zip), "member": ""}
    assert isinstance(refs[-1], Missing)
    # file:// is a local path; other fsspec URLs are listed through fsspec
    assert [r["path"] for r in iter_refs([f"file://{folder / 'a'}"])] == plain
    urls = [r["path"] for r in iter_refs([f"local://{folder / 'a'}"])]
    assert urls == [f"file://{p}" for p in plain]


def test_scorer_reads_files_members_and_urls_like_predict(tiny_model, folder, archives, tmp_path):
    zip_path, tar_path = archives
    want = predict_csv(tiny_model, [str(folder / "a")], tmp_path / "p.csv")
    refs = [r for src in (zip_path, tar_path) for r in iter_refs([str(src)])]
    refs += list(iter_refs([f"local://{folder / 'a'}"]))
    gone = tmp_path / "gone.png"
    refs.append({"path": str(gone), "src": str(gone), "member": ""})
    refs.append({"path": "zip://nope.png", "src": str(zip_path), "member": "nope.png"})
    rows = Scorer(str(tiny_model), "cpu", batch_size=5).score(refs)
    assert [r["path"] for r in rows] == [r["path"] for r in refs]
    by_name = {os.path.relpath(p, folder / "a"): r for p, r in want.items()}
    for row in rows[:-2]:
        p = row["path"]
        name = _member_of(p) if "::" in p else os.path.relpath(p[len("file://") :], folder / "a")
        assert str(row["prob_fake"]) == by_name[name]["prob_fake"], row
        assert row["label"] == by_name[name]["label"] and row["error"] == ""
    assert rows[-2]["prob_fake"] is None and rows[-2]["error"] == "no such file"
    assert rows[-1]["prob_fake"] is None and rows[-1]["error"]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_sink_parts_survive_and_merge_once(tmp_path, suffix):
    out = tmp_path / f"r{suffix}"

    def row(i):
        return {"path": f"p{i}", "prob_fake": i / 10, "label": "fake", "model": "m", "error": ""}

    sink = Sink(out, flush_every=2)
    for i in range(5):
        sink.add(row(i))
    # a kill now: two part files were written, the fifth row was not
    assert len(sink.part_files()) == 2 and not out.exists()
    again = Sink(out, flush_every=2)
    assert again.done() == {"p0", "p1", "p2", "p3"}
    again.add(row(4))
    again.add({**row(5), "prob_fake": None, "label": None, "error": "broken"})
    again.finish()
    rows = read_rows(out)
    assert [r["path"] for r in rows] == [f"p{i}" for i in range(6)]
    assert list(rows[0]) == list(FIELDS)
    assert not (tmp_path / f".r{suffix}.parts").exists()
    assert float(rows[3]["prob_fake"]) == 0.3 and rows[5]["error"] == "broken"
    resumed = Sink(out)  # an error row is not done: a re-run tries it again (issue 29)
    assert resumed.done() == {f"p{i}" for i in range(5)} and resumed.retry == {"p5"}


def test_unreadable_output_and_bad_options_are_clear(tiny_model, folder, tmp_path, capsys):
    bad = tmp_path / "r.parquet"
    bad.write_text("not parquet")
    assert main(["scan", str(folder / "a"), "--output", str(bad), "--model", str(tiny_model)]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["scan", str(folder), "--output", str(tmp_path / "r.txt")]) == 2
    assert main(["scan", str(folder), "--output", str(tmp_path / "r.csv"), "--address", "x:1"]) == 2
    assert main(["scan", str(folder), "--output", str(tmp_path / "r.csv"), "--model", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 3 and "Traceback" not in err
    with pytest.raises(FakescopeError, match="unknown engine"):
        scan([str(folder)], tmp_path / "r.csv", engine="spark")


# ---- the local engine: worker processes --------------------------------------------------------


@pytest.mark.slow
def test_local_engine_equals_predict_and_resumes(tiny_model, folder, archives, tmp_path, capsys):
    """Two worker processes over the folder (hostile corpus included), an archive and a missing
    path: the same rows as predict; a re-run with one more source scores only that source."""
    zip_path, _ = archives
    want = predict_csv(tiny_model, [str(folder), "nothere.png"], tmp_path / "p.csv")
    out = tmp_path / "scan.csv"
    opts = ["--output", str(out), "--model", str(tiny_model)]
    opts += ["--workers", "2", "--batch-size", "4", "--flush-every", "7"]
    assert main(["scan", str(folder), "nothere.png", *opts]) == 1  # some files are not images
    err = capsys.readouterr().err
    rows = read_rows(out)
    assert {r["path"] for r in rows} == set(want) and len(rows) == len(want)
    for r in rows:
        assert r == want[r["path"]], r  # every field, prob_fake to the last digit
    n_err = sum(bool(r["error"]) for r in rows)
    assert n_err == 9  # the 8 broken files of the corpus and the missing path
    assert f"{len(rows) - n_err} scored" in err and f"{n_err} not scored" in err

    # the archive's 8 images are new; the 9 error rows are tried again (and fail again: the
    # run says so and exits 1), each kept once
    assert main(["scan", str(folder), "nothere.png", str(zip_path), *opts]) == 1
    err = capsys.readouterr().err
    assert "8 scored" in err and f"{len(rows) - n_err} already in the output" in err
    assert f"{n_err} not scored" in err and f"{n_err} earlier errors retried" in err
    rows2 = read_rows(out)
    assert len(rows2) == len(rows) + 8
    assert {r["path"]: r for r in rows2 if "::" not in r["path"]} == {r["path"]: r for r in rows}
    members = {_member_of(r["path"]): r for r in rows2 if "::" in r["path"]}
    for name, r in members.items():
        assert r["prob_fake"] == want[str(folder / "a" / name)]["prob_fake"]
    assert not list(tmp_path.glob(".scan.csv.parts"))


def _children(pid: int) -> list[int]:
    """Linux: the pids whose parent is `pid` (from /proc; empty elsewhere)."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
def test_sigkill_mid_scan_loses_nothing_written(tiny_model, folder, tmp_path):
    out = tmp_path / "scan.parquet"
    env = _env()
    cmd = [sys.executable, "-m", "fakescope", "scan", str(folder), "--output", str(out), "-q"]
    cmd += ["--model", str(tiny_model), "--workers", "1", "--batch-size", "2", "--flush-every", "2"]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL)
    parts = tmp_path / ".scan.parquet.parts"
    deadline = time.time() + 300
    while len(list(parts.glob("part-*"))) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    workers = _children(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert not out.exists()  # it really was cut short
    if sys.platform == "linux":  # the orphaned workers notice and exit (they poll every 1 s)
        assert workers, "the scan had no worker processes"
        deadline = time.time() + 30
        while any(_alive(p) for p in workers) and time.time() < deadline:
            time.sleep(0.2)
        assert not [p for p in workers if _alive(p)], "scan workers outlived their killed driver"
    kept = Sink(out).done()
    assert len(kept) >= 4
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 1, r.stderr  # the corpus's broken files
    assert f"{len(kept)} already in the output" in r.stderr
    paths = [row["path"] for row in read_rows(out)]
    assert len(paths) == len(set(paths)) == len(list(iter_refs([str(folder)])))
    assert not parts.exists()


# ---- the Ray engine --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_local():
    """One small local Ray instance for the module (its start-up is the expensive part)."""
    ray = pytest.importorskip("ray")
    ray.init(
        num_cpus=2,
        object_store_memory=100 * 2**20,
        include_dashboard=False,
        logging_level="WARNING",
        log_to_driver=False,
        _node_ip_address="127.0.0.1",  # loopback only: the test talks to nothing else
    )
    yield ray
    ray.shutdown()


@pytest.mark.ray
@pytest.mark.slow
def test_ray_engine_equals_predict(ray_local, tiny_model, folder, archives, tmp_path, capsys):
    zip_path, _ = archives
    want = predict_csv(tiny_model, [str(folder)], tmp_path / "p.csv")
    out = tmp_path / "scan.parquet"
    args = ["scan", str(folder), str(zip_path), "--engine", "ray", "--output", str(out)]
    args += ["--model", str(tiny_model), "--workers", "2", "--batch-size", "8", "-q"]
    assert main(args) == 1  # the corpus's broken files
    rows = read_rows(out)
    assert list(rows[0]) == list(FIELDS)
    plain = [r for r in rows if "::" not in r["path"]]
    assert [r["path"] for r in plain] == list(want)  # predict's order
    for r in plain:
        w = want[r["path"]]
        assert (r["prob_fake"] is None) == (w["prob_fake"] == "")
        if r["prob_fake"] is not None:
            assert str(r["prob_fake"]) == w["prob_fake"] and r["label"] == w["label"]
        else:
            assert r["error"] == w["error"] != ""
    members = [r for r in rows if "::" in r["path"]]
    assert len(members) == 8
    for r in members:
        assert str(r["prob_fake"]) == want[str(folder / "a" / _member_of(r["path"]))]["prob_fake"]
    assert "scan (ray)" in capsys.readouterr().err

    # a re-run finds every scored image done and tries only the error rows again (issue 29)
    n_err = sum(bool(r["error"]) for r in rows)
    assert main(args) == 1
    err = capsys.readouterr().err
    assert f"0 scored (0 fake, 0 real), {n_err} not scored, {len(rows) - n_err} already" in err
    key = sorted(rows, key=lambda r: r["path"])
    assert sorted(read_rows(out), key=lambda r: r["path"]) == key

    # another driver joins this running instance with --address, and leaves it running
    address = ray_local.get_runtime_context().gcs_address
    out2 = tmp_path / "zip.csv"
    cmd = [sys.executable, "-m", "fakescope", "scan", str(zip_path), "--engine", "ray"]
    cmd += ["--address", address, "--output", str(out2), "--model", str(tiny_model), "-q"]
    r = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert [(x["path"], float(x["prob_fake"])) for x in read_rows(out2)] == [
        (x["path"], x["prob_fake"]) for x in members
    ]
    assert ray_local.is_initialized() and ray_local.cluster_resources().get("CPU") == 2
