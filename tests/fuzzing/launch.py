"""`python -m tests.fuzzing.launch REPORT ARGV...`: run ARGV under the fuzz limits, write its rusage.

Linux carries a process's peak RSS across fork and exec: a worker started straight from pytest
(a gigabyte after the large-video tests) would report pytest's peak as its own. Started from this
small process instead, the worker's ru_maxrss is its own.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path


def main() -> int:
    report, argv = Path(sys.argv[1]), sys.argv[2:]
    limit = int(os.environ.get("FUZZ_ADDRESS_SPACE_LIMIT", str(4 << 30)))
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))  # inherited by the worker
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    child = subprocess.Popen(argv)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = 0  # reaped here
    report.write_text(json.dumps({"status": status, "maxrss_kib": usage.ru_maxrss}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
