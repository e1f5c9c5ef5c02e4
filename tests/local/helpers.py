from __future__ import annotations

import threading
import time
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


# A gate the in-process test functions can wait on (they share this process's modules).
HOLD = threading.Event()


def wait_until(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
