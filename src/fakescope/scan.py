"""`fakescope scan`: score very many images in parallel workers into one results table.

    SOURCE...  ->  references (listed lazily by the driver; those already in --output skipped)
      ->  workers, each loading the Detector once (`--engine local`: a process pool on this
          machine; `--engine ray`: Ray Data actors on a local or existing Ray cluster)
      ->  rows (`fakescope.predict.FIELDS`, the same values `predict` gives)
      ->  part files beside the output, each written atomically every `flush_every` rows
      ->  merged into --output (Parquet or CSV) in one atomic rename at the end.

Sources are folders, image files and globs (read as `predict` reads them: same order, same
`path` strings), `file://` URLs, any other fsspec URL (listed and read through fsspec; the
workers must be able to reach it), and local zip / tar archives (`.zip`, `.tar`, `.tar.gz`,
`.tgz`, `.tar.bz2`, `.tar.xz`), whose members are named by fsspec chained URLs such as
`zip://test/REAL/1.jpg::/data/cifake.zip` (so `fsspec.open(path)` reads them back).

A reference travels to the worker, not the image: each worker reads its own files, so an
unreadable file is an error row in that worker, never a failed job, and archive members are
read from the archive by the worker that scores them (each worker keeps its archives open).

Resuming: a re-run with the same --output skips every path already in the output or in the
part files of a killed run. A kill loses at most the rows not yet in a part file (up to
`flush_every` rows, or a minute's worth); nothing already written is ever rewritten in place.
"""

from __future__ import annotations

import csv
import glob
import itertools
import json
import lzma
import os
import shutil
import struct
import sys
import tarfile
import time
import zipfile
import zlib
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fakescope.detector import error_row
from fakescope.errors import FakescopeError, missing_extra
from fakescope.fileio import atomic_path
from fakescope.inputs import Expansion, at_least_one_image
from fakescope.predict import FIELDS, Missing, expand_paths

ENGINES = ("local", "ray")
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
FLUSH_SECONDS = 60.0
NO_FILE = "no such file"  # predict's error for a path that matches nothing

# What opening or reading a damaged archive raises (found by the fuzzer, tests/fuzz): an error
# row for that member, never a failed scan. NotImplementedError: a zip version or compression
# method Python lacks; RuntimeError: an encrypted member; IndexError: a member with an empty
# name; ValueError: negative sizes and offsets.
READ_ERRORS = (OSError, KeyError, EOFError, zipfile.BadZipFile, tarfile.TarError, zlib.error)
READ_ERRORS += (lzma.LZMAError, NotImplementedError, RuntimeError, IndexError, ValueError)

Ref = dict[str, str]  # {"path": the row's path, "src": file, URL or archive, "member": "" or name}


# ---- listing (driver) ----------------------------------------------------------------------


def is_archive(path: str) -> bool:
    """Archives by name only: a zip named `x.jpg` is an image to score (and fail), not a source."""
    return path.lower().endswith(ARCHIVE_SUFFIXES) and os.path.isfile(path)


def archive_refs(archive: str) -> Iterator[Ref]:
    """One reference per image member (hidden and non-image members skipped, as in training)."""
    from fakescope.data.sources import _is_non_image

    path = os.path.abspath(archive)
    try:
        if archive.lower().endswith(".zip"):
            proto, names = "zip", _zip_names(path)
        else:
            proto, names = "tar", _tar_names(path)
        for name in names:
            if not _is_non_image(name):
                yield {"path": f"{proto}://{name}::{path}", "src": path, "member": name}
    except READ_ERRORS as e:
        # one line: tarfile's ReadError lists every method it tried, one a line
        raise FakescopeError(f"cannot read archive {archive}: {' '.join(str(e).split())}") from None


def _tar_names(path: str) -> Iterator[str]:
    """A tar's file members front to back, each forgotten once listed: tarfile keeps every
    header it has read in `TarFile.members`, so listing a 200,000-member archive grew the
    driver by ~100 MB (benchmarks/scan_memory.py)."""
    with tarfile.open(path) as tf:
        while (m := tf.next()) is not None:
            tf.members.clear()
            if m.isfile():
                yield m.name


def _zip_names(path: str, chunk: int = 1 << 20) -> Iterator[str]:
    """A zip's file members in central-directory order, read record by record: zipfile builds a
    ZipInfo for every member when it opens an archive (~124 MB for 200,000 members,
    benchmarks/scan_memory.py). The same names zipfile gives (`infolist()` without folders),
    and the same errors but for a corrupt extra field, which zipfile refuses when a worker
    opens the archive: its members are then error rows."""
    with open(path, "rb") as f:
        end = zipfile._EndRecData(f)  # the end record (zip64 too), as zipfile finds it
        if end is None:
            raise zipfile.BadZipFile("File is not a zip file")
        size, offset = end[zipfile._ECD_SIZE], end[zipfile._ECD_OFFSET]
        concat = end[zipfile._ECD_LOCATION] - size - offset  # bytes prepended to the archive
        if end[zipfile._ECD_SIGNATURE] == zipfile.stringEndArchive64:
            concat -= zipfile.sizeEndCentDir64 + zipfile.sizeEndCentDir64Locator
        if offset + concat < 0:
            raise zipfile.BadZipFile("Bad offset for central directory")
        f.seek(offset + concat)
        buf, pos, left, done = b"", 0, size, 0  # buf[pos:] is what is read and not parsed

        def fill(need: int) -> None:
            nonlocal buf, pos, left
            while len(buf) - pos < need and left > 0:
                more = f.read(min(max(chunk, need), left))
                if not more:
                    break
                buf, pos, left = buf[pos:] + more, 0, left - len(more)

        while done < size:  # as zipfile reads it, with its errors
            fill(zipfile.sizeCentralDir)
            if len(buf) - pos < zipfile.sizeCentralDir:
                raise zipfile.BadZipFile("Truncated central directory")
            rec = struct.unpack_from(zipfile.structCentralDir, buf, pos)
            if rec[zipfile._CD_SIGNATURE] != zipfile.stringCentralDir:
                raise zipfile.BadZipFile("Bad magic number for central directory")
            if rec[zipfile._CD_EXTRACT_VERSION] > zipfile.MAX_EXTRACT_VERSION:
                raise NotImplementedError(f"zip file version {rec[1] / 10:.1f}")
            n = rec[zipfile._CD_FILENAME_LENGTH]
            total = zipfile.sizeCentralDir + n + rec[zipfile._CD_EXTRA_FIELD_LENGTH]
            total += rec[zipfile._CD_COMMENT_LENGTH]
            fill(total)
            raw = buf[pos + zipfile.sizeCentralDir : pos + zipfile.sizeCentralDir + n]
            pos, done = pos + total, done + total
            utf8 = rec[zipfile._CD_FLAG_BITS] & 0x800
            name = raw.decode("utf-8" if utf8 else "cp437").split("\0", 1)[0]
            if not name.endswith("/"):
                yield name


def fsspec_refs(url: str) -> Iterator[Ref | Missing]:
    """Files under any fsspec URL (a file, a folder walked recursively, or a glob), sorted,
    hidden names skipped; paths are full URLs."""
    try:
        import fsspec
    except ImportError:
        raise missing_extra("fsspec", "scan") from None
    try:
        fs, root = fsspec.core.url_to_fs(url)
        if glob.has_magic(root):
            found = sorted(p for p in fs.glob(root) if fs.isfile(p))
        elif fs.isdir(root):
            found = sorted(fs.find(root))
        elif fs.isfile(root):
            found = [root]
        else:
            yield Missing(url)
            return
    except (OSError, ValueError) as e:
        raise FakescopeError(f"cannot list {url}: {e}") from None
    base = root.rstrip("/") + "/"
    for p in found:
        rel = p[len(base) :] if p.startswith(base) else p.rsplit("/", 1)[-1]
        if not any(part.startswith(".") for part in rel.split("/")):
            u = fs.unstrip_protocol(p)
            yield {"path": u, "src": u, "member": ""}


def iter_refs(sources: Iterable[str], stats: Expansion | None = None) -> Iterator[Ref | Missing]:
    """References to every image of every source, lazily, in `predict`'s order for local
    paths; a path that matches nothing is a `Missing` (scored as an error row)."""
    for src in sources:
        local = src[len("file://") :] if src.startswith("file://") else src
        if "://" in local:
            yield from fsspec_refs(src)
            continue
        for p in expand_paths([local], stats):
            if isinstance(p, Missing):
                yield p
            elif is_archive(p):
                yield from archive_refs(p)
            else:
                yield {"path": p, "src": p, "member": ""}


# ---- scoring (workers) ---------------------------------------------------------------------


class Scorer:
    """What each worker holds: one Detector, and the archives it has opened."""

    def __init__(self, model: str | None, device: str = "auto", batch_size: int = 64):
        from fakescope.detector import Detector

        self.det = Detector.load(model, device=device)
        self.batch_size = batch_size
        self._archives: dict[str, Any] = {}

    def _member(self, src: str, member: str) -> bytes:
        arc = self._archives.get(src)
        if arc is None:
            # kept open for the worker's life: members of one archive arrive batch after batch
            zf = src.lower().endswith(".zip")
            arc = zipfile.ZipFile(src) if zf else tarfile.open(src)  # noqa: SIM115
            self._archives[src] = arc
        if isinstance(arc, zipfile.ZipFile):
            return arc.read(member)
        f = arc.extractfile(arc.getmember(member))
        return f.read() if f else b""

    def _image(self, ref: Ref):
        """The image as the Detector takes it: a local path (read by the Detector itself, as
        `predict` does) or the bytes of an archive member or URL."""
        if ref["member"]:
            return self._member(ref["src"], ref["member"])
        if "://" in ref["src"]:
            import fsspec

            with fsspec.open(ref["src"], "rb") as f:
                return f.read()
        return ref["src"]

    def score(self, refs: list[Ref]) -> list[dict[str, Any]]:
        """One row per reference, in order; a file that cannot be read is an error row."""
        images, failed = [], {}
        for i, ref in enumerate(refs):
            try:
                images.append(self._image(ref))
            except READ_ERRORS as e:
                why = " ".join(str(getattr(e, "strerror", None) or e).split())
                failed[i] = f"cannot read file: {why or type(e).__name__}"
                images.append(None)
            except MemoryError:
                failed[i] = "out of memory reading this file"
                images.append(None)
        ok = [img for i, img in enumerate(images) if i not in failed]
        scored = iter(self.det.iter_predict(ok, batch_size=self.batch_size))
        rows = []
        for i, ref in enumerate(refs):
            row = error_row(ref["path"], failed[i]) if i in failed else next(scored)
            rows.append({**row, "path": ref["path"]})
        return rows


_worker: Scorer | None = None


def _exit_with_parent(parent: int, every: float = 1.0) -> None:
    """A driver killed with SIGKILL cannot stop its pool, and an idle worker would wait on its
    queue forever: each worker watches for its parent to go and then exits (a thread rather
    than Linux's PR_SET_PDEATHSIG, so it works on every platform)."""
    import threading

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(1)

    threading.Thread(target=watch, name="fakescope-parent-watch", daemon=True).start()


def _init_local_worker(model, device, batch_size, threads: int, parent: int) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    _exit_with_parent(parent)
    # before torch is imported: each worker uses its share of the cores, not all of them
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    global _worker
    _worker = Scorer(model, device, batch_size)
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        pass


def _score_local(refs: list[Ref]) -> list[dict[str, Any]]:
    assert _worker is not None
    return _worker.score(refs)


def chunks(refs: Iterable[Ref], size: int) -> Iterator[list[Ref]]:
    chunk: list[Ref] = []
    for ref in refs:
        chunk.append(ref)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def run_local(refs: Iterable[Ref], model, device, workers: int, batch_size: int):
    """Rows in input order from a pool of `workers` processes, each with its own Detector;
    at most 2 chunks per worker in flight (bounded memory)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    threads = max(1, (os.cpu_count() or 1) // workers)
    # spawn: safe with CUDA and with a parent that has imported torch
    ctx = multiprocessing.get_context("spawn")
    args = (model, device, batch_size, threads, os.getpid())
    try:
        with ProcessPoolExecutor(workers, ctx, _init_local_worker, args) as pool:
            pending: deque = deque()
            for chunk in chunks(refs, batch_size):
                pending.append(pool.submit(_score_local, chunk))
                if len(pending) >= 2 * workers:
                    yield from pending.popleft().result()
            while pending:
                yield from pending.popleft().result()
    except BrokenProcessPool:
        raise FakescopeError(
            "a scan worker process died (out of memory?); re-run the same command to go on "
            "from the rows already written"
        ) from None


class RayScorer(Scorer):
    """The Ray Data actor: a Scorer taking and returning Arrow batches."""

    def __call__(self, batch):
        import pyarrow as pa

        refs = batch.to_pylist()
        return pa.Table.from_pylist([cells(r) for r in self.score(refs)], schema=arrow_schema())


def run_ray(
    refs: list[Ref], model, device, workers: int | None, batch_size: int, address: str | None
):
    """Rows in input order from Ray Data: the references as a dataset, `map_batches` through
    `workers` RayScorer actors (one CPU each; at most the cluster's CPUs; default all of them).
    Starts a local Ray instance unless one is running or `address` names a cluster to join;
    shuts down only what it started."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise missing_extra("ray[data]", "ray") from None
    started = False
    if not ray.is_initialized():
        if address:  # join a running cluster: its resources are its own
            ray.init(address=address, logging_level="WARNING")
        else:
            # a local instance listens on the loopback only (no other host needs it)
            ray.init(include_dashboard=False, logging_level="WARNING", _node_ip_address="127.0.0.1")
        started = True
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        n = max(1, min(workers or cpus, cpus))
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True  # rows in listing order, as predict
        ctx.enable_progress_bars = False  # ours counts rows; Ray's would interleave with it
        gpu = 1 if device.startswith("cuda") else 0
        ds = ray.data.from_items(refs).map_batches(
            RayScorer,
            fn_constructor_kwargs={"model": model, "device": device, "batch_size": batch_size},
            batch_size=batch_size,
            batch_format="pyarrow",
            concurrency=n,
            num_cpus=1,
            num_gpus=gpu,
        )
        for batch in ds.iter_batches(batch_size=batch_size, batch_format="pyarrow"):
            yield from batch.to_pylist()
    finally:
        if started:
            ray.shutdown()


# ---- output ----------------------------------------------------------------------------------


def cells(row: dict[str, Any]) -> dict[str, Any]:
    """A row as table cells: every FIELDS column, prob_fake a float, the rest text (JSON for
    anything that is not a string)."""
    out: dict[str, Any] = {}
    for k in FIELDS:
        v = row.get(k)
        if k == "prob_fake":
            out[k] = None if v is None or v == "" else float(v)
        else:
            out[k] = v if v is None or isinstance(v, str) else json.dumps(v, ensure_ascii=False)
    return out


def arrow_schema():
    import pyarrow as pa

    return pa.schema([(k, pa.float64() if k == "prob_fake" else pa.string()) for k in FIELDS])


@dataclass
class Sink:
    """Rows -> part files (each atomic) -> one output file (atomic rename)."""

    output: Path
    flush_every: int = 1000
    buffer: list[dict[str, Any]] = field(default_factory=list)
    last_flush: float = field(default_factory=time.monotonic)

    def __post_init__(self):
        name = self.output.name.lower()
        if name.endswith((".parquet", ".pq")):
            self.fmt = "parquet"
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                raise missing_extra("pyarrow", "scan") from None
        elif name.endswith(".csv"):
            self.fmt = "csv"
        else:
            raise FakescopeError(f"--output {self.output}: name it .parquet or .csv")
        if self.output.is_dir():
            raise FakescopeError(f"--output {self.output} is a folder; give a file name")
        self.parts = self.output.parent / f".{self.output.name}.parts"
        self.retry: set[str] = set()

    def part_files(self) -> list[Path]:
        return sorted(self.parts.glob(f"part-*.{self.fmt}")) if self.parts.is_dir() else []

    def _paths_in(self, f: Path) -> Iterator[tuple[str, bool]]:
        """(path, is an error row) for every row of a written file."""
        try:
            if self.fmt == "parquet":
                import pyarrow.parquet as pq

                t = pq.read_table(f, columns=["path", "error"])
                yield from zip(
                    t.column(0).to_pylist(), map(bool, t.column(1).to_pylist()), strict=True
                )
            else:
                with open(f, newline="", encoding="utf-8") as fh:
                    for row in csv.DictReader(fh):
                        yield row["path"], bool(row.get("error"))
        except Exception as e:  # noqa: BLE001 - any unreadable output: one clear message
            raise FakescopeError(
                f"cannot read {f} to resume from it ({e}); move it away or choose another --output"
            ) from None

    def _sources(self) -> list[Path]:
        return ([self.output] if self.output.exists() else []) + self.part_files()

    def done(self) -> set[str]:
        """Paths already scored: in the output and in a killed run's part files. A path whose
        rows are all errors is not done: a re-run tries it again (`retry` counts them)."""
        ok, failed = set(), set()
        for f in self._sources():
            for path, error in self._paths_in(f):
                (failed if error else ok).add(path)
        self.retry = failed - ok
        return ok

    def add(self, row: dict[str, Any]) -> None:
        self.buffer.append(cells(row))
        if len(self.buffer) >= self.flush_every or (
            time.monotonic() - self.last_flush > FLUSH_SECONDS
        ):
            self.flush()

    def flush(self) -> None:
        self.last_flush = time.monotonic()
        if not self.buffer:
            return
        parts = self.part_files()
        n = int(parts[-1].name.split("-")[1].split(".")[0]) + 1 if parts else 0
        self._write(self.parts / f"part-{n:06d}.{self.fmt}", [self.buffer])
        self.buffer = []

    def _write(self, path: Path, row_lists: Iterable[Iterable[dict[str, Any]]]) -> None:
        with atomic_path(path) as tmp:
            if self.fmt == "parquet":
                import pyarrow as pa
                import pyarrow.parquet as pq

                with pq.ParquetWriter(str(tmp), arrow_schema()) as w:
                    for rows in row_lists:
                        w.write_table(pa.Table.from_pylist(list(rows), schema=arrow_schema()))
            else:
                with open(tmp, "w", newline="", encoding="utf-8") as fh:
                    w = csv.DictWriter(fh, fieldnames=FIELDS, lineterminator="\n")
                    w.writeheader()
                    for rows in row_lists:
                        for r in rows:
                            w.writerow({k: "" if r[k] is None else r[k] for k in FIELDS})

    def _kept(self, sources: list[Path]) -> Iterator[list[dict[str, Any]]]:
        """Every source's rows, but of a path's error rows only the newest, and none where the
        path was scored (a resumed run retries error rows)."""
        ok: set[str] = set()
        last_error: dict[str, int] = {}
        for i, f in enumerate(sources):
            for path, error in self._paths_in(f):
                if error:
                    last_error[path] = i
                else:
                    ok.add(path)
        for i, f in enumerate(sources):
            for rows in self._read(f):
                yield [
                    r
                    for r in rows
                    if not r["error"] or (r["path"] not in ok and last_error.get(r["path"]) == i)
                ]

    def _read(self, f: Path) -> Iterator[list[dict[str, Any]]]:
        """A written file's rows in batches (bounded memory), as cells."""
        if self.fmt == "parquet":
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(f).iter_batches(batch_size=10_000):
                yield [cells(r) for r in batch.to_pylist()]
        else:
            with open(f, newline="", encoding="utf-8") as fh:
                batch = []
                for r in csv.DictReader(fh):
                    batch.append({k: r.get(k, "") for k in FIELDS})
                    if len(batch) == 10_000:
                        yield batch
                        batch = []
                yield batch

    def finish(self) -> None:
        """Merge the output so far and every part into the output (one atomic rename), then
        drop the parts. A kill during the merge leaves the old output and the parts intact."""
        self.flush()
        parts = self.part_files()
        if not parts and self.output.exists():
            shutil.rmtree(self.parts, ignore_errors=True)  # a killed run's leftovers only
            return
        self._write(self.output, self._kept(self._sources()))
        for p in parts:
            p.unlink()
        # what is left is a killed run's half-written temporary part (never listed as a part)
        shutil.rmtree(self.parts, ignore_errors=True)


# ---- the command -----------------------------------------------------------------------------


@dataclass
class Summary:
    scored: int = 0
    fake: int = 0
    errors: int = 0
    skipped: int = 0
    seconds: float = 0.0
    uncertain: int = 0
    real: int = 0
    retried: int = 0  # error rows of an earlier run tried again

    def line(self, output: Path, engine: str) -> str:
        n = self.scored + self.errors
        rate = n / self.seconds if self.seconds > 0 else 0.0
        labels = [f"{self.fake} fake"]
        if self.uncertain:
            labels.append(f"{self.uncertain} uncertain")
        labels.append(f"{self.real} real")
        retried = f", {self.retried} earlier errors retried" if self.retried else ""
        return (
            f"scan ({engine}): {self.scored} scored ({', '.join(labels)}), {self.errors} not "
            f"scored, {self.skipped} already in the output{retried}; {self.seconds:.1f}s, "
            f"{rate:.1f} images/s; results in {output}"
        )


def check_model(model: str | None) -> None:
    """Fail on a bad --model in the driver, before any worker starts (imports no torch)."""
    from fakescope.model_dir import read_config, resolve_model_dir

    read_config(resolve_model_dir(model)[0])


def scan(
    sources: list[str],
    output: str | os.PathLike,
    *,
    engine: str = "local",
    model: str | None = None,
    device: str = "auto",
    workers: int | None = None,
    batch_size: int = 64,
    address: str | None = None,
    flush_every: int = 1000,
    progress: bool = True,
) -> Summary:
    """Score every image of `sources` into `output` (.parquet or .csv), skipping paths already
    there; returns the counts (also printed on stderr)."""
    from tqdm import tqdm

    if engine not in ENGINES:
        raise FakescopeError(f"unknown engine {engine!r} ({' or '.join(ENGINES)})")
    if address and engine != "ray":
        raise FakescopeError("--address joins a Ray cluster: use it with --engine ray")
    if batch_size < 1 or flush_every < 1 or (workers is not None and workers < 1):
        raise FakescopeError("--batch-size, --workers and --flush-every must be positive")
    check_model(model)
    sink = Sink(Path(output), flush_every)
    done = sink.done()
    summary = Summary(skipped=0, retried=len(sink.retry))
    t0 = time.perf_counter()

    # sources that give no image at all are an error before any worker starts (as predict)
    stats = Expansion()
    listing = at_least_one_image(sources, iter_refs(sources, stats), stats)
    first = next(listing)

    def todo() -> Iterator[Ref]:
        for ref in itertools.chain([first], listing):
            path = str(ref) if isinstance(ref, Missing) else ref["path"]
            if path in done:
                summary.skipped += 1
            elif isinstance(ref, Missing):
                record(error_row(path, NO_FILE))
            else:
                yield ref

    bar = tqdm(desc="scanning", unit="img", file=sys.stderr, disable=not progress, leave=False)

    def record(row: dict[str, Any]) -> None:
        sink.add(row)
        bar.update(1)
        if row.get("error"):
            summary.errors += 1
        else:
            summary.scored += 1
            summary.fake += row.get("label") == "fake"
            summary.uncertain += row.get("label") == "uncertain"
            summary.real += row.get("label") == "real"

    try:
        if engine == "local":
            n = workers or min(4, os.cpu_count() or 1)
            rows = run_local(todo(), model, device, n, batch_size)
        else:
            refs = list(todo())  # Ray Data takes the list (paths only, not images)
            rows = run_ray(refs, model, device, workers, batch_size, address) if refs else []
        for row in rows:
            record(row)
    finally:
        bar.close()
        sink.flush()  # what was scored survives an error or Ctrl-C
    sink.finish()
    summary.seconds = time.perf_counter() - t0
    print(summary.line(Path(output), engine), file=sys.stderr)
    return summary
