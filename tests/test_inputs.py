"""What `predict` and `explain` take: folder walks that skip non-images, each image once in
first-seen order, nothing-to-score as an error, --output's folders, http(s) URLs (local server)."""

from __future__ import annotations

import csv
import http.server
import io
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fakescope import fetch
from fakescope.cli import main
from fakescope.inputs import Expansion, expand_paths, looks_like_image
from fakescope.model_dir import model_config, save_model
from fakescope.models import build_model
from tests.hostile import bomb_png


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    run = tmp_path_factory.mktemp("tiny")
    save_model(run, build_model("resnet10t"), model_config({"arch": "resnet10t", "image_size": 32}))
    return run


def _png(seed: int = 0, size: int = 40) -> bytes:
    buf = io.BytesIO()
    a = np.random.default_rng(seed).integers(0, 255, (size, size, 3), np.uint8)
    Image.fromarray(a).save(buf, "PNG")
    return buf.getvalue()


def _junk(folder: Path) -> None:
    """What real photo folders hold beside the photos."""
    (folder / "notes.txt").write_text("holiday 2024\n")
    ole = bytes.fromhex("D0CF11E0A1B11AE1") + np.random.default_rng(0).bytes(4000)
    (folder / "Thumbs.db").write_bytes(ole)  # an OLE compound file, as Windows writes it
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + bytes(100))
    (folder / "data.bin").write_bytes(np.random.default_rng(1).bytes(3000))


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(["predict", "-q", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _csv(out: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(out)))


def test_folder_walk_skips_non_images_but_not_broken_images(tiny_model, tmp_path, capsys):
    d = tmp_path / "holiday"
    d.mkdir()
    (d / "beach.png").write_bytes(_png(1))
    (d / "no_extension").write_bytes(_png(2))  # content says image: scored
    _junk(d)
    code, out, err = _run([str(d), "--model", str(tiny_model), "--format", "csv"], capsys)
    assert code == 0, err
    assert [Path(r["path"]).name for r in _csv(out)] == ["beach.png", "no_extension"]
    assert "2 scored" in err and "0 not scored, 4 non-image files skipped" in err

    (d / "broken.jpg").write_bytes(b"an image extension with text inside")
    code, out, err = _run(
        [str(d / "notes.txt"), str(d), "--model", str(tiny_model), "--format", "csv"], capsys
    )
    rows = {Path(r["path"]).name: r for r in _csv(out)}
    assert code == 1
    assert rows["notes.txt"]["error"] and rows["broken.jpg"]["error"]  # named / looks like one
    assert "Thumbs.db" not in rows and "data.bin" not in rows and ".DS_Store" not in rows
    assert (
        "4 non-image files skipped" in err
    )  # the walk skips notes.txt; naming it gave an error row


def test_sniffing_reads_headers_only():
    assert not looks_like_image(__file__)
    assert looks_like_image("x.JPG") and looks_like_image("photo.heic")  # by extension alone


def test_each_image_once_in_first_seen_order(tiny_model, tmp_path, capsys):
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.png").write_bytes(_png(ord(name)))
    args = [
        str(tmp_path / "b.png"),
        str(tmp_path / "*.png"),
        str(tmp_path / "missing.png"),
        f"{tmp_path}/./a.png",
        str(tmp_path),
    ]
    for batch in ("1", "2", "256"):
        code, out, err = _run(
            [*args, "--model", str(tiny_model), "--format", "csv", "--batch-size", batch], capsys
        )
        names = [Path(r["path"]).name for r in _csv(out)]
        assert names == ["b.png", "a.png", "c.png", "missing.png"], (batch, names)
        assert code == 1 and "5 repeated paths skipped" in err
    stats = Expansion()
    assert len(list(expand_paths([str(tmp_path / "a.png")] * 3, stats))) == 1
    assert stats.duplicates == 2


@pytest.mark.parametrize(
    "case", ["empty folder", "only junk", "unmatched glob", "missing file", "bad scheme"]
)
def test_nothing_to_score_is_an_error(case, tiny_model, tmp_path, capsys):
    d = tmp_path / "d"
    d.mkdir()
    if case == "only junk":
        _junk(d)
    arg = {
        "unmatched glob": str(tmp_path / "*.jpeg"),
        "missing file": str(tmp_path / "nope.jpg"),
        "bad scheme": "ftp://example.com/a.jpg",
    }.get(case, str(d))
    out_file = tmp_path / "old.csv"
    out_file.write_text("previous results\n")
    for extra in ([], ["--output", str(out_file)]):
        code, out, err = _run([arg, "--model", str(tiny_model), "--format", "csv", *extra], capsys)
        assert code == 2 and out == "", (case, out)
        assert err.count("error:") == 1 and "nothing to score" in err, err
        assert out_file.read_text() == "previous results\n"  # a failed run leaves it alone
    if case == "only junk":
        assert "4 non-image files skipped" in err


def test_explain_nothing_to_score(tiny_model, tmp_path, capsys):
    (tmp_path / "d").mkdir()
    argv = ["explain", str(tmp_path / "d"), "--model", str(tiny_model), "--out", str(tmp_path)]
    assert main([*argv, "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "nothing to score" in err


def test_output_creates_its_folders_and_is_replaced_whole(tiny_model, tmp_path, capsys):
    (tmp_path / "a.png").write_bytes(_png())
    target = tmp_path / "new" / "dir" / "scores.json"
    argv = [str(tmp_path / "a.png"), "--model", str(tiny_model), "--format", "json"]
    code, out, _ = _run([*argv, "--output", str(target)], capsys)
    assert code == 0 and out == ""
    assert [Path(r["path"]).name for r in json.loads(target.read_text())] == ["a.png"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["scores.json"]  # no temp left
    code, _, err = _run([*argv, "--output", str(tmp_path / "a.png" / "x.csv")], capsys)
    assert code == 2 and "is a file, not a folder" in err


# ---- URLs -----------------------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/cat.png")
            self.end_headers()
        elif self.path == "/to-file":
            self.send_response(302)
            self.send_header("Location", "file:///etc/hostname")
            self.end_headers()
        elif self.path == "/trickle.png":  # a byte every 0.2 s: each read is quick, the whole not
            self.send_response(200)
            self.end_headers()
            try:
                for _ in range(50):
                    self.wfile.write(b"\x89")
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                pass
        elif self.path in self.files:
            body = self.files[self.path]
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            if self.path != "/big-unannounced.png":
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_error(404)


@pytest.fixture()
def server(monkeypatch):
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    _Handler.files = {
        "/cat.png": _png(3),
        "/bomb.png": bomb_png(),
        "/big.png": _png(4, size=300),
        "/big-unannounced.png": _png(5, size=300),
    }
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_urls_are_fetched_with_limits(server, tiny_model, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(fetch, "MAX_BYTES", 100_000)
    monkeypatch.setattr(fetch, "TIMEOUT", 1.5)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))  # where downloads go
    urls = [
        f"{server}/cat.png",
        f"{server}/redirect",
        f"{server}/bomb.png",
        f"{server}/big.png",
        f"{server}/big-unannounced.png",
        f"{server}/nothing-here.png",
        f"{server}/to-file",
        f"{server}/trickle.png",
        f"{server}/cat.png",  # named twice: scored once
    ]
    assert len(_png(4, size=300)) > 100_000
    t0 = time.monotonic()
    code, out, err = _run([*urls, "--model", str(tiny_model), "--format", "csv"], capsys)
    assert time.monotonic() - t0 < 30
    rows = _csv(out)
    assert [r["path"] for r in rows] == urls[:-1], rows
    by = {r["path"].rsplit("/", 1)[1]: r for r in rows}
    assert by["cat.png"]["error"] == "" and by["redirect"]["error"] == ""
    assert by["cat.png"]["prob_fake"] == by["redirect"]["prob_fake"]
    assert "pixels" in by["bomb.png"]["error"]  # the Detector's own pixel limit
    assert "download limit" in by["big.png"]["error"]
    assert "download limit" in by["big-unannounced.png"]["error"]
    assert "HTTP 404" in by["nothing-here.png"]["error"]
    assert "download failed" in by["to-file"]["error"]
    assert "timed out" in by["trickle.png"]["error"]
    assert code == 1 and "2 scored" in err and "1 repeated path skipped" in err
    assert list(tmp_path.iterdir()) == []  # every download removed

    out_dir = tmp_path / "why"
    argv = ["explain", f"{server}/cat.png", "--model", str(tiny_model), "--out", str(out_dir)]
    assert main([*argv, "-q"]) == 0
    capsys.readouterr()
    assert len(list(out_dir.glob("*_cat.png"))) == 1


def test_the_python_api_takes_urls_with_the_clis_limits(server, tiny_model, tmp_path, monkeypatch):
    """Issue 18.10: `det.predict_batch(["http://..."])` downloads like the CLI (size cap,
    deadline, redirects to http(s) only, the pixel limit), rows keep the URL as `path`, and
    nothing is left on disk."""
    from fakescope import Detector
    from fakescope.errors import ImageError

    monkeypatch.setattr(fetch, "MAX_BYTES", 100_000)
    monkeypatch.setattr(fetch, "TIMEOUT", 1.5)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    det = Detector.load(str(tiny_model), device="cpu")
    names = ["cat.png", "redirect", "big.png", "bomb.png", "nothing-here.png", "to-file"]
    names += ["trickle.png"]
    urls = [f"{server}/{n}" for n in names]
    rows = det.predict_batch(urls)
    assert [r["path"] for r in rows] == urls
    by = dict(zip(names, rows, strict=True))
    local = det.predict(_png(3))
    assert by["cat.png"]["error"] == "" and by["cat.png"]["prob_fake"] == local["prob_fake"]
    assert by["redirect"]["prob_fake"] == local["prob_fake"]
    assert "download limit" in by["big.png"]["error"]
    assert "pixels" in by["bomb.png"]["error"]
    assert "HTTP 404" in by["nothing-here.png"]["error"]
    assert "download failed" in by["to-file"]["error"]
    assert "timed out" in by["trickle.png"]["error"]
    assert det.predict(urls[0])["path"] == urls[0]
    with pytest.raises(ImageError, match="HTTP 404"):
        det.predict(f"{server}/nothing-here.png")
    assert list(tmp_path.iterdir()) == []  # every download removed
