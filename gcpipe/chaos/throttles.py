"""Lambda throttles: the local runtime's reserved-concurrency seam refuses an invocation at random, as Lambda
answers 429 ``TooManyRequestsException`` (``lambda_runtime.FunctionThrottled``). The SQS poller leaves a
throttled dispatcher batch to the visibility timeout (a redelivery); Step Functions sees
``Lambda.TooManyRequestsException`` on the Process task and retries it."""

from __future__ import annotations

import random
import threading
from collections import Counter
from typing import Any

from gcpipe.local.lambda_runtime import FunctionThrottled, ReservedConcurrency


class RandomThrottles(ReservedConcurrency):
    """Reserved concurrency that also throttles ``functions`` with ``probability`` per synchronous invoke."""

    def __init__(self, functions: set[str], probability: float, seed: int):
        super().__init__()
        self._functions = functions
        self._probability = probability
        self._rng = random.Random(f"throttles:{seed}")
        self._lock = threading.Lock()
        self.injected: Counter[str] = Counter()

    def acquire(self, fn: Any, wait_seconds: float = 0.0) -> None:
        if fn.function_name in self._functions:
            with self._lock:
                throttle = self._rng.random() < self._probability
                if throttle:
                    self.injected[fn.function_name] += 1
            if throttle:
                raise FunctionThrottled(fn.function_name, self.limit_of(fn) or 0)
        super().acquire(fn, wait_seconds)


__all__ = ["RandomThrottles"]
