"""Throughput of `fakescope scan` (local and Ray engines) against `fakescope predict`.

The same N CIFAKE test JPEGs (their original bytes, a stratified sample) are written into one
folder; each command runs as a user would run it (a fresh process: start-up, worker or Ray
start, scoring, writing the output), timed by wall clock, in interleaved rounds; the outputs
must agree to the last digit of prob_fake. The machine's load average is printed beside it,
and each command's CPU time (user + system, of the command and every process it waited for:
workers, and Ray's processes as far as they are reaped), which a shared machine's load changes
far less than wall time.

    python benchmarks/scan_speed.py --data ../shared/data/cifake/cifake-test.tar.xz --n 2000
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from fakescope.data import list_labelled


def rows_of(path: Path) -> dict[str, float | None]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return {r["path"]: r["prob_fake"] for r in pq.read_table(path).to_pylist()}
    with open(path, newline="") as f:
        return {r["path"]: float(r["prob_fake"]) for r in csv.DictReader(f)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", nargs="+", required=True)
    p.add_argument("--n", type=float, default=2000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--engines", nargs="+", default=["predict", "local", "ray"])
    args = p.parse_args()
    files = list_labelled(args.data, purpose="eval", subset=args.n)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        for i, raw in files.iter_bytes():
            (folder / f"{i:06d}.jpg").write_bytes(raw)
        n = len(files)
        cmds = {
            "predict": ["predict", str(folder), "--format", "csv", "--output", "{out}.csv"],
            "local": ["scan", str(folder), "--engine", "local", "--output", "{out}.parquet"],
            "ray": ["scan", str(folder), "--engine", "ray", "--output", "{out}.parquet"],
        }
        for k in ("local", "ray"):
            cmds[k] += ["--workers", str(args.workers)]
        times: dict[str, list[float]] = {k: [] for k in args.engines}
        cpu: dict[str, list[float]] = {k: [] for k in args.engines}
        outputs: dict[str, Path] = {}
        load = [os.getloadavg()[0]]
        for r in range(args.repeats):
            for name in args.engines:
                out = Path(tmp) / f"{name}-{r}"
                cmd = [a.replace("{out}", str(out)) for a in cmds[name]]
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                t0 = time.perf_counter()
                subprocess.run(
                    [sys.executable, "-m", "fakescope", *cmd, "-q"],
                    check=True,
                    stderr=subprocess.DEVNULL,
                )
                times[name].append(time.perf_counter() - t0)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu[name].append(
                    after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
                )
                outputs[name] = out.with_suffix(Path(cmd[cmd.index("--output") + 1]).suffix)
                load.append(os.getloadavg()[0])
        ref = rows_of(outputs[args.engines[0]])
        same = all(rows_of(o) == ref for o in outputs.values())
    print(
        f"{n} CIFAKE test JPEGs; {os.cpu_count()} CPU cores; load average (1 min) during the "
        f"run {min(load):.1f}-{max(load):.1f}; {time.strftime('%Y-%m-%d')}; median of "
        f"{args.repeats} round(s); identical prob_fake across commands: {same}"
    )
    print("| command | wall s | images/s | CPU s |\n|---|---|---|---|")
    for name in args.engines:
        label = "predict" if name == "predict" else f"scan --engine {name} --workers {args.workers}"
        t = float(np.median(times[name]))
        c = float(np.median(cpu[name]))
        print(f"| `{label}` | {t:.1f} | {n / t:.0f} | {c:.1f} |")


if __name__ == "__main__":
    main()
