"""What the worker's processes do first: keep optional accelerators botocore would import out.

botocore imports awscrt (the AWS Common Runtime) and pyOpenSSL when they are installed, to offer
features the worker does not use (CRT signing and transfers, an OpenSSL check). The image has
neither; a developer's venv has both (aws-sam-cli needs them), and they add 0.07-0.1 s to every
start (`python -X importtime -m thumbnailer ...`, docs/benchmark.md). Called only from the entry
points (`python -m thumbnailer`, `python -m thumbnailer.task`), never on import.
"""

from __future__ import annotations

import sys

OPTIONAL_IMPORTS = ("awscrt", "OpenSSL")


def skip_optional_imports() -> None:
    """Make `import awscrt` / `import OpenSSL` fail in this process unless already imported."""
    for name in OPTIONAL_IMPORTS:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # None: "not importable"
