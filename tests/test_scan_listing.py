"""scan's streaming archive listings (issue 31): the same names as zipfile and tarfile give,
without holding every member's header (benchmarks/scan_memory.py measures the memory)."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

from fakescope.data.sources import TarSource, ZipSource
from fakescope.scan import _tar_names, _zip_names
from tests.fuzz.runner import case


def test_zip_listing_matches_zipfile(tmp_path):
    p = tmp_path / "a.zip"
    with zipfile.ZipFile(p, "w") as zf:
        for name in ("dir/", "dir/é画像.png", "a\0b.jpg", "x/y/z.webp"):
            zf.writestr(name, b"data")
    assert list(_zip_names(str(p), chunk=7)) == list(ZipSource(p, 0).names())
    assert list(_zip_names(str(p))) == ["dir/é画像.png", "a", "x/y/z.webp"]


def test_zip_listing_on_mutated_archives_lists_what_zipfile_lists(tmp_path):
    """Differential, on 300 mutated zips: where zipfile lists an archive, the streaming listing
    gives the same names; where it refuses one, the streaming one refuses it too (except a
    corrupt extra field, which zipfile checks and the listing does not read)."""
    p, compared = tmp_path / "m.zip", 0
    for i in range(600):
        c = case(11, "archive", i)
        if not c.name.endswith(".zip"):
            continue
        p.write_bytes(c.data)
        try:
            want = list(ZipSource(p, 0).names())
        except Exception as e:  # noqa: BLE001 - what zipfile raises is what is compared
            if "extra field" not in str(e):
                try:
                    got = list(_zip_names(str(p), chunk=64))
                except Exception:  # noqa: BLE001
                    got = None
                assert got is None, (i, e, got)
            continue
        assert list(_zip_names(str(p), chunk=64)) == want, i
        compared += 1
    assert compared > 100


def test_tar_listing_matches_tarfile_and_forgets_members(tmp_path, monkeypatch):
    p = tmp_path / "a.tar"
    with tarfile.open(p, "w") as tf:
        for name in ("real/1.jpg", "fake/2.png", "notes.txt"):
            info = tarfile.TarInfo(name)
            info.size = 3
            tf.addfile(info, io.BytesIO(b"abc"))
        tf.addfile(tarfile.TarInfo("folder"), None)  # not a file: not listed
    seen: list[int] = []
    real_next = tarfile.TarFile.next

    def next_and_count(self):
        seen.append(len(self.members))
        return real_next(self)

    monkeypatch.setattr(tarfile.TarFile, "next", next_and_count)
    assert list(_tar_names(str(p))) == list(TarSource(Path(p), 0).names())
    assert max(seen[1:4]) <= 1  # the listing held one header at a time
