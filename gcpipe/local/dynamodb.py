"""DynamoDB gap of moto 5.2.5, closed here: conditional writes are not atomic.

DynamoDB applies a write's ``ConditionExpression`` and its update as one atomic step: of two
writes conditional on the same ``version``, one succeeds and the other gets
``ConditionalCheckFailedException``. moto's ``DynamoDBBackend.update_item`` (likewise
``put_item``, ``delete_item``, ``transact_write_items``) reads the item, evaluates the condition
and then applies the update with no lock, so two threads of this process (two dispatcher
"containers" reserving request-budget slots, two processors taking the same idempotency key) can
both pass the same condition. Measured on the throughput bench: two dispatchers reserving at the
same moment were handed the same slots, so the budget admitted twice its rate for a while, and
the org-wide window answered 429 (the bug it looked like was the budget's; it was the emulator's).

``atomic`` (applied by ``moto_patches``) serialises every item write and read of the backend under one lock, which gives
the per-item atomicity (and read-your-write) DynamoDB guarantees. It does not model throughput
or contention latency: the local tables answer as fast as moto does.
"""

from __future__ import annotations

import functools
import threading
from typing import Any, Callable


# Re-entrant: moto's batch and transaction operations call the single-item ones.
_LOCK = threading.RLock()
ATOMIC_OPERATIONS = ("put_item", "update_item", "delete_item", "get_item", "transact_write_items")


def atomic(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def atomic(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return method(self, *args, **kwargs)

    return atomic
