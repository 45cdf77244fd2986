"""What a new user hits in the first minutes (issue 8): clear messages, no silent successes."""

from __future__ import annotations

import pytest

from fakescope.errors import FakescopeError
from fakescope.fileio import ensure_writable_dir, write_text


def test_out_on_an_existing_file_says_so(tmp_path):
    f = tmp_path / "report.txt"
    f.write_text("x")
    with pytest.raises(FakescopeError, match=r"report.txt is a file, not a folder$"):
        ensure_writable_dir(f)
    with pytest.raises(FakescopeError, match=r"cannot create folder .*: .*report.txt is a file"):
        ensure_writable_dir(f / "sub" / "run")
    with pytest.raises(FakescopeError, match=r"is a folder, not a file"):
        write_text(tmp_path, "x")
    assert ensure_writable_dir(tmp_path / "a" / "b").is_dir()
