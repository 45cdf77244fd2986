"""The campaign: reproducible cases, worker processes, a per-input time limit, peak memory.

Each target runs in worker processes of its own, so that a segfault or a hang kills only the
worker (the runner records it, saves the input, and starts a new worker) and the peak RSS
measured is that target's. A case is rebuilt from (seed, target, index) alone: `case()`.
"""

from __future__ import annotations

import gzip
import multiprocessing
import random
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path

from tests.fuzz.mutate import mutate
from tests.fuzz.seeds import all_seeds

# Per input, every target: past it the input is a hang. The slowest legitimate inputs take
# seconds: a file declaring ~75 MP (under the pixel limit) decodes in 2-9 s, and the default
# model scores a thin 65535-px strip at its full tile budget in 7-15 s, on this shared 2-core
# CPU while a training run and other tests use it.
TIME_LIMIT_S = 30.0


@dataclass
class Case:
    target: str
    index: int
    name: str  # file name: the seed's name (its suffix matters to archives)
    data: bytes
    mutations: list[str]


@dataclass
class Finding:
    kind: str  # "crash", "hang" or "died" (the worker process died: a segfault, an abort)
    case: Case
    detail: str


@dataclass
class Report:
    counts: dict[str, Counter] = field(default_factory=dict)  # target -> status -> n
    seconds: dict[str, float] = field(default_factory=dict)
    slowest_s: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    def total(self, target: str) -> int:
        return sum(self.counts.get(target, Counter()).values())


_SEEDS: dict[str, dict[str, bytes]] | None = None


def seeds_for(target: str) -> dict[str, bytes]:
    from tests.fuzz.targets import ARCHIVE_TARGETS
    from tests.hostile import invalid_files, valid_files

    global _SEEDS
    if _SEEDS is None:
        _SEEDS = all_seeds()
        _SEEDS["image"] |= {f"hostile-{k}": v for k, v in (valid_files() | invalid_files()).items()}
    if target in ARCHIVE_TARGETS:
        return _SEEDS["archive"]
    if target == "predict_default":
        return _SEEDS["image"] | _SEEDS["photo"]
    return _SEEDS["image"]


def case(seed: int, target: str, index: int) -> Case:
    """The index-th input for `target` in campaign `seed` (the same bytes on every run)."""
    if target == "_selftest":
        data = (b"ok", b"hang", b"die", b"raise")[index % 4]
        return Case(target, index, "selftest", data, [])
    rng = random.Random(f"{seed}:{target}:{index}")
    pool = seeds_for(target)
    name = rng.choice(sorted(pool))
    data = pool[name]
    if name.endswith(".tar.gz") and rng.random() < 0.5:  # reach the tar inside the gzip
        inner, done = mutate(gzip.decompress(data), rng)
        return Case(target, index, name, gzip.compress(inner, mtime=0), ["in-gzip", *done])
    if not data:
        return Case(target, index, name, data, [])
    mutated, done = mutate(data, rng)
    return Case(target, index, name, mutated, done)


# ---- worker process --------------------------------------------------------------------------


def _worker(conn: Connection, target: str, tmp: str) -> None:
    """Load what `target` needs, say "ready", then answer one (name, data) at a time with
    (status, detail, seconds, peak RSS in MB) until sent None."""
    import warnings

    from tests.fuzz.targets import WARM, run_target

    warnings.simplefilter("ignore")  # Pillow's warnings about corrupt EXIF are expected here
    if target in WARM:
        WARM[target]()
    conn.send("ready")
    while (msg := conn.recv()) is not None:
        name, data = msg
        t0 = time.perf_counter()
        out = run_target(target, data, name, Path(tmp))
        for p in Path(tmp).iterdir():
            p.unlink()
        conn.send((out.status, out.detail, time.perf_counter() - t0, _peak_rss_mb()))


def _peak_rss_mb() -> float:
    """This process's peak resident memory: VmHWM, not getrusage's ru_maxrss, which Linux
    keeps across exec and so starts at the parent's size when the worker was forked."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Worker:
    def __init__(self, target: str, ctx, tmp: str):
        self.target, self.ctx, self.tmp = target, ctx, tmp
        self.case: Case | None = None
        self.sent = 0.0
        self.start()

    def start(self) -> None:
        self.conn, child = self.ctx.Pipe()
        args = (child, self.target, self.tmp)
        self.proc = self.ctx.Process(target=_worker, args=args, daemon=True)
        self.proc.start()
        child.close()
        if not self.conn.poll(300) or self.conn.recv() != "ready":
            raise RuntimeError(f"fuzz worker for {self.target} did not start")

    def send(self, c: Case) -> None:
        self.case, self.sent = c, time.monotonic()
        self.conn.send((c.name, c.data))

    def restart(self) -> None:
        self.proc.kill()
        self.proc.join()
        self.conn.close()
        self.start()

    def stop(self) -> None:
        try:
            self.conn.send(None)
            self.proc.join(10)
        except OSError:
            pass
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()


def run_campaign(
    plan: dict[str, int],
    seed: int = 0,
    workers: int = 1,
    time_limit_s: float = TIME_LIMIT_S,
    save_to: Path | None = None,
) -> Report:
    """`plan[target]` inputs for each target, `workers` processes per target (targets one
    after another); findings are saved under `save_to` (input + .txt with the reason).
    """
    report = Report()
    for target, n in plan.items():
        _run_target(report, target, n, seed, workers, time_limit_s, save_to)
    return report


def _run_target(
    report: Report,
    target: str,
    n: int,
    seed: int,
    workers: int,
    time_limit_s: float,
    save_to: Path | None,
) -> None:
    ctx = multiprocessing.get_context("spawn")
    counts: Counter = Counter()
    report.counts[target] = counts
    t0 = time.perf_counter()
    slowest = peak = 0.0
    # the scratch folders belong to the runner: a worker killed for a hang cannot clean up
    scratch = tempfile.TemporaryDirectory(prefix="fakescope-fuzz-")
    pool = [
        Worker(target, ctx, tempfile.mkdtemp(dir=scratch.name))
        for _ in range(max(1, min(workers, n)))
    ]
    cases: Iterator[Case] = (case(seed, target, i) for i in range(n))
    busy: dict[Connection, Worker] = {}

    def feed(w: Worker) -> None:
        c = next(cases, None)
        if c is not None:
            w.send(c)
            busy[w.conn] = w

    def found(kind: str, w: Worker, detail: str) -> None:
        assert w.case is not None
        counts[kind] += 1
        f = Finding(kind, w.case, detail)
        report.findings.append(f)
        if save_to is not None:
            save_finding(f, save_to, seed)

    for w in pool:
        feed(w)
    while busy:
        ready = wait(list(busy), timeout=0.5)
        for conn in ready:
            w = busy.pop(conn)
            try:
                status, detail, dt, rss = conn.recv()
            except (EOFError, OSError):
                found("died", w, f"worker exited with {w.proc.exitcode}")
                w.restart()
            else:
                slowest, peak = max(slowest, dt), max(peak, rss)
                if status == "crash":
                    found("crash", w, detail)
                else:
                    counts[status] += 1
            feed(w)
        now = time.monotonic()
        for conn, w in list(busy.items()):
            if now - w.sent > time_limit_s:
                del busy[conn]
                found("hang", w, f"no answer within {time_limit_s:g} s")
                w.restart()
                feed(w)
    for w in pool:
        w.stop()
    scratch.cleanup()
    report.seconds[target] = time.perf_counter() - t0
    report.slowest_s[target], report.peak_rss_mb[target] = slowest, peak


def save_finding(f: Finding, out: Path, seed: int) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{f.kind}-{f.case.target}-s{seed}-{f.case.index}-{Path(f.case.name).name}"
    path = out / stem
    path.write_bytes(f.case.data)
    (out / f"{stem}.txt").write_text(
        f"{f.kind} in {f.case.target}; seed file {f.case.name}; mutations "
        f"{', '.join(f.case.mutations)}\n{f.detail}\n"
    )
    return path
