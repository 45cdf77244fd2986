"""Atomic file writes: a kill at any moment leaves the old file or the new one, never half."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fakescope.errors import FakescopeError

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` in one rename."""
    path = Path(path)
    if path.is_dir():
        raise FakescopeError(f"{path} is a folder, not a file")
    _no_file_in_the_way(path.parent)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FakescopeError(
            f"cannot write {path}: cannot create its folder {path.parent} ({e.strerror or e})"
        ) from None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as e:
        raise FakescopeError(f"cannot write {path}: {_why_no_new_file(path.parent, e)}") from None
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp (and some writers) make 0600: use the umask
        os.replace(tmp, path)
    except OSError as e:
        raise FakescopeError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _why_no_new_file(folder: Path, e: OSError) -> str:
    """Why no file can be made in an existing `folder`, in words: the errno text alone ("No
    such file or directory" for /proc) names neither the file nor the real reason."""
    reasons = {
        errno.EACCES: "no permission to create files there",
        errno.EPERM: "no permission to create files there",
        errno.EROFS: "it is on a read-only file system",
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is used up",
        errno.ENOENT: "it does not accept new files",
    }
    why = reasons.get(e.errno or 0)
    detail = e.strerror or str(e)
    return (
        f"cannot create a file in {folder}: {why} ({detail})"
        if why
        else (f"cannot create a file in {folder} ({detail})")
    )


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def _no_file_in_the_way(folder: Path) -> None:
    """A folder that must exist or be created: say so plainly when a file stands in its place
    (mkdir's own message would be "File exists" or "Not a directory")."""
    for p in (folder, *folder.parents):
        if p.is_dir():
            return
        if p.exists() or p.is_symlink():
            where = "" if p == folder else f"cannot create folder {folder}: "
            raise FakescopeError(f"{where}{p} is a file, not a folder")


def ensure_writable_dir(path: str | os.PathLike) -> Path:
    """Create `path` and check we can write there, before any long work starts."""
    path = Path(path)
    _no_file_in_the_way(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as e:
        raise FakescopeError(f"output folder {path} is not writable: {e.strerror or e}") from None
    return path
