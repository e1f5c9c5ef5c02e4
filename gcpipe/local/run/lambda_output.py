"""Where the local Lambdas' own output goes during a run: ``.local-run/lambdas.log``, not the terminal."""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path
from typing import Any, TextIO

from ..run_files import open_keeping_previous, previous_of


def _powertools_handler() -> logging.StreamHandler[TextIO] | None:
    """The stream handler of the handlers' Powertools logger, if this process made one (importing
    ``genesys_pipeline.observability`` makes it; importing it here would make one that was not there)."""
    observability = sys.modules.get("genesys_pipeline.observability")
    if observability is None:
        return None
    handler = getattr(logging.getLogger(observability.SERVICE), "powertools_handler", None)
    return handler if isinstance(handler, logging.StreamHandler) else None


class LambdaOutput:
    """Sends what the local Lambdas print (their workers' Powertools JSON logs, EMF metrics) to a log file.

    ``sys.stdout`` is swapped for the file for the duration (EMF blobs are
    ``print``ed); the Powertools logger's stream handler, created once per
    process with whatever stdout was then, is pointed at the file too and put
    back afterwards. The previous run's file is kept, as ``<name>.previous.log``.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._file: Any = None
        self._stdout: Any = None
        self._previous_stream: Any = None

    def __enter__(self) -> LambdaOutput:
        self._file = open_keeping_previous(self.path)
        self._stdout = sys.stdout
        sys.stdout = self._file
        self._retarget(self._file)
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        file = self._file

        def showwarning(message: Any, category: Any, filename: str, lineno: int, *_: Any, **__: Any) -> None:
            file.write(warnings.formatwarning(message, category, filename, lineno).rstrip() + "\n")

        warnings.showwarning = showwarning  # the Lambdas' warnings (Powertools' "no metrics") go to the log too
        return self

    @property
    def previous_path(self) -> Path:
        return previous_of(self.path)

    def _retarget(self, stream: Any) -> None:
        handler = _powertools_handler()
        if handler is not None:
            previous = handler.setStream(stream)
            if self._previous_stream is None:
                self._previous_stream = previous

    def ensure(self) -> None:
        """Re-point the Powertools handler (it may have been created after __enter__)."""
        if self._file is not None:
            self._retarget(self._file)

    def __exit__(self, *exc: Any) -> None:
        self._warnings.__exit__(*exc)
        sys.stdout = self._stdout
        handler = _powertools_handler()
        if handler is not None:
            restore: Any = self._previous_stream if self._previous_stream not in (None, self._file) else sys.__stdout__
            handler.setStream(restore)
        self._file.close()


__all__ = ["LambdaOutput"]
