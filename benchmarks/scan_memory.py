"""Peak memory of `fakescope scan`'s listing on huge inputs (issue 31): a folder tree of
200,000 small files, a 10 GB tar (sparse on disk: its members' data are holes) and a zip of
as many members. Each listing runs in a fresh process (`scan.iter_refs`, consumed one
reference at a time as `scan` consumes it) that reports its VmHWM after the imports and after
the listing; `--scan` also runs the whole `fakescope scan` of the tree (small model, one
worker) and reports the driver's peak.

Everything is generated under --tmp and deleted afterwards.

    nice -n 10 python benchmarks/scan_memory.py --files 200000 --archive-gb 10 --scan
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

from PIL import Image

LISTER = """
import json, sys, time
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
from fakescope.scan import iter_refs
before = hwm()
t0 = time.perf_counter()
n = sum(1 for _ in iter_refs(sys.argv[1:]))
print(json.dumps({"refs": n, "import_mb": before, "peak_mb": hwm(),
                  "seconds": time.perf_counter() - t0}))
"""


def tiny_png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (120, 30, 200)).save(buf, "PNG")
    return buf.getvalue()


def make_tree(root: Path, n: int, per_folder: int) -> None:
    data = tiny_png()
    for i in range(n):
        d = root / f"{i // per_folder:05d}"
        if i % per_folder == 0:
            d.mkdir(parents=True)
        (d / f"{i:07d}.png").write_bytes(data)


def make_sparse_tar(path: Path, members: int, total_bytes: int) -> None:
    """A tar of `members` files of total_bytes/members each, whose data are holes."""
    size = total_bytes // members
    pad = -size % 512
    with open(path, "wb") as f:
        for i in range(members):
            info = tarfile.TarInfo(f"set/{'real' if i % 2 else 'fake'}/{i:07d}.jpg")
            info.size = size
            f.write(info.tobuf(tarfile.GNU_FORMAT))
            f.seek(size + pad, os.SEEK_CUR)  # a hole: nothing written, nothing on disk
        f.write(b"\0" * 1024)  # end-of-archive blocks


def make_zip(path: Path, members: int) -> None:
    data = tiny_png()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for i in range(members):
            zf.writestr(f"set/{'real' if i % 2 else 'fake'}/{i:07d}.png", data)


def listing(source: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", LISTER, str(source)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def full_scan(tree: Path, output: Path) -> dict:
    """`fakescope scan` of the tree in a child process; its peak (VmHWM) and the workers'."""
    code = f"""
import json, resource, sys, time
from fakescope.scan import scan
t0 = time.perf_counter()
s = scan([{str(tree)!r}], {str(output)!r}, model="cifake-resnet10s", device="cpu", workers=1,
         batch_size=256, progress=False)
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        peak = int(line.split()[1]) / 1024
kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({{"scored": s.scored, "errors": s.errors, "driver_peak_mb": peak,
                  "worker_peak_mb": kids, "seconds": time.perf_counter() - t0}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--files", type=int, default=200_000)
    p.add_argument("--per-folder", type=int, default=1000)
    p.add_argument("--archive-gb", type=float, default=10.0)
    p.add_argument("--tmp", default="/tmp")
    p.add_argument("--scan", action="store_true", help="also run the whole scan of the tree")
    args = p.parse_args()

    root = Path(tempfile.mkdtemp(prefix="fakescope-scanmem-", dir=args.tmp))
    try:
        t0 = time.perf_counter()
        make_tree(root / "tree", args.files, args.per_folder)
        flat = root / "flat"
        make_tree(flat, args.files // 4, args.files)  # one folder of a quarter of them
        tar = root / "big.tar"
        make_sparse_tar(tar, args.files, int(args.archive_gb * 1e9))
        zpath = root / "big.zip"
        make_zip(zpath, args.files)
        made = time.perf_counter() - t0
        print(
            f"{time.strftime('%Y-%m-%d %H:%M')}; generated in {made:.0f} s under {root}: "
            f"{args.files:,} files in folders of {args.per_folder}; one folder of "
            f"{args.files // 4:,}; a tar of {args.files:,} members, {tar.stat().st_size / 1e9:.1f}"
            f" GB (sparse: {tar.stat().st_blocks * 512 / 1e6:.0f} MB on disk); a zip of "
            f"{args.files:,} members ({zpath.stat().st_size / 1e6:.0f} MB)"
        )
        print("| source | references | peak RSS MB | of which imports | listing s |")
        print("|---|---|---|---|---|")
        for label, src in (
            (f"folder tree, {args.files:,} files", root / "tree" / "00000"),
            (f"folder tree, {args.files:,} files", root / "tree"),
            (f"one folder, {args.files // 4:,} files", flat / "00000"),
            (f"tar, {tar.stat().st_size / 1e9:.1f} GB, {args.files:,} members", tar),
            (f"zip, {args.files:,} members", zpath),
        ):
            r = listing(src)
            print(
                f"| {label if src.name != '00000' or 'one' in label else 'one folder of the tree'}"
                f" | {r['refs']:,} | {r['peak_mb']:.0f} | {r['import_mb']:.0f} | "
                f"{r['seconds']:.1f} |"
            )
        if args.scan:
            r = full_scan(root / "tree", root / "out.parquet")
            print(
                f"fakescope scan of the tree (cifake-resnet10s, 1 worker, batch 256): "
                f"{r['scored']:,} scored, {r['errors']} errors, {r['seconds']:.0f} s; driver peak "
                f"RSS {r['driver_peak_mb']:.0f} MB, worker peak {r['worker_peak_mb']:.0f} MB"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
