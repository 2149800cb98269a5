"""`make fuzz N=2000 SEED=1`: run N seeded cases, write every failing input as a reproducer.

Each failure goes to .fuzz-failures/<seed>/ with input.mp4 and case.json (its source, seed,
mutations, the worker's options and what went wrong); rerun one with the command it names.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from tests.fuzzing.harness import make_cases, run_all, summary
from tests.fuzzing.sources import load_sources


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzzing", description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--failures", type=Path, default=Path(".fuzz-failures"))
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fuzz-") as scratch:
        sources = load_sources(Path(scratch) / "sources")
        print(f"{len(sources)} sources; {args.n} cases from seed {args.seed}", flush=True)
        outcomes = run_all(make_cases(sources, args.n, args.seed), Path(scratch) / "cases", args.workers)
        failed = [o for o in outcomes if o.problem]
        for outcome in failed:
            folder = args.failures / str(outcome.case.seed)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "input.mp4").write_bytes(outcome.case.data)
            options = list(outcome.argv[3:])
            record = {
                "source": outcome.case.source,
                "seed": outcome.case.seed,
                "mutations": outcome.case.description,
                "options": options,
                "outcome": outcome.label,
                "problem": outcome.problem,
                "peak_rss_mb": round(outcome.peak_rss / 1e6),
                "seconds": round(outcome.seconds, 2),
                "reproduce": " ".join(
                    [
                        ".venv/bin/python -m thumbnailer",
                        str(folder / "input.mp4"),
                        "--out",
                        str(folder / "out"),
                        *options,
                    ]
                ),
            }
            (folder / "case.json").write_text(json.dumps(record, indent=2) + "\n")
            shutil.rmtree(folder / "out", ignore_errors=True)
    for label, count in summary(outcomes).items():
        print(f"{count:6d}  {label}")
    slowest = max(outcomes, key=lambda o: o.seconds, default=None)
    biggest = max(outcomes, key=lambda o: o.peak_rss, default=None)
    if slowest and biggest:
        print(f"slowest case {slowest.seconds:.1f} s, largest peak RSS {biggest.peak_rss / 1e6:.0f} MB")
    print(
        f"{len(failed)} failing of {len(outcomes)} in {time.monotonic() - started:.0f} s"
        + (f"; reproducers in {args.failures}/" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
