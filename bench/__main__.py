"""`python -m bench` (`make bench`): Thumbnail Creator's worker against the original blog design.

Full run: 1, 10 and 40+ minute 1080p videos, moov at front and end, frames at 1 s, the middle
and 90%, both methods alternating, on the S3-like range server and on moto. `--quick` runs a
tiny configuration (6 and 12 s videos) as a smoke test and writes under bench/cache/quick/.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from bench import report
from bench.plan import METHODS, POSITIONS, Plan, run_plan
from bench.range_server import Link
from bench.videos import ensure_videos
from devkit.paths import REPO_ROOT


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny videos, writes under bench/cache/quick/")
    parser.add_argument("--only", choices=METHODS, action="append", help="run only this method (repeatable)")
    parser.add_argument("--servers", default="range,moto", help="comma-separated: range, moto (default both)")
    parser.add_argument("--positions", default=",".join(POSITIONS), help="comma-separated: 1s, 50%%, 90%%")
    parser.add_argument("--max-seconds", type=float, default=None, help="skip videos longer than this")
    parser.add_argument("--moto-max-seconds", type=float, default=600.0, help="longest video served by moto")
    parser.add_argument(
        "--exhaustive",
        action="store_true",
        help="every case on every server (the original on the 40-min file alone takes 10+ minutes)",
    )
    parser.add_argument("--no-auto", action="store_true", help="skip the worker's --at auto cases")
    parser.add_argument("--repeats", type=int, default=1, help="runs per case")
    parser.add_argument("--delay-ms", type=float, default=30.0, help="range server: first-byte delay")
    parser.add_argument(
        "--bandwidth-mbs", type=float, default=100.0, help="range server: MB/s per connection"
    )
    parser.add_argument(
        "--render", action="store_true", help="only rewrite benchmark.md/.png from the saved results JSON"
    )
    parser.add_argument("--results", type=Path, help="JSON path (default bench/results/latest.json)")
    parser.add_argument("--docs", type=Path, help="directory for benchmark.md/.png (default docs/)")
    return parser.parse_args(argv)


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwinds through measure(), which stops the running case's process tree


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, _stop)
    args = parse_args(argv)
    quick_dir = REPO_ROOT / "bench" / "cache" / "quick"
    results = args.results or (
        quick_dir / "latest.json" if args.quick else REPO_ROOT / "bench" / "results" / "latest.json"
    )
    docs = args.docs or (quick_dir if args.quick else REPO_ROOT / "docs")
    if args.render:
        saved = json.loads(results.read_text())
        report.write_all(saved["machine"], saved["cases"], results, docs)
        print(f"report: {docs / 'benchmark.md'}, {docs / 'benchmark.png'}")
        return 0
    videos = ensure_videos(quick=args.quick)
    if args.max_seconds is not None:
        videos = [v for v in videos if v.seconds <= args.max_seconds]
    link = Link(first_byte_delay_s=args.delay_ms / 1000, bytes_per_second=args.bandwidth_mbs * 1e6)
    plan = Plan(
        videos=videos,
        servers=tuple(s.strip() for s in args.servers.split(",") if s.strip()),
        methods=tuple(args.only or METHODS),
        positions=tuple(p.strip() for p in args.positions.split(",") if p.strip()),
        auto=not args.no_auto,
        link=link,
        moto_max_seconds=args.moto_max_seconds,
        moto_positions=tuple(p.strip() for p in args.positions.split(",")) if args.exhaustive else ("50%",),
        original_long_limit_s=None if args.exhaustive else 600.0,
        repeats=args.repeats,
    )
    started = time.perf_counter()
    machine = report.machine_info(link)
    cases = run_plan(plan, log=lambda line: print(line, flush=True))
    machine["run_seconds"] = round(time.perf_counter() - started, 1)
    report.write_all(machine, cases, results, docs)
    print(f"results: {results}\nreport: {docs / 'benchmark.md'}, {docs / 'benchmark.png'}")
    failed = [c for c in cases if not c["ok"]]
    if failed:
        print(f"{len(failed)} case(s) failed; see the report", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
