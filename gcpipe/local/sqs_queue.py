"""SQS queue bookkeeping at the scale of a soak (moto 5.2.5).

Gap closed: moto counts a queue's messages by reading the clock once per message, several times over, on
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

from typing import Any

from moto.core.utils import unix_time, unix_time_millis


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


__all__ = [
    "COUNTS",
    "approximate_number_of_messages",
    "approximate_number_of_messages_delayed",
    "approximate_number_of_messages_not_visible",
    "message_within_retention",
]
