"""Code shape: no class in container/ or src/ longer than 150 lines, no function longer than 60."""

from __future__ import annotations

import ast
from pathlib import Path

from devkit.paths import REPO_ROOT

MAX_CLASS_LINES = 150
MAX_FUNCTION_LINES = 60
ROOTS = ("container", "src")


def _too_long() -> list[str]:
    offenders = []
    for root in ROOTS:
        for path in sorted((REPO_ROOT / root).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.ClassDef):
                    limit, kind = MAX_CLASS_LINES, "class"
                elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    limit, kind = MAX_FUNCTION_LINES, "function"
                else:
                    continue
                # From the first decorator: a decorated definition's lines are all its own.
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                lines = (node.end_lineno or node.lineno) - first + 1
                if lines > limit:
                    where = Path(path).relative_to(REPO_ROOT)
                    offenders.append(f"{where}:{first} {kind} {node.name}: {lines} lines > {limit}")
    return offenders


def test_no_class_or_function_is_too_long() -> None:
    offenders = _too_long()
    assert not offenders, "too long (split by idea):\n" + "\n".join(offenders)


def test_the_walk_sees_the_code() -> None:
    assert any((REPO_ROOT / root).rglob("*.py") for root in ROOTS)
    assert (REPO_ROOT / "container" / "thumbnailer" / "pipeline.py").is_file()
