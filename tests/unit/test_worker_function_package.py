"""The worker function as `sam build` makes it: binaries for its architecture, within the size limit.

`sam build` (no Docker) installs container/requirements.txt with pip for the function's platform;
this reads the ELF header of every native library of PyAV, Pillow and numpy in the built function
(a host x86-64 wheel in an arm64 function fails at import on Lambda) and the unzipped size
against Lambda's 250 MB limit for a .zip package with its layers ("Lambda quotas", Lambda
developer guide: "250 MB" unzipped deployment package). It reuses `make sam-build`'s output
(.aws-sam/build) when it is newer than what goes into it, else builds the function alone into a
temporary directory (about a minute).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devkit.paths import REPO_ROOT
from local_stack.template import load_template

FUNCTION = "WorkerFunction"
LIMIT_BYTES = 250 * 1024 * 1024  # Lambda: unzipped .zip deployment package, layers included
# e_machine in the ELF header: what each Lambda architecture runs.
MACHINES = {"arm64": 0xB7, "x86_64": 0x3E}  # EM_AARCH64, EM_X86_64
NATIVE_PACKAGES = ("av", "PIL", "numpy")


def _inputs() -> list[Path]:
    container = REPO_ROOT / "container"
    return [REPO_ROOT / "template.yaml", *(p for p in container.rglob("*") if p.is_file())]


def _built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    made = REPO_ROOT / ".aws-sam" / "build" / FUNCTION
    if made.is_dir():
        newest_input = max(p.stat().st_mtime for p in _inputs() if "__pycache__" not in p.parts)
        if made.stat().st_mtime >= newest_input:
            return made
    sam = shutil.which("sam", path=str(Path(sys.executable).parent)) or shutil.which("sam")
    if sam is None:
        pytest.skip("the SAM CLI is not installed (make venv)")
    build_dir = tmp_path_factory.mktemp("sam-build")
    env = {
        **os.environ,
        "SAM_CLI_TELEMETRY": "0",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    subprocess.run(
        [sam, "build", FUNCTION, "--build-dir", str(build_dir), "--region", "us-east-1"],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=900,
    )
    return build_dir / FUNCTION


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _built(tmp_path_factory)


def elf_machine(path: Path) -> int:
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", f"{path} is not an ELF file"
    byte_order = "little" if header[5] == 1 else "big"
    return int.from_bytes(header[18:20], byte_order)


def test_native_libraries_match_the_functions_architecture(built: Path) -> None:
    (architecture,) = load_template(REPO_ROOT / "template.yaml")["Resources"][FUNCTION]["Properties"][
        "Architectures"
    ]
    wanted = MACHINES[architecture]
    for package in NATIVE_PACKAGES:
        libraries = [p for p in (built / package).rglob("*.so*") if p.is_file()]
        libraries += [p for p in built.glob(f"{package.lower()}*.libs/*.so*") if p.is_file()]
        assert libraries, f"no native library of {package} in {built}"
        wrong = [str(p.relative_to(built)) for p in libraries if elf_machine(p) != wanted]
        assert not wrong, f"{package}: not {architecture}: {wrong[:5]}"
    # Pillow's own libraries are bundled as pillow.libs (a lower-case folder name).
    assert any(built.glob("pillow.libs/*.so*")) or any(built.glob("PIL/*.so"))


def test_the_unzipped_package_fits_lambdas_limit(built: Path) -> None:
    size = sum(p.stat().st_size for p in built.rglob("*") if p.is_file() and not p.is_symlink())
    print(f"\nworker function package, unzipped: {size / 1e6:.1f} MB ({size / LIMIT_BYTES:.0%} of 250 MB)")
    assert size < LIMIT_BYTES
    # The worker's own code is in it, and the image's requirements, not a copy of them.
    assert (built / "thumbnailer" / "lambda_handler.py").is_file()
    assert (built / "requirements.txt").read_text() == (
        REPO_ROOT / "container" / "requirements.txt"
    ).read_text()
