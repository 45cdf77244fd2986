"""From what a user typed (files, folders, globs, URLs) to the images to score, lazily.

- A file named on the command line is always taken: if it is not an image, the user hears so in
  its own error row.
- Folders are walked (sorted, hidden folders skipped) and glob patterns expanded; there, files
  that are not images by extension *and* by content (`notes.txt`, `Thumbs.db`, `.DS_Store`) are
  skipped and counted, while a broken `photo.jpg` is still taken and gets its error row.
- Each image is taken once, in first-seen order (a file named twice, or matched by a glob and
  named directly): the walk remembers the real paths it has handed out.
- http(s) URLs are passed on as they are (`fakescope.fetch` downloads them).

Everything is a generator: a folder of millions of files is never listed at once.
"""

from __future__ import annotations

import glob
import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from fakescope.errors import FakescopeError
from fakescope.fetch import ONLY_HTTP, SCHEME, is_url

# Formats Pillow can identify but that hold data, documents or video rather than pictures
# (stub plugins, or needing Ghostscript): a folder's .h5 or .eps is skipped, not an error row.
_NOT_PICTURES = {"BUFR", "GRIB", "HDF5", "FITS", "WMF", "MPEG", "EPS"}
# Images Pillow may not read here (no plugin): taken, so that their error row says so.
_EXTRA_SUFFIXES = {".heic", ".heif", ".avif", ".avifs", ".jxl", ".svg"}


def _pillow_tables() -> tuple[frozenset[str], tuple[str, ...]]:
    """(image file extensions, formats whose header has a signature we can sniff)."""
    Image.init()
    readable = set(Image.OPEN) - _NOT_PICTURES
    suffixes = {ext for ext, fmt in Image.registered_extensions().items() if fmt in readable}
    # formats without an accept() check (TGA, ...) would "recognise" random bytes: not sniffed
    sniff = tuple(sorted(fmt for fmt in readable if Image.OPEN[fmt][1] is not None))
    return frozenset(suffixes | _EXTRA_SUFFIXES), sniff


IMAGE_SUFFIXES, SNIFF_FORMATS = _pillow_tables()


class Missing(str):
    """A path argument that gave no image: an error row (`reason`), not an image."""

    reason = "no such file"

    def __new__(cls, value: str, reason: str | None = None) -> Missing:
        obj = super().__new__(cls, value)
        if reason is not None:
            obj.reason = reason
        return obj


@dataclass
class Expansion:
    """What the walk left out, for the summary line and the nothing-to-score message."""

    non_image: int = 0  # files skipped inside folders / glob matches
    duplicates: int = 0  # images named again (each is scored once)
    empty: list[str] = field(default_factory=list)  # folders named that hold no image

    def notes(self) -> list[str]:
        out = []
        if self.empty:
            shown = ", ".join(self.empty[:3]) + (", ..." if len(self.empty) > 3 else "")
            n = len(self.empty)
            out.append(f"{n} folder{'s' * (n != 1)} with no image ({shown})")
        if self.non_image:
            out.append(f"{self.non_image} non-image file{'s' * (self.non_image != 1)} skipped")
        if self.duplicates:
            out.append(f"{self.duplicates} repeated path{'s' * (self.duplicates != 1)} skipped")
        return out


def looks_like_image(path: str) -> bool:
    """True for an image extension, else when Pillow recognises the header (no pixels read)."""
    if os.path.splitext(path)[1].lower() in IMAGE_SUFFIXES:
        return True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path, formats=SNIFF_FORMATS):
                return True
    except Image.DecompressionBombError:
        return True  # an image, and its error row will say why it is not scored
    except PermissionError:
        return True  # cannot tell: scoring will report it
    except Exception:  # noqa: BLE001 - any plugin's complaint means "no image header here"
        return False


def _walk(top: str, stats: Expansion) -> Iterator[tuple[str, str]]:
    """(path, real path) of the candidate images under `top`: each folder's files in sorted
    order, then its subfolders; symlinked folders are not followed (as os.walk)."""
    stack = [(top, os.path.realpath(top))]
    while stack:
        folder, real = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            yield Missing(folder, f"cannot read folder: {e.strerror or e}"), ""
            continue
        subfolders = []
        for entry in entries:
            hidden = entry.name.startswith(".")
            if entry.is_dir(follow_symlinks=False):
                if not hidden:
                    subfolders.append((entry.path, os.path.join(real, entry.name)))
            elif entry.is_symlink() and entry.is_dir():
                continue  # a link to a folder: not followed
            elif not hidden and entry.is_file() and looks_like_image(entry.path):
                key = os.path.realpath(entry.path) if entry.is_symlink() else None
                yield entry.path, key or os.path.join(real, entry.name)
            else:
                stats.non_image += 1  # hidden, not an image, or not a regular file
        stack.extend(reversed(subfolders))


def _candidates(arg: str, stats: Expansion) -> Iterator[tuple[str, str]]:
    """(path or URL, identity) for one argument; Missing (identity "") when it gives nothing."""
    if is_url(arg):
        yield arg, arg
    elif os.path.isdir(arg):
        found = False
        for item in _walk(arg, stats):
            found = True
            yield item
        if not found:
            stats.empty.append(arg)
    elif os.path.lexists(arg):
        yield arg, os.path.realpath(arg)
    elif glob.has_magic(arg):
        matched = False
        for m in sorted(glob.iglob(arg, recursive=True)):
            matched = True
            if os.path.isdir(m):
                yield from _walk(m, stats)
            elif looks_like_image(m):
                yield m, os.path.realpath(m)
            else:
                stats.non_image += 1
        if not matched:
            yield Missing(arg, "no file matches this pattern"), ""
    elif SCHEME.match(arg):
        yield Missing(arg, ONLY_HTTP), ""
    else:
        yield Missing(arg), ""


def expand_paths(args: Iterable[str], stats: Expansion | None = None) -> Iterator[str | Missing]:
    """Every image the arguments name, once each, in first-seen order; `Missing` for an argument
    that gives nothing. Counts of what was left out go into `stats`."""
    stats = stats if stats is not None else Expansion()
    args = list(args)
    seen: set[str] = set()
    for i, arg in enumerate(args):
        # Nothing after the last argument can repeat it, and a walk never repeats itself, so a
        # huge final folder is walked without remembering its paths (a glob can match a folder
        # and the files in it, so globs always remember).
        remember = i < len(args) - 1 or glob.has_magic(arg)
        for item, key in _candidates(arg, stats):
            if isinstance(item, Missing):
                yield item
            elif key in seen:
                stats.duplicates += 1
            else:
                if remember:
                    seen.add(key)
                yield item


def at_least_one_image(
    args: list[str],
    items: Iterable[Any],
    stats: Expansion | None = None,
    is_image: Callable[[Any], bool] = lambda item: not isinstance(item, Missing),
) -> Iterator[Any]:
    """`items` unchanged, but raising `nothing_to_score` on the first `next` when they hold no
    image at all (only `Missing` ones, or nothing): every command that takes paths (predict,
    explain, inspect, scan) then fails the same way before writing anything. Only the leading
    `Missing` items are held back, so the walk stays lazy."""
    it = iter(items)
    head = []
    for item in it:
        head.append(item)
        if is_image(item):
            break
    else:
        problems = [f"{m}: {m.reason}" for m in head if isinstance(m, Missing)]
        raise nothing_to_score(args, stats or Expansion(), problems)
    yield from head
    yield from it


def nothing_to_score(args: list[str], stats: Expansion, problems: list[str]) -> FakescopeError:
    """The error for a run whose arguments gave no image at all (an empty folder, a glob that
    matches nothing, a missing file): a script must not take silence for success."""
    shown = ", ".join(args[:3]) + (f" and {len(args) - 3} more" if len(args) > 3 else "")
    details = problems[:3] + stats.notes()
    return FakescopeError(
        f"nothing to score: no image found in {shown}"
        + (f" ({'; '.join(details)})" if details else "")
    )
