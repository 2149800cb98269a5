"""`python -m bench.storyboard` (`make bench-storyboard`): what a storyboard costs (issue 13).

For the 10- and 40-minute benchmark videos (moov at the front and at the end), on the S3-like
range server (bench/range_server.py, the same modelled link as `make bench`):

- the worker: `python -m thumbnailer s3://bench/KEY --at 0 --storyboard` (its one thumbnail,
  at 0, is tile 0's keyframe);
- the physical minimum: the moov box plus the keyframe packets the storyboard's tiles show
  (each tile decoded from its keyframe alone; a tile between keyframes, its whole GOP);
- ffmpeg on the same server: `ffmpeg -i URL -vf fps=1/INTERVAL,scale=160:-2,tile=COLSxROWS`, the
  imageio-ffmpeg binary, as an argument list: it reads and decodes the whole file.

Writes bench/results/storyboard.json and the "Storyboard cost" section of docs/benchmark.md
(between its markers; `--render` rewrites the section from the saved JSON, for instance after
`make bench` regenerated the file).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import av

from bench.methods import environment, measure
from bench.minimum import physical_minimum
from bench.range_server import Link, range_server
from bench.report import machine_info
from bench.sections import replace_block
from bench.videos import Video, ensure_videos
from devkit.mp4_boxes import top_level_boxes
from devkit.paths import REPO_ROOT

BUCKET = "bench"
RESULTS = REPO_ROOT / "bench" / "results" / "storyboard.json"
DOCS = REPO_ROOT / "docs" / "benchmark.md"
START, END = "<!-- storyboard:start -->", "<!-- storyboard:end -->"


def keyframe_bytes(path: Path, frame_times: list[float]) -> int:
    """Sizes of the keyframe packets shown at `frame_times` (seconds), from the demuxer's index."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        entries = stream.index_entries
        time_base = stream.time_base
        assert time_base is not None
        start = stream.start_time or 0
        delay = start - entries[0].timestamp  # index timestamps are decode times (bench/minimum.py)
        sizes = {
            round(float((e.timestamp + delay - start) * time_base), 3): e.size
            for e in entries
            if e.is_keyframe
        }
    missing = [t for t in frame_times if round(t, 3) not in sizes]
    if missing:
        raise ValueError(f"{path.name}: no keyframe shown at {missing[:3]}")
    return sum(sizes[round(t, 3)] for t in frame_times)


def moov_bytes(path: Path) -> int:
    return next(size for name, _, size in top_level_boxes(path) if name == "moov")


def run_worker(video: Video, endpoint: str, out: Path) -> dict[str, Any]:
    command = [sys.executable, "-m", "thumbnailer", f"s3://{BUCKET}/{video.key}", "--at", "0", "--storyboard"]
    run = measure([*command, "--out", str(out)], environment(endpoint))
    manifest = run.reported()
    if run.returncode != 0 or manifest.get("status") != "ok":
        raise RuntimeError(f"worker failed on {video.key}: {run.stderr[-2000:]}")
    document = json.loads((out / f"{Path(video.key).name}.storyboard.json").read_text())
    on_keyframes = [tile["frame_time"] for tile in document["tiles"] if tile["keyframe"]]
    # A tile between keyframes (GOPs longer than the interval: the quick videos) needs its GOP.
    between = [tile["start"] for tile in document["tiles"] if not tile["keyframe"]]
    minimum = moov_bytes(video.path) + keyframe_bytes(video.path, on_keyframes)
    minimum += sum(physical_minimum(video.path, seconds).gop_bytes for seconds in between)
    return {
        "wall_s": round(run.wall_s, 2),
        "peak_rss_mb": round(run.peak_rss_mb, 1),
        "bytes_read": manifest["io"]["bytes_read"],
        "requests": manifest["io"]["requests"],
        "storyboard_ms": manifest["timings_ms"].get("storyboard"),
        "tiles": len(document["tiles"]),
        "keyframe_tiles": sum(tile["keyframe"] for tile in document["tiles"]),
        "interval_s": document["tiles"][1]["start"] if len(document["tiles"]) > 1 else None,
        "columns": document["columns"],
        "rows": document["rows"],
        "minimum_bytes": minimum,
    }


def ffmpeg_command(url: str, interval: float, columns: int, rows: int, out: Path) -> list[str]:
    import imageio_ffmpeg

    graph = f"fps=1/{interval:g},scale=160:-2,tile={columns}x{rows}"
    return [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-v",
        "error",
        "-y",
        "-i",
        url,
        "-vf",
        graph,
        "-frames:v",
        "1",
        str(out),
    ]


def run_case(video: Video, link: Link, work: Path) -> dict[str, Any]:
    case: dict[str, Any] = {
        "video": video.path.name,
        "minutes": round(video.seconds / 60, 1),
        "size": video.size,
        "moov_at_end": video.moov_at_end,
    }
    with range_server(BUCKET, {video.key: video.path}, link) as server:
        worker = run_worker(video, server.endpoint_url, work / "worker")
        worker["server_bytes"] = server.counters.snapshot()[1]
        server.counters.reset()
        url = f"{server.endpoint_url}/{BUCKET}/{quote(video.key)}"
        command = ffmpeg_command(
            url, worker["interval_s"], worker["columns"], worker["rows"], work / "ffmpeg.jpg"
        )
        ffmpeg = measure(command, environment(server.endpoint_url), timeout_s=3600)
        requests, sent = server.counters.snapshot()
    case["worker"] = worker
    case["ffmpeg"] = {
        "ok": ffmpeg.returncode == 0,
        "wall_s": round(ffmpeg.wall_s, 2),
        "peak_rss_mb": round(ffmpeg.peak_rss_mb, 1),
        "bytes_read": sent,
        "requests": requests,
        "command": " ".join(command[1:]).replace(url, "URL").replace(str(work), "OUT"),
    }
    return case


def render_section(machine: dict[str, Any], cases: list[dict[str, Any]]) -> str:
    lines = [
        START,
        "## Storyboard cost (issue 13)",
        "",
        "`make bench-storyboard` (`python -m bench.storyboard`): one storyboard (sprite, WebVTT, JSON map)",
        "of each long video, through the worker CLI (`--at 0 --storyboard`) and through ffmpeg",
        "(`-vf fps=1/INTERVAL,scale=160:-2,tile=COLSxROWS`), both reading over HTTP from the range server",
        f"({machine['range_server']['first_byte_delay_ms']:g} ms first byte,",
        f"{machine['range_server']['mb_per_s']:g} MB/s per connection) on {machine['cpu']}",
        f"({machine['cpus']} CPUs), {machine['date']}. Minimum: the moov box plus the keyframe packets the",
        "tiles show. Results: bench/results/storyboard.json. Load average at the start:",
        f"{', '.join(f'{x:g}' for x in machine['load_average_at_start'])} (a busy machine is slower).",
        "",
        "| video | size | tiles (on keyframes) | worker read | minimum | read / minimum | worker time |"
        " ffmpeg read | ffmpeg time |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for case in cases:
        worker, ffmpeg = case["worker"], case["ffmpeg"]
        where = "moov at end" if case["moov_at_end"] else "moov first"
        lines.append(
            f"| {case['minutes']:g} min, {where} | {_mb(case['size'])} | {worker['tiles']} "
            f"({worker['keyframe_tiles']}) every {worker['interval_s']:g} s | {_mb(worker['bytes_read'])} in "
            f"{worker['requests']} GETs | {_mb(worker['minimum_bytes'])} | "
            f"{worker['bytes_read'] / worker['minimum_bytes']:.2f} | {worker['wall_s']:.1f} s | "
            f"{_mb(ffmpeg['bytes_read'])} | {ffmpeg['wall_s']:.1f} s{'' if ffmpeg['ok'] else ' (failed)'} |"
        )
    lines += ["", END]
    return "\n".join(lines)


def _mb(count: int) -> str:
    return f"{count / 1e6:,.1f} MB"


def write_section(section: str, docs: Path = DOCS) -> None:
    replace_block(docs, section, START, END)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.storyboard", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="the 6 and 12 s videos, results under bench/cache/"
    )
    parser.add_argument("--render", action="store_true", help="only rewrite the docs section from the JSON")
    parser.add_argument("--min-seconds", type=float, default=600.0, help="skip shorter videos (full run)")
    args = parser.parse_args(argv)
    results = REPO_ROOT / "bench" / "cache" / "quick" / "storyboard.json" if args.quick else RESULTS
    docs = results.with_suffix(".md") if args.quick else DOCS
    if args.render:
        saved = json.loads(results.read_text())
        write_section(render_section(saved["machine"], saved["cases"]), docs)
        return 0
    link = Link()
    videos = [v for v in ensure_videos(quick=args.quick) if args.quick or v.seconds >= args.min_seconds]
    cases = []
    with tempfile.TemporaryDirectory(prefix="bench-storyboard-") as work:
        for video in videos:
            print(f"storyboard of {video.path.name} ...", flush=True)
            case = run_case(video, link, Path(work))
            print(json.dumps(case), flush=True)
            cases.append(case)
    machine = machine_info(link)
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps({"machine": machine, "cases": cases}, indent=2) + "\n")
    write_section(render_section(machine, cases), docs)
    print(f"results: {results}\nreport: {docs}")
    return 0 if all(case["ffmpeg"]["ok"] for case in cases) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
