"""A local run's log files (lambdas.log, aws-metrics.log): each run writes a new one and keeps the previous run's."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TextIO

from .. import PROJECT_ROOT

RUN_DIR_NAME = ".local-run"  # a checkout's local run files: lambdas.log, cdk.out, endpoints.json ...
RUN_DIR = PROJECT_ROOT / RUN_DIR_NAME


def previous_of(path: Path) -> Path:
    """Where the previous run's ``path`` is kept: ``<name>.previous<suffix>``."""
    return path.with_name(f"{path.stem}.previous{path.suffix}")


def open_keeping_previous(path: Path) -> TextIO:
    """``path`` opened for writing, line-buffered; a non-empty earlier one moved to ``previous_of(path)``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file() and path.stat().st_size:
        os.replace(path, previous_of(path))
    return open(path, "w", buffering=1, encoding="utf-8")  # the caller closes it


__all__ = ["RUN_DIR", "RUN_DIR_NAME", "open_keeping_previous", "previous_of"]
