from __future__ import annotations

import time
from pathlib import Path
from typing import Any


def wait_for_execution(sfn: Any, execution_arn: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        described = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            return described
        if time.monotonic() > deadline:
            raise AssertionError(f"{execution_arn} still RUNNING after {timeout}s")
        time.sleep(0.02)


class FileGate:
    """A gate test functions wait on from their own worker processes: open once its file exists.

    A function waits with ``while not os.path.exists(os.environ["GATE"]): time.sleep(0.01)``."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def open(self) -> None:
        self.path.touch()

    def close(self) -> None:
        self.path.unlink(missing_ok=True)


def wait_until(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
