"""Run one job and turn its outcome into an exit code and, where one belongs, an error manifest."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools import Logger

from thumbnailer import pipeline
from thumbnailer.errors import EXIT_OK, EXIT_UNEXPECTED, WorkerError
from thumbnailer.logs import StageTimer
from thumbnailer.naming import OutputNames
from thumbnailer.options import Options


def execute(
    prepare: Callable[[], tuple[pipeline.Input, Options]],
    names: OutputNames,
    sink: pipeline.Sink,
    logger: Logger,
    description: Mapping[str, Any],
    *,
    admit: pipeline.Admit | None = None,
) -> tuple[int, dict[str, Any] | None]:
    """Prepare (HEAD, options), run, and on failure write the error manifest where one belongs.

    Returns the exit code and the manifest written (None when none could be).
    """
    timer = StageTimer(logger)
    source: pipeline.Input | None = None
    options: Options | None = None
    try:
        source, options = prepare()
        document = pipeline.run(source, options, names, sink, timer, admit=admit)
    except WorkerError as error:
        if not error.writes_manifest:
            # A newer version is on its way (its own event and task): leave its outputs to it.
            logger.warning("no thumbnail, no manifest", reason=error.reason, error=error.message)
            return error.exit_code, None
        code, reason, message = error.exit_code, error.reason, error.message
    except Exception as error:
        logger.exception("unexpected failure")
        code, reason, message = EXIT_UNEXPECTED, "internal_error", f"{type(error).__name__}: {error}"
    else:
        logger.info(
            "thumbnails written",
            outputs=[t["name"] for t in document["thumbnails"]],
            frame_time=document["frame"]["time"],
            warnings=document["warnings"],
            io=document["io"],
        )
        return EXIT_OK, document
    logger.error("no thumbnail", exit_code=code, reason=reason, error=message)
    try:
        if source is not None:
            source.check_current()  # an older version's error must not hide a newer one's thumbnail
        failure = pipeline.write_failure(
            sink,
            names,
            source=source,
            description=source.description if source else description,
            exit_code=code,
            reason=reason,
            message=message,
            options=options,
        )
    except WorkerError as superseded:
        logger.warning("no error manifest", reason=superseded.reason, error=superseded.message)
        return superseded.exit_code, None
    except Exception:
        logger.exception("the error manifest could not be written")
        return code, None
    return code, failure
