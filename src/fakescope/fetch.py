"""Images named by an http(s) URL: downloaded with a size cap and a deadline, into a file.

The downloaded file then goes through `Detector` like any other file, so every image rule
(the pixel limit against decompression bombs included) applies unchanged. Files are streamed to
a private temporary folder, not held in memory: a batch of large downloads costs disk, not RAM.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from fakescope.errors import ImageError

MAX_BYTES = int(os.environ.get("FAKESCOPE_MAX_DOWNLOAD", 50 * 1024 * 1024))
TIMEOUT = float(os.environ.get("FAKESCOPE_DOWNLOAD_TIMEOUT", 30))  # seconds, whole download
CHUNK = 64 * 1024


SCHEME = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://")
ONLY_HTTP = "only http:// and https:// URLs are supported"  # one message, CLI and API alike


def is_url(arg: str) -> bool:
    return arg[:8].lower().startswith(("http://", "https://"))


def _opener() -> urllib.request.OpenerDirector:
    """HTTP(S) only (with the environment's proxies and redirects): a redirect to file:// or
    ftp:// fails instead of reading something that is not on the web."""
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(),
        urllib.request.HTTPRedirectHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


def download(
    url: str, dest: Path, max_bytes: int | None = None, timeout: float | None = None
) -> None:
    """Write the body at `url` to `dest` (at most `max_bytes`, within `timeout` seconds in all;
    defaults MAX_BYTES, TIMEOUT); `ImageError` (one line) for anything that goes wrong."""
    from fakescope._version import __version__

    max_bytes = MAX_BYTES if max_bytes is None else max_bytes
    timeout = TIMEOUT if timeout is None else timeout
    deadline = time.monotonic() + timeout
    too_big = f"larger than the download limit of {max_bytes:,} bytes (FAKESCOPE_MAX_DOWNLOAD)"
    request = urllib.request.Request(url, headers={"User-Agent": f"fakescope/{__version__}"})
    try:
        with _opener().open(request, timeout=timeout) as resp, open(dest, "wb") as f:
            length = resp.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > max_bytes:
                raise ImageError(too_big)
            total = 0
            # read1: at most one socket read per call, so the deadline is checked even when a
            # server trickles bytes (read(n) would wait for all n of them)
            while chunk := resp.read1(CHUNK):
                total += len(chunk)
                if total > max_bytes:
                    raise ImageError(too_big)
                if time.monotonic() > deadline:
                    raise TimeoutError
                f.write(chunk)
    except urllib.error.HTTPError as e:
        raise ImageError(f"download failed: HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        if isinstance(e.reason, TimeoutError):
            raise ImageError(f"download timed out after {timeout:g} s") from None
        raise ImageError(f"download failed: {e.reason}") from None
    except TimeoutError:
        raise ImageError(f"download timed out after {timeout:g} s") from None
    except (OSError, http.client.HTTPException, ValueError) as e:
        raise ImageError(f"download failed: {e}") from None


def url_bytes(image: Any) -> Any:
    """For the Python API (`Detector.predict*`, `explain`): an http(s) URL string becomes the
    downloaded bytes, under the CLI's limits (MAX_BYTES, TIMEOUT; the pixel limit follows when
    the bytes are decoded); anything else is returned unchanged. `ImageError` on failure, so
    a batch gives that URL an error row. The file lives in a private temporary folder only
    while it is read."""
    if isinstance(image, str) and not is_url(image) and SCHEME.match(image):
        raise ImageError(ONLY_HTTP)  # file://, ftp://, ...: as the CLI says
    if not (isinstance(image, str) and is_url(image)):
        return image
    with tempfile.TemporaryDirectory(prefix="fakescope-download-") as tmp:
        dest = Path(tmp) / "image"
        download(image, dest)
        return dest.read_bytes()


class Downloads:
    """A private temporary folder for fetched images; `fetch` returns the file's path, `done`
    removes it once its result is out, `close` removes the folder."""

    def __init__(self) -> None:
        self._dir: str | None = None
        self._count = 0

    def fetch(self, url: str) -> Path:
        if self._dir is None:
            self._dir = tempfile.mkdtemp(prefix="fakescope-download-")
        self._count += 1
        suffix = PurePosixPath(urlsplit(url).path).suffix[:10]  # a hint for readers; not trusted
        dest = Path(self._dir) / f"{self._count}{suffix}"
        try:
            download(url, dest)
        except ImageError:
            self.done(dest)
            raise
        return dest

    @staticmethod
    def done(path: Path) -> None:
        path.unlink(missing_ok=True)

    def close(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> Downloads:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
