"""Results: bench/results/latest.json, docs/benchmark.md (tables and verdicts), docs/benchmark.png."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import statistics
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import psutil

from bench.range_server import Link

FINDINGS = Path(__file__).resolve().parent / "findings.md"


def machine_info(link: Link) -> dict[str, Any]:
    import av
    import boto3
    import imageio_ffmpeg

    cpu_model = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpu": cpu_model,
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "pyav": av.__version__,
        "ffmpeg_libraries": av.library_versions.get("libavcodec"),
        "ffmpeg_binary": imageio_ffmpeg.get_ffmpeg_version(),
        "boto3": boto3.__version__,
        "ffmpegthumbnailer": _ffmpegthumbnailer_version(),
        "range_server": {
            "first_byte_delay_ms": link.first_byte_delay_s * 1000,
            "mb_per_s": link.bytes_per_second / 1e6,
        },
    }


def _ffmpegthumbnailer_version() -> str | None:
    """`ffmpegthumbnailer -v`, or None when it is not installed (its cases are then skipped)."""
    import subprocess

    from bench.methods import ffmpegthumbnailer_exe

    exe = ffmpegthumbnailer_exe()
    if exe is None:
        return None
    done = subprocess.run([exe, "-v"], capture_output=True, text=True, check=False)
    return (
        (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr) else "installed"
    )


def write_all(machine: dict[str, Any], cases: list[dict[str, Any]], results: Path, docs: Path) -> None:
    results.parent.mkdir(parents=True, exist_ok=True)
    docs.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps({"machine": machine, "cases": cases}, indent=1) + "\n")
    report = docs / "benchmark.md"
    earlier = report.read_text(encoding="utf-8") if report.exists() else ""
    report.write_text(with_kept_sections(markdown(machine, cases, results, docs), earlier), encoding="utf-8")
    plot(cases, docs / "benchmark.png")


# A section another tool writes into docs/benchmark.md, between its own markers: the storyboard's
# (`python -m bench.storyboard`, storyboard:start/end) and the latency's (`python -m bench.latency`,
# latency:begin/end). Rewriting the report keeps each one as it was, in its order, at the end.
_MARKED_SECTION = re.compile(r"<!-- ([\w-]+):(?:begin|start) -->.*?<!-- \1:end -->", re.DOTALL)


def marked_sections(text: str) -> list[tuple[str, str]]:
    """(name, text from its opening marker to its closing one) of each marked section in `text`."""
    return [(match.group(1), match.group(0)) for match in _MARKED_SECTION.finditer(text)]


def with_kept_sections(generated: str, earlier: str) -> str:
    """The `generated` report followed by the marked sections of the `earlier` one, unchanged
    (a section the generated report has itself, by name, is not repeated)."""
    present = {name for name, _ in marked_sections(generated)}
    kept = [section for name, section in marked_sections(earlier) if name not in present]
    return generated.rstrip("\n") + "".join(f"\n\n{section}" for section in kept) + "\n"


def _median_cases(cases: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (server, method, video, position): the median over repeats."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for case in cases:
        groups.setdefault((case["server"], case["method"], case["video"], case["at"]), []).append(case)
    rows = []
    for group in groups.values():
        row = dict(group[0])
        for key in ("wall_s", "bytes_read", "requests", "peak_rss_mb"):
            row[key] = statistics.median(c[key] for c in group)
        row["ok"] = all(c["ok"] for c in group)
        rows.append(row)
    return rows


def _find(rows: list[dict[str, Any]], **match: Any) -> list[dict[str, Any]]:
    return [r for r in rows if all(r.get(k) == v for k, v in match.items())]


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value / 1e6:,.2f}"


METHOD_ORDER = {"original": 0, "ffmpeg-url": 1, "ffmpegthumbnailer-url": 2, "worker": 3, "worker-warm": 4}
PEERS = ("ffmpeg-url", "ffmpegthumbnailer-url")


def best_peer(rows: list[dict[str, Any]], row: dict[str, Any], metric: str) -> float | None:
    """The best (lowest) value of `metric` among the peers' rows for the same server, video and time."""
    values = [
        r[metric]
        for r in rows
        if r["method"] in PEERS
        and r["ok"]
        and (r["server"], r["video"], r["at"]) == (row["server"], row["video"], row["at"])
    ]
    return min(values) if values else None


def _vs_peer(rows: list[dict[str, Any]], row: dict[str, Any], metric: str) -> str:
    best = best_peer(rows, row, metric)
    return f"{row[metric] / best:.2f}" if best else "-"


def _table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| video | moov | at | method | wall s | time / best peer | MB read | bytes / best peer | requests "
        "| peak RSS MB | minimum MB | read / minimum | where the time went | ok |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    every = rows
    rows = sorted(
        rows,
        key=lambda r: (
            r["video_seconds"],
            r["moov_at_end"],
            r["at"] == "auto",
            r["at"],
            METHOD_ORDER.get(r["method"], 9),
        ),
    )
    for r in rows:
        ratio = f"{r['bytes_read'] / r['min_bytes']:.2f}" if r.get("min_bytes") else "-"
        at = (
            r["at"]
            if r["at"] != "auto"
            else f"auto ({r['position_s']:g} s)"
            if r.get("position_s") is not None
            else "auto"
        )
        lines.append(
            f"| {r['video_seconds'] / 60:g} min, {r['video_bytes'] / 1e6:,.0f} MB "
            f"| {'end' if r['moov_at_end'] else 'front'} "
            f"| {at} | {r['method']} | {r['wall_s']:.2f} | {_vs_peer(every, r, 'wall_s')} "
            f"| {_mb(r['bytes_read'])} | {_vs_peer(every, r, 'bytes_read')} | {r['requests']:g} "
            f"| {r['peak_rss_mb']:.0f} | {_mb(r.get('min_bytes'))} | {ratio} | {_breakdown(r)} "
            f"| {'yes' if r['ok'] else 'NO'} |"
        )
    return lines


def _breakdown(row: dict[str, Any]) -> str:
    """The process's own account of its time: download + ffmpeg, or the worker's stages."""
    if timings := row.get("original_timings_s"):
        return f"download {timings['download_s']:.1f} s, ffmpeg {timings['ffmpeg_s']:.1f} s"
    if stages := row.get("worker_timings_ms"):
        shown = ", ".join(f"{name} {ms / 1000:.2f}" for name, ms in stages.items() if ms >= 50)
        warm = (
            f" (process start-up {row['warm_startup_s']:.2f} s paid once)" if "warm_startup_s" in row else ""
        )
        return (f"{shown} s" if shown else "-") + warm
    return "-"


def _where(row: dict[str, Any]) -> str:
    return (
        f"{row['video_seconds'] / 60:g} min, moov {'end' if row['moov_at_end'] else 'front'}, at {row['at']}"
    )


def expectations(cases: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(expectation, verdict, measured) for each expectation of issue 5, from the range server runs."""
    rows = [r for r in _median_cases(cases) if r["server"] == "range"]
    return [
        *_against_peers(rows),
        *_against_original(rows),
        *_against_minimum(rows),
        *_flatness(rows),
        *_memory(rows),
    ]


PEER_TARGET_MINUTES = (10, 40)
PEER_TARGET_POSITIONS = ("50%", "90%")


def _against_peers(rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """Issue 11's targets on the 10- and 40-minute files at 50% and 90%: cold, warm and bytes."""
    targets = (
        ("worker", "wall_s", 1.0, "cold (one video per process): worker at least as fast as the best peer"),
        (
            "worker-warm",
            "wall_s",
            0.5,
            "warm (per video, start-up paid once): worker >= 2x faster than the best peer",
        ),
        ("worker", "bytes_read", 0.5, "worker reads >= 2x fewer bytes than the best peer"),
    )
    out = []
    for method, metric, limit, name in targets:
        ratios = []
        for row in rows:
            if (
                row["method"] == method
                and row["video_seconds"] / 60 in PEER_TARGET_MINUTES
                and row["at"] in PEER_TARGET_POSITIONS
                and (best := best_peer(rows, row, metric))
            ):
                ratios.append((row[metric] / best, row))
        if not ratios:
            continue
        worst_ratio, worst = max(ratios, key=lambda pair: pair[0])
        best_ratio = min(ratio for ratio, _ in ratios)
        unit = "s" if metric == "wall_s" else "MB"
        value = f"{worst[metric]:.2f}" if metric == "wall_s" else _mb(worst[metric])
        peer = best_peer(rows, worst, metric) or 0
        peer_value = f"{peer:.2f}" if metric == "wall_s" else _mb(peer)
        out.append(
            (
                name,
                _verdict(worst_ratio <= limit),
                f"worker / best peer {best_ratio:.2f}-{worst_ratio:.2f} (target <= {limit:g}); worst "
                f"{_where(worst)}: {value} {unit} vs {peer_value} {unit}",
            )
        )
    return out


def _against_original(rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """Mid-video in the 10-minute file (or the file closest to it): speed and bytes ratios."""
    lengths = sorted({r["video_seconds"] for r in rows}, key=lambda s: abs(s - 600))
    pairs = [
        (o, w)
        for o in _find(rows, method="original", at="50%", video_seconds=lengths[0] if lengths else None)
        for w in _find(
            rows, method="worker", at="50%", video_seconds=o["video_seconds"], moov_at_end=o["moov_at_end"]
        )
    ]
    if not pairs:
        return []
    speed = min(o["wall_s"] / w["wall_s"] for o, w in pairs)
    fewer = min(o["bytes_read"] / max(1, w["bytes_read"]) for o, w in pairs)
    timing = "; ".join(
        f"moov {'end' if o['moov_at_end'] else 'front'}: {o['wall_s']:.2f} s vs {w['wall_s']:.2f} s"
        for o, w in pairs
    )
    volume = "; ".join(
        f"moov {'end' if o['moov_at_end'] else 'front'}: "
        f"{_mb(o['bytes_read'])} MB vs {_mb(w['bytes_read'])} MB"
        for o, w in pairs
    )
    minutes = f"{pairs[0][0]['video_seconds'] / 60:g}-min video, middle"
    return [
        (f"{minutes}: worker >= 50x faster", _verdict(speed >= 50), f"{speed:.0f}x at worst ({timing})"),
        (
            f"{minutes}: worker reads >= 100x fewer bytes",
            _verdict(fewer >= 100),
            f"{fewer:.0f}x at worst ({volume})",
        ),
    ]


def _against_minimum(rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """Exact-time cases against moov + GOP; `auto` (which samples many keyframes by design) apart."""
    out = []
    exact = [r for r in rows if r["method"] == "worker" and r["at"] != "auto" and r.get("min_bytes")]
    if exact:
        worst = max(exact, key=lambda r: r["bytes_read"] / r["min_bytes"])
        ratio = worst["bytes_read"] / worst["min_bytes"]
        median = statistics.median(r["bytes_read"] / r["min_bytes"] for r in exact)
        out.append(
            (
                "worker reads <= 2x the physical minimum (exact times)",
                _verdict(ratio <= 2),
                f"median {median:.2f}x, worst {ratio:.2f}x ({_where(worst)}: {_mb(worst['bytes_read'])} MB "
                f"vs {_mb(worst['min_bytes'])} MB)",
            )
        )
    auto = [r for r in rows if r["method"] == "worker" and r["at"] == "auto"]
    if auto:
        worst = max(auto, key=lambda r: r["bytes_read"] / r["video_bytes"])
        out.append(
            (
                "(not an expectation) `auto`: bytes read",
                "-",
                f"up to {_mb(worst['bytes_read'])} MB, "
                f"{100 * worst['bytes_read'] / worst['video_bytes']:.0f}% "
                f"of the video ({_where(worst)})",
            )
        )
    return out


def _flatness(rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """Worker at mid-video, shortest against longest video: time, bytes, and bytes beyond the moov box."""
    mids = _find(rows, method="worker", at="50%")
    if len({r["video_seconds"] for r in mids}) < 2:
        return []
    shortest, longest = min(r["video_seconds"] for r in mids), max(r["video_seconds"] for r in mids)
    parts, flat = [], True
    for moov_end in (False, True):
        a = _find(mids, video_seconds=shortest, moov_at_end=moov_end)
        b = _find(mids, video_seconds=longest, moov_at_end=moov_end)
        if not (a and b):
            continue
        first, last = a[0], b[0]
        time_ratio = last["wall_s"] / first["wall_s"]
        bytes_ratio = last["bytes_read"] / first["bytes_read"]
        beyond = (last["bytes_read"] - last.get("moov_bytes", 0)) / (
            first["bytes_read"] - first.get("moov_bytes", 0)
        )
        flat = flat and time_ratio <= 1.5 and beyond <= 1.5
        parts.append(
            f"moov {'end' if moov_end else 'front'}: time x{time_ratio:.2f}, bytes x{bytes_ratio:.2f} "
            f"(moov {_mb(first.get('moov_bytes'))} -> {_mb(last.get('moov_bytes'))} MB), "
            f"bytes beyond the moov x{beyond:.2f}"
        )
    return [
        (
            f"worker time and bytes flat from {shortest / 60:g} to {longest / 60:g} min "
            "(within 1.5x; the moov box, which grows with duration, aside)",
            _verdict(flat),
            "; ".join(parts),
        )
    ]


def _memory(rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    worker = [r for r in rows if r["method"] == "worker"]
    if not worker:
        return []
    peak = max(worker, key=lambda r: r["peak_rss_mb"])
    return [
        (
            "worker peak RSS < 200 MB",
            _verdict(peak["peak_rss_mb"] < 200),
            f"max {peak['peak_rss_mb']:.0f} MB ({_where(peak)})",
        )
    ]


def skipped_original(rows: list[dict[str, Any]]) -> list[str]:
    """Exact-time cases the worker ran and the original did not (the default plan's time budget)."""
    done = {(r["server"], r["video"], r["at"]) for r in rows if r["method"] == "original"}
    return sorted(
        {
            _where(r)
            for r in rows
            if r["method"] == "worker"
            and r["at"] != "auto"
            and (r["server"], r["video"], r["at"]) not in done
            and r["server"] == "range"
        }
    )


def _verdict(holds: bool) -> str:
    return "holds" if holds else "falls short"


def markdown(machine: dict[str, Any], cases: list[dict[str, Any]], results: Path, docs: Path) -> str:
    rows = _median_cases(cases)
    link = machine["range_server"]
    lines = [
        "# Benchmark: the worker against the original design and the strongest peers",
        "",
        "Generated by `make bench` (`python -m bench`); raw figures in "
        f"[`{_relative(results, docs)}`]({_relative(results, docs)}). Do not edit by hand: "
        "the findings section comes from `bench/findings.md`; the sections at the end, between HTML "
        "comment markers (`storyboard:start`/`storyboard:end`, `latency:begin`/`latency:end`), are "
        "written by their own tools (`python -m bench.storyboard`, `python -m bench.latency`) and kept "
        "when `make bench` rewrites this file.",
        "",
        "![bytes read and wall time against video size](benchmark.png)",
        "",
        "## Method",
        "",
        "- Videos made by the benchmark (`bench/videos.py`, cached in `bench/cache/`): one 60 s 1080p30 "
        "H.264 segment (x264, keyframe every 2 s, about 4 Mbit/s, stereo AAC) encoded once, and longer "
        "files made by remuxing its packets with shifted timestamps; each with the moov box at the front "
        "(`+faststart`) and at the end.",
        "- `original`: the blog design as one process (`bench/original.py`): boto3 `download_file` of the "
        "whole object, then `ffmpeg -i FILE -ss POS -frames:v 1 -vcodec png` (imageio-ffmpeg's binary).",
        "- `worker`: this project's worker CLI, `python -m thumbnailer s3://bucket/key --at POS --format png "
        "--out DIR`, as the task runs it; `auto` lets it pick the frame.",
        "- The peers, on a presigned URL of the same object (made by the benchmark, not timed): "
        "`ffmpeg-url`, `ffmpeg -ss POS -i URL -frames:v 1 out.png` (input seeking, imageio-ffmpeg's binary), "
        "and `ffmpegthumbnailer-url`, `ffmpegthumbnailer -i URL -o out.png -s 0 -t HH:MM:SS -c png` "
        f"(Debian's package; {_thumbnailer_note(machine)}). "
        "`time / best peer` and `bytes / best peer` divide by the best of the peers in the same case.",
        "- `worker-warm`: one worker process over several videos (`python -m thumbnailer s3://... s3://... "
        "--at 50% ...`, `bench/warm.py`), as a resident worker would take them: the first video pays the "
        "start-up and is left out; each following video is timed from the previous manifest line on stdout "
        "to its own, its bytes and requests the worker's own count (manifest `io`, which matches the "
        "server's in every cold case) plus the HEAD before writing.",
        "- Every method is timed as a whole process (interpreter start included), methods alternating "
        "case by case, and writes one PNG at the source size; peak RSS is the process tree's, polled "
        "every 10 ms.",
        "- Servers: a loopback S3-like range server (`bench/range_server.py`) with "
        f"{link['first_byte_delay_ms']:g} ms "
        f"to first byte and {link['mb_per_s']:g} MB/s per connection, the timing reference; and moto (the "
        "project's embedded S3) behind a counting proxy, for API fidelity. Both count requests and the body "
        "bytes actually written to sockets.",
        "- Physical minimum: the moov box plus the video packets of the group of pictures holding the frame "
        "(`bench/minimum.py`, from the demuxer's index).",
        "",
        "## Machine",
        "",
        f"{machine['cpus']} CPUs ({machine['cpu']}), {machine['memory_gb']} GB, {machine['platform']}, "
        f"Python {machine['python']}, PyAV {machine['pyav']}, ffmpeg binary {machine['ffmpeg_binary']}, "
        f"boto3 {machine['boto3']}. Load average at start {machine['load_average_at_start']}; "
        f"run took {machine.get('run_seconds', '?')} s on {machine['date']}.",
        "",
        "## Expectations",
        "",
        "| expectation | verdict | measured (range server) |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {verdict} | {measured} |" for name, verdict, measured in expectations(cases)]
    if skipped := skipped_original(rows):
        lines += [
            "",
            "Original-design cases not run, to keep `make bench` under 20 minutes "
            "(`--exhaustive` runs them): "
            + "; ".join(skipped)
            + ". Its cost does not depend on where the moov box is (it reads a local file) and grows "
            "with the frame's position (ffmpeg decodes from the start): see the rows that ran.",
        ]
    for server, title in (
        ("range", "S3-like range server (timing reference)"),
        ("moto", "moto (embedded S3)"),
    ):
        subset = [r for r in rows if r["server"] == server]
        if subset:
            lines += ["", f"## Results: {title}", "", *_table(subset)]
    if FINDINGS.exists():
        lines += ["", FINDINGS.read_text().strip()]
    return "\n".join(lines) + "\n"


def _thumbnailer_note(machine: dict[str, Any]) -> str:
    version = machine.get("ffmpegthumbnailer")
    if version:
        return f"{version}; it takes whole seconds"
    return "**not installed on this machine: its cases were skipped** (`apt-get install ffmpegthumbnailer`)"


def _relative(path: Path, start: Path) -> str:
    return os.path.relpath(path.resolve(), start.resolve())


def plot(cases: list[dict[str, Any]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in _median_cases(cases) if r["server"] == "range" and r["at"] == "50%"]
    fig, (ax_bytes, ax_time) = plt.subplots(1, 2, figsize=(12, 5))
    styles = {
        "original": ("tab:red", "o"),
        "ffmpeg-url": ("tab:orange", "^"),
        "ffmpegthumbnailer-url": ("tab:green", "v"),
        "worker": ("tab:blue", "s"),
        "worker-warm": ("tab:purple", "D"),
    }
    for method, (color, marker) in styles.items():
        for moov_end, line in ((False, "-"), (True, "--")):
            points = sorted(
                (r["video_bytes"] / 1e6, r["bytes_read"] / 1e6, r["wall_s"])
                for r in _find(rows, method=method, moov_at_end=moov_end)
            )
            if not points:
                continue
            sizes, read, wall = zip(*points, strict=True)
            label = f"{method}, moov {'end' if moov_end else 'front'}"
            ax_bytes.plot(sizes, read, line, color=color, marker=marker, label=label)
            ax_time.plot(sizes, wall, line, color=color, marker=marker, label=label)
    minimum = sorted({(r["video_bytes"] / 1e6, r["min_bytes"] / 1e6) for r in rows if r.get("min_bytes")})
    if minimum:
        sizes, least = zip(*minimum, strict=True)
        ax_bytes.plot(sizes, least, ":", color="gray", label="physical minimum")
    for ax, label in ((ax_bytes, "MB read from the server"), (ax_time, "wall time, s")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("video size, MB")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    ax_bytes.set_title("Bytes read, frame in the middle")
    ax_time.set_title("Wall time, frame in the middle")
    ax_bytes.legend(fontsize=7)
    ax_time.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
