"""The two routes an event takes into a stack, and the one sender that knows them.

- **The bus route**: ``PutPartnerEvents`` on the partner bus, as Genesys delivers; the rule decides
  what reaches the main queue. At most 10 entries a call (EventBridge's PutPartnerEvents quota).
- **The queue route**: straight onto the main queue, as the rule's SQS target delivers, bypassing the
  rule (``SendMessage``, ``SendMessageBatch``). The dispatcher's own checks still apply.

Used by the local run and the e2e harness (both routes), ``LocalPipeline.put_events`` and the
benches (the bus route), and ``gcpipe send`` (the queue route, with its own retries and audit).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

from .envelopes import Envelope, to_entry

PUT_PARTNER_EVENTS_MAX_ENTRIES = 10


@dataclass(frozen=True)
class Put:
    """What a route did with one event: the id it was given (EventBridge's EventId, SQS's MessageId),
    or why it was refused."""

    id: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.id is not None


class EventSender:
    """Puts events on a stack's partner bus or its main queue. Either client may be omitted when its
    route is not used (``gcpipe send`` has no bus route)."""

    def __init__(
        self, *, events: Any = None, sqs: Any = None, queue_url: str | None = None, bus_source: str | None = None
    ):
        self.events, self.sqs, self.queue_url = events, sqs, queue_url
        self.bus_source = bus_source  # the Source of an entry that names none

    # -- the bus route -------------------------------------------------------------------------
    def put_on_bus_raw(self, events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """PutPartnerEvents, 10 per call: envelopes or PutEvents entries in, EventBridge's result entries out.
        A call that raises raises (the caller decides what a refused call means)."""
        entries = [to_entry(e, default_source=self.bus_source) for e in events]
        results: list[dict[str, Any]] = []
        for start in range(0, len(entries), PUT_PARTNER_EVENTS_MAX_ENTRIES):
            chunk = entries[start : start + PUT_PARTNER_EVENTS_MAX_ENTRIES]
            results.extend(self.events.put_partner_events(Entries=chunk)["Entries"])
        return results

    def put_on_bus(self, events: Sequence[dict[str, Any]]) -> list[Put]:
        """PutPartnerEvents, 10 per call; one ``Put`` per event, a refused call reported on each of its events."""
        puts: list[Put] = []
        for start in range(0, len(events), PUT_PARTNER_EVENTS_MAX_ENTRIES):
            chunk = events[start : start + PUT_PARTNER_EVENTS_MAX_ENTRIES]
            try:
                results = self.put_on_bus_raw(chunk)
            except Exception as exc:  # noqa: BLE001 - reported per event
                puts += [Put(error=f"PutPartnerEvents: {type(exc).__name__}: {exc}")] * len(chunk)
                continue
            for result in results:
                if "EventId" in result:
                    puts.append(Put(id=result["EventId"]))
                else:
                    puts.append(
                        Put(error=f"PutPartnerEvents: {result.get('ErrorCode')}: {result.get('ErrorMessage', '')}")
                    )
        return puts

    # -- the queue route -----------------------------------------------------------------------
    def send_to_queue(self, envelope: Envelope) -> Put:
        """SendMessage of one envelope, as the rule's SQS target delivers it (the envelope as the body)."""
        try:
            sent = self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(envelope))
        except Exception as exc:  # noqa: BLE001 - reported on the event
            return Put(error=f"SendMessage: {exc}")
        return Put(id=sent.get("MessageId"))

    def send_batch_to_queue(self, bodies: Sequence[tuple[str, str]]) -> dict[str, Any]:
        """SendMessageBatch of (entry id, body) pairs: SQS's answer as is (``Successful``, ``Failed``); a call
        that fails raises. The caller retries the entries it wants retried."""
        response: dict[str, Any] = self.sqs.send_message_batch(
            QueueUrl=self.queue_url, Entries=[{"Id": entry_id, "MessageBody": body} for entry_id, body in bodies]
        )
        return response


__all__ = ["EventSender", "PUT_PARTNER_EVENTS_MAX_ENTRIES", "Put"]
