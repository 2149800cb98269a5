"""The repository's import roots, declared once in pyproject.toml, written into a venv as a .pth file.

mypy reads them from `[tool.mypy] mypy_path` (it ignores .pth directories without a py.typed
marker, so it needs them declared there); `make venv` runs this module so that every other
tool and process started from the venv (pytest, the local stack's worker subprocesses, the
benchmark) finds the same roots through site-packages.
"""

from __future__ import annotations

import site
import tomllib
from pathlib import Path

from devkit.paths import REPO_ROOT

PTH_NAME = "thumbnail_creator.pth"


def import_roots(pyproject: Path = REPO_ROOT / "pyproject.toml") -> list[Path]:
    """The absolute import roots, in the order pyproject.toml lists them."""
    roots: list[str] = tomllib.loads(pyproject.read_text(encoding="utf-8"))["tool"]["mypy"]["mypy_path"]
    return [(pyproject.parent / root).resolve() for root in roots]


def write_pth(site_packages: Path) -> Path:
    """Write the roots into `site_packages`/thumbnail_creator.pth, one a line."""
    path = site_packages / PTH_NAME
    path.write_text("".join(f"{root}\n" for root in import_roots()), encoding="utf-8")
    return path


if __name__ == "__main__":
    print(f"import roots: {write_pth(Path(site.getsitepackages()[0]))}")
