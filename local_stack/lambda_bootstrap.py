"""One local Lambda execution environment: `python lambda_bootstrap.py HANDLER RESULT_FD`.

Run by lambda_runner.py as a process of its own, with the function's environment and its code
directory first on PYTHONPATH (Lambda's /var/task). Standard library only, so that the process
holds what the function's package holds and nothing of the local stack.

- Init: imports the handler's module (Lambda's init phase: imports and module code), then
  reports `{"ready": true, "init_ms": ...}` on RESULT_FD.
- Invoke, as many times as the runner asks (a warm environment): one JSON request per line on
  stdin (`request_id`, `event`, `timeout_s`, ...), the handler called with a context object, one
  JSON line on RESULT_FD: `{"request_id", "result"}` or `{"request_id", "errorType", "errorMessage"}`
  (the shape of Lambda's error payload). The function's stdout and stderr are its log.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any


class Context:
    """The attributes of the Lambda runtime's context object that handlers and Powertools read."""

    def __init__(self, request: dict[str, Any]) -> None:
        self.function_name = str(request.get("function_name", ""))
        self.function_version = "$LATEST"
        self.invoked_function_arn = str(request.get("function_arn", ""))
        self.memory_limit_in_mb = int(request.get("memory_mb", 128))
        self.aws_request_id = str(request["request_id"])
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = f"local/[$LATEST]{self.aws_request_id.replace('-', '')}"
        self._deadline = time.monotonic() + float(request.get("timeout_s", 3))

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main(argv: list[str]) -> int:
    handler_name, result_fd = argv[1], int(argv[2])
    if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
        del sys.path[0]  # this script's folder is not the function's
    results = os.fdopen(result_fd, "w", buffering=1, encoding="utf-8")
    started = time.monotonic()
    module_name, _, function_name = handler_name.rpartition(".")
    handler = getattr(importlib.import_module(module_name), function_name)
    results.write(
        json.dumps({"ready": True, "init_ms": round((time.monotonic() - started) * 1000, 1)}) + "\n"
    )
    for line in sys.stdin:
        request = json.loads(line)
        answer: dict[str, Any] = {"request_id": request["request_id"]}
        began = time.monotonic()
        try:
            answer["result"] = handler(request["event"], Context(request))
        except Exception as error:  # the runtime reports a function error: errorType, errorMessage
            traceback.print_exc()
            answer.update(errorType=type(error).__name__, errorMessage=str(error))
        answer["duration_ms"] = round((time.monotonic() - began) * 1000, 1)
        sys.stdout.flush()
        sys.stderr.flush()
        results.write(json.dumps(answer, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
