"""The scoring install before and after the light install: environment size and the wall time
of `fakescope predict one.jpg`, each in a fresh virtualenv built as the README says.

- before: a git ref from before the change (torch was a core dependency): the README's pinned
  torch, then `pip install .` of that ref;
- after: `pip install .` of this checkout (numpy, Pillow, onnxruntime, tqdm; no torch).

The `predict` runs alternate between the two environments (median of `--runs` each), so a
shared machine's drift hits both alike.

    python benchmarks/light_install.py --before 997c0ac --image one.jpg --workdir /tmp/fs-install \
        --predict-args="--model cifake-resnet10s"

Each environment is checked before timing: `before` imports torch, `after` must not have it, and a
`predict` that fails stops the benchmark with its error (never a timing of an error message).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TORCH_PIN = ["torch==2.14.1", "torchvision==0.29.1"]


def sh(*cmd: str | Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], check=True, **kw)


def build(venv: Path, source: Path, torch: bool) -> float:
    """A fresh virtualenv with `source` installed; returns the seconds it took."""
    t0 = time.perf_counter()
    shutil.rmtree(venv, ignore_errors=True)
    sh(sys.executable, "-m", "venv", venv)
    pip = [venv / "bin" / "pip", "install", "-q", "--disable-pip-version-check"]
    if torch:
        sh(*pip, *TORCH_PIN)
    sh(*pip, source)
    return time.perf_counter() - t0


def size(path: Path) -> int:
    out = sh("du", "-sb", path, capture_output=True, text=True).stdout
    return int(out.split()[0])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--before", required=True, help="git ref with torch as a core dependency")
    p.add_argument("--image", required=True)
    p.add_argument("--workdir", default="/tmp/fakescope-install")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument(
        "--predict-args", default="", help="more arguments for predict, e.g. a model name"
    )
    p.add_argument("--skip-build", action="store_true", help="reuse the two virtualenvs")
    args = p.parse_args()
    work = Path(args.workdir)
    envs = {"before": work / "before", "after": work / "after"}
    if not args.skip_build:
        src = work / "src-before"
        shutil.rmtree(src, ignore_errors=True)
        src.mkdir(parents=True)
        archive = sh("git", "-C", ROOT, "archive", args.before, capture_output=True).stdout
        sh("tar", "-x", "-C", src, input=archive)
        for name, venv in envs.items():
            secs = build(venv, src if name == "before" else ROOT, torch=name == "before")
            print(f"built {name} in {secs:.0f} s", file=sys.stderr)
    for name, venv in envs.items():
        has_torch = (
            subprocess.run(
                [venv / "bin" / "python", "-c", "import torch"], capture_output=True
            ).returncode
            == 0
        )
        if has_torch != (name == "before"):
            raise SystemExit(f"{name}: torch is {'' if has_torch else 'not '}installed")
    cmd = ["predict", args.image, *shlex.split(args.predict_args)]
    times: dict[str, list[float]] = {name: [] for name in envs}
    rows: dict[str, str] = {}
    for _ in range(args.runs):
        for name, venv in envs.items():
            t0 = time.perf_counter()
            res = subprocess.run([venv / "bin" / "fakescope", *cmd], capture_output=True, text=True)
            times[name].append(time.perf_counter() - t0)
            if res.returncode:
                raise SystemExit(f"{name}: fakescope {shlex.join(cmd)} failed:\n{res.stderr}")
            rows[name] = res.stdout.strip().splitlines()[-1]
    print(
        f"{time.strftime('%Y-%m-%d %H:%M')}; load average {os.getloadavg()[0]:.1f}; "
        f"fakescope {shlex.join(cmd)}"
    )
    for name, row in rows.items():
        print(f"{name}: {row}")
    print("| install | environment size | `fakescope predict one.jpg` (median) | runs |")
    print("|---|---|---|---|")
    for name, venv in envs.items():
        t = sorted(times[name])
        print(
            f"| {name} | {size(venv) / 2**20:,.0f} MiB | {t[len(t) // 2]:.2f} s | "
            f"{', '.join(f'{x:.2f}' for x in times[name])} |"
        )


if __name__ == "__main__":
    main()
