"""`make bench` rewrites docs/benchmark.md: the sections other tools write there survive it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import latency, report, storyboard
from devkit.paths import REPO_ROOT

RESULTS = REPO_ROOT / "bench" / "results" / "latest.json"
REPORT = REPO_ROOT / "docs" / "benchmark.md"


def test_the_tools_markers_are_the_ones_the_report_keeps() -> None:
    text = "\n".join(
        [
            "# old report",
            storyboard.START,
            "storyboard table",
            storyboard.END,
            "stale findings",
            latency.BEGIN,
            "latency table",
            latency.END,
        ]
    )
    assert [name for name, _ in report.marked_sections(text)] == ["storyboard", "latency"]
    rewritten = report.with_kept_sections("# new report\n\nnew findings\n", text)
    assert rewritten == (
        f"# new report\n\nnew findings\n\n{storyboard.START}\nstoryboard table\n{storyboard.END}"
        f"\n\n{latency.BEGIN}\nlatency table\n{latency.END}\n"
    )


def test_a_section_the_new_report_has_itself_is_not_repeated() -> None:
    earlier = f"{latency.BEGIN}\nold\n{latency.END}\n"
    generated = f"# new\n\n{latency.BEGIN}\nnew\n{latency.END}\n"
    assert report.with_kept_sections(generated, earlier) == generated


def test_rewriting_the_committed_report_keeps_its_storyboard_and_latency_sections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From the committed results, as `python -m bench --render` does; then the tools rewrite
    their own sections in the new report, in place."""
    earlier = REPORT.read_text(encoding="utf-8")
    sections = dict(report.marked_sections(earlier))
    assert {"storyboard", "latency"} <= set(sections)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "benchmark.md").write_text(earlier, encoding="utf-8")
    saved = json.loads(RESULTS.read_text())
    report.write_all(saved["machine"], saved["cases"], tmp_path / "latest.json", docs)
    rewritten = (docs / "benchmark.md").read_text(encoding="utf-8")
    assert rewritten.startswith("# Benchmark: the worker against the original design")
    assert "## Expectations" in rewritten
    for section in sections.values():
        assert rewritten.count(section) == 1
    report.write_all(saved["machine"], saved["cases"], tmp_path / "latest.json", docs)
    assert (docs / "benchmark.md").read_text(encoding="utf-8") == rewritten  # a second run: the same
    # Each tool still finds its markers there and replaces its section alone.
    storyboard.write_section(f"{storyboard.START}\nnew storyboard\n{storyboard.END}", docs / "benchmark.md")
    monkeypatch.setattr(latency, "REPORT", docs / "benchmark.md")
    latency.write_report(f"{latency.BEGIN}\nnew latency\n{latency.END}\n")
    final = (docs / "benchmark.md").read_text(encoding="utf-8")
    assert final.count(storyboard.START) == final.count(latency.BEGIN) == 1
    assert "new storyboard" in final and "new latency" in final
    assert final.split(storyboard.START)[0] == rewritten.split(storyboard.START)[0]


def test_the_generated_report_has_no_marked_section_of_its_own() -> None:
    saved = json.loads(RESULTS.read_text())
    generated = report.markdown(saved["machine"], saved["cases"], RESULTS, REPORT.parent)
    assert report.marked_sections(generated) == []
