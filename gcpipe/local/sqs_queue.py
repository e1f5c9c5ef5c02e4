"""SQS queue bookkeeping at the scale of a soak (moto 5.2.5): counting a long queue, and concurrent receives
(gap 2, below).

Gap 1: moto counts a queue's messages by reading the clock once per message, several times over, on
paths that have nothing to do with the counts:

- ``Queue.attributes`` computes ``ApproximateNumberOfMessages``, ``...Delayed`` and ``...NotVisible`` by
  walking every message of the queue, each check reading the clock (about 4 clock reads per message);
- ``SendMessage`` reads ``queue.attributes`` for ``ContentBasedDeduplication``, so every send walks the queue;
- ``ReceiveMessage`` checks each message it returns against the retention period through
  ``get_queue_attributes``, which builds ``queue.attributes`` three times per attribute name.

With a few thousand messages waiting (a 5,000-event chaos run), that made sending and receiving quadratic:
py-spy found 59 % of the local emulator's GIL time under ``Queue.attributes``. The replacements count with one
clock read per count (the same counts: moto's ``visible`` is ``now > visible_at`` and ``delayed`` is
``now < delayed_until``), and the retention check reads the queue's retention period directly.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from moto.core.utils import unix_time, unix_time_millis

LONG_POLL_INTERVAL_SECONDS = 0.05  # how often a long poll looks again, outside the queue's lock


# The counts moto's properties compute (``Message.visible``: now > visible_at; ``Message.delayed``: now <
# delayed_until), with the clock read once per count; the list is copied because senders append meanwhile.
def approximate_number_of_messages(queue: Any) -> int:
    now = unix_time_millis()
    return sum(1 for m in list(queue._messages) if now > m.visible_at and not now < m.delayed_until)


def approximate_number_of_messages_delayed(queue: Any) -> int:
    now = unix_time_millis()
    return sum(1 for m in list(queue._messages) if now < m.delayed_until)


def approximate_number_of_messages_not_visible(queue: Any) -> int:
    now = unix_time_millis()
    return sum(1 for m in list(queue._messages) if not now > m.visible_at)


COUNTS = (
    approximate_number_of_messages,
    approximate_number_of_messages_delayed,
    approximate_number_of_messages_not_visible,
)


def message_within_retention(backend: Any, queue_name: str, message: Any) -> bool:
    """``SQSBackend.is_message_valid_based_on_retention_period`` without building the queue's attributes."""
    retention_period = int(backend.get_queue(queue_name).message_retention_period)
    return bool(retention_period + message.sent_timestamp / 1000 > unix_time())


# Gap 2: ReceiveMessage is not atomic. moto checks that a message is visible and then marks it received, with
# nothing between two concurrent receives (server mode: one thread per request; the local pollers receive with
# several threads). Both can take the same message: it is handed out twice, and the first receiver's receipt
# handle is superseded, so its delete does not take and the message comes back after the visibility timeout
# (12 threads on 1,500 messages: 3 handed out twice, 20 left in flight; a 5,000-event soak counted one
# event's outcome twice). ``atomic_receive`` and ``under_queue_lock`` make receive, delete and visibility
# changes one step per queue, as SQS's are; a long poll waits outside the lock.
_locks: dict[tuple[int, str], threading.RLock] = {}
_locks_guard = threading.Lock()


def _queue_lock(backend: Any, queue_name: str) -> threading.RLock:
    with _locks_guard:
        return _locks.setdefault((id(backend), queue_name), threading.RLock())


def atomic_receive(original: Callable[..., Any]) -> Callable[..., Any]:
    """``SQSBackend.receive_message``, one receive at a time per queue; a long poll retries outside the lock."""

    def receive_message(
        self: Any,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        visibility_timeout: int,
        message_attribute_names: list[str] | None = None,
    ) -> Any:
        deadline = time.monotonic() + (wait_seconds_timeout or 0)
        while True:
            with _queue_lock(self, queue_name):
                received = original(self, queue_name, count, 0, visibility_timeout, message_attribute_names)
            if received or time.monotonic() >= deadline:
                return received
            time.sleep(LONG_POLL_INTERVAL_SECONDS)

    return receive_message


def under_queue_lock(original: Callable[..., Any]) -> Callable[..., Any]:
    """A backend operation on one queue's messages (delete, change visibility), atomic with its receives."""

    def locked(self: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        with _queue_lock(self, queue_name):
            return original(self, queue_name, *args, **kwargs)

    return locked


__all__ = [
    "COUNTS",
    "atomic_receive",
    "under_queue_lock",
    "approximate_number_of_messages",
    "approximate_number_of_messages_delayed",
    "approximate_number_of_messages_not_visible",
    "message_within_retention",
]
