"""The Lambda package and the worker image run what the tests ran: one version of each library."""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

from devkit.paths import REPO_ROOT

PIN = re.compile(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(\S+)$")


def _pins(path: Path) -> dict[str, str]:
    """name -> version for every requirement line; anything not pinned with == is an error."""
    pins = {}
    for raw in path.read_text().splitlines():
        requirement = raw.split("#", 1)[0].strip()
        if not requirement:
            continue
        match = PIN.match(requirement)
        assert match, f"{path.relative_to(REPO_ROOT)}: {requirement!r} is not pinned with =="
        pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


@pytest.mark.parametrize("runtime", ["src/launcher/requirements.txt", "container/requirements.txt"])
def test_runtime_requirements_are_pinned_to_the_tested_versions(runtime: str) -> None:
    """Each shipped pin is what requirements-dev.txt pins and what the test environment runs."""
    tested = _pins(REPO_ROOT / "requirements-dev.txt")
    shipped = _pins(REPO_ROOT / runtime)
    assert shipped, f"{runtime} lists nothing"
    mismatched = {}
    for name, pinned in shipped.items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            installed = None
        if installed != pinned or tested.get(name, pinned) != pinned:
            mismatched[name] = {
                "shipped": pinned,
                "installed": installed,
                "requirements-dev": tested.get(name),
            }
    assert not mismatched, f"{runtime} differs from what the tests ran: {mismatched}"
