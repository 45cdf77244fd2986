"""The fuzz campaign (issue 31): mutated files through every parser fakescope runs on
untrusted bytes, with a per-input time limit and each target's peak memory.

Targets (tests/fuzz/targets.py): `decode` (the input rule: to_model_input + load_rgb),
`evidence` (read_evidence of bytes and of a file), `archive` (scan's archive listing and
member reading, then decode), and, fewer because each runs a model, `predict_small`
(Detector.predict_batch, cifake-resnet10s), `predict_default` (the default model, photos
included), `inspect` (inspect's rows: pixels + metadata), `scan` (listing + a scan worker's
Scorer.score) and `rest` (POST /api/v1/predict through FastAPI's TestClient).

Each target runs in worker processes of its own: a crash (an exception other than one clean
error), a hang (no answer within --time-limit seconds) or a dead worker is saved under --out
with its traceback and the input, and the worker is replaced.

    nice -n 10 python benchmarks/fuzz.py --seed 1 --out /tmp/fuzz-findings
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' fuzz package
from tests.fuzz.runner import TIME_LIMIT_S, run_campaign  # noqa: E402

PLAN = {
    "decode": 40_000,
    "evidence": 35_000,
    "archive": 20_000,
    "predict_small": 3_000,
    "predict_default": 500,
    "inspect": 1_500,
    "scan": 1_500,
    "rest": 2_000,
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--plan", nargs="*", default=[], help="target=count (default: the PLAN)")
    p.add_argument("--workers", type=int, default=1, help="worker processes per target")
    p.add_argument("--time-limit", type=float, default=TIME_LIMIT_S, help="seconds per input")
    p.add_argument("--out", type=Path, default=Path("fuzz-findings"), help="findings go here")
    p.add_argument("--json", type=Path, help="also write the numbers here")
    args = p.parse_args()
    plan = {t: int(n) for t, n in (a.split("=") for a in args.plan)} or PLAN
    # here, not at the top: the spawned workers re-import this module (and need no torch)
    import torch
    from common import hardware

    t0 = time.perf_counter()
    report = run_campaign(plan, args.seed, args.workers, args.time_limit, args.out)
    wall = time.perf_counter() - t0
    print(
        f"{hardware(torch.device('cpu'))}; torch {torch.__version__}; "
        f"{time.strftime('%Y-%m-%d %H:%M')}; seed {args.seed}; {args.workers} worker(s) per "
        f"target; time limit {args.time_limit:g} s per input; {wall:.0f} s in all"
    )
    print(
        "| target | inputs | row / result | clean error | crash | hang | worker died | "
        "seconds | slowest input s | peak RSS MB |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    for t in plan:
        c = report.counts[t]
        print(
            f"| {t} | {report.total(t):,} | {c['ok']:,} | {c['error']:,} | {c['crash']} | "
            f"{c['hang']} | {c['died']} | {report.seconds[t]:.0f} | {report.slowest_s[t]:.2f} | "
            f"{report.peak_rss_mb[t]:.0f} |"
        )
    total = sum(report.total(t) for t in plan)
    print(f"total {total:,} inputs, {len(report.findings)} findings (saved under {args.out})")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "seed": args.seed,
                    "seconds": wall,
                    "counts": {t: dict(report.counts[t]) for t in plan},
                    "peak_rss_mb": report.peak_rss_mb,
                    "slowest_s": report.slowest_s,
                }
            )
        )


if __name__ == "__main__":
    main()
