"""Outcomes from the functions to the harness, as typed records (never parsed from log lines).

Each function records an event's outcome with ``genesys_pipeline.observability.record_outcome``,
which builds a ``genesys_pipeline.outcomes.OutcomeRecord``, logs it and hands it to the outcome sink
(a no-op on AWS). The local runtime sets that sink in every function it runs (``install``): the record
goes, as ``OutcomeRecord.as_json()``, to ``FEED`` in the harness's process, where the ledger's
``OutcomeCapture`` subscribes.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from genesys_pipeline.outcomes import OutcomeRecord

LOG = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], None]
Subscriber = Callable[["OutcomeRecord", "str | None"], None]  # (record, function name)


def install(send: Send) -> bool:
    """In a function's process: set the outcome sink of its own ``genesys_pipeline`` (the copy its code
    directory holds) to ``send``. False when the function has no such package."""
    try:
        from genesys_pipeline.outcomes import set_outcome_sink  # the function's copy, at install
    except ImportError:
        return False
    set_outcome_sink(lambda record: send(record.as_json()))
    return True


class OutcomeFeed:
    """Fan-out of the records the functions send, to whoever subscribed (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers.append(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

    def publish(self, data: dict[str, Any], function: str | None = None) -> None:
        from genesys_pipeline.outcomes import OutcomeRecord  # the harness's copy

        try:
            record = OutcomeRecord.from_json(data)
        except (KeyError, ValueError, TypeError) as exc:
            LOG.warning("an outcome record that does not parse (%s): %r", exc, data)
            return
        with self._lock:
            subscribers = list(self._subscribers)
        for s in subscribers:
            s(record, function)


FEED = OutcomeFeed()

__all__ = ["FEED", "OutcomeFeed", "install"]
