"""Sends a run's tracked events, each by its route, and notes what the pipeline should make of it: its
EventBridge id, its dedup key (the dispatcher's own parser), and whether the deployed rule lets it through."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ... import traffic
from ...envelopes import Envelope, delivered
from ...sending import EventSender
from ..ledger import Ledger, TrackedEvent

if TYPE_CHECKING:
    from ..pipeline import LocalPipeline


class RunSender:
    """The bus route for the bus's own source; the queue route for the rest (a partner bus refuses
    another source's events), evaluating the rule as EventBridge does."""

    def __init__(self, pipeline: LocalPipeline, ledger: Ledger):
        from gcpipe.ops.rule import RuleMatcher
        from gcpipe.ops.validation import load_parser

        self.ledger = ledger
        self.account, self.region = pipeline.account_id, pipeline.region
        outputs = pipeline.outputs
        self.bus = outputs["EventBusName"]
        self.rule_name = outputs["EventRuleName"]
        rule = pipeline.client("events").describe_rule(Name=self.rule_name, EventBusName=self.bus)
        self.matcher = RuleMatcher.local(json.loads(rule.get("EventPattern") or "{}"))
        self.parse, _ = load_parser()
        self.routes = EventSender(
            events=pipeline.client("events"), sqs=pipeline.client("sqs"), queue_url=outputs["MainQueueUrl"]
        )

    def dedup_key(self, envelope: Envelope) -> tuple[str | None, str | None]:
        """(the dispatcher's dedup key, None) of a valid event; (None, why not) of an invalid one."""
        from genesys_pipeline.errors import InvalidEvent

        try:
            return self.parse(envelope).dedup_key, None
        except InvalidEvent as exc:
            return None, getattr(exc, "reason", None) or str(exc)
        except Exception as exc:  # noqa: BLE001 - a parser bug must not stop the run; the pipeline decides
            return None, f"{type(exc).__name__}: {exc}"

    def send(self, events: list[TrackedEvent]) -> None:
        for e in events:
            if e.route == "bus" and e.envelope.get("source") != self.bus:
                e.route = "queue"  # a partner bus only takes its own source's events
        bus_events = [e for e in events if e.route == "bus"]
        for e, put in zip(bus_events, self.routes.put_on_bus([e.envelope for e in bus_events]), strict=True):
            self.ledger.add(e)
            if put.id is None:
                e.send_error = put.error
                continue
            e.event_id = put.id
            self._track(e, delivered(e.envelope, put.id, self.account, self.region))
        for e in events:
            if e.route != "queue":
                continue
            self.ledger.add(e)
            envelope = delivered(
                e.envelope,
                e.envelope.get("id") or traffic.new_id(),
                e.envelope.get("account") or self.account,
                e.envelope.get("region") or self.region,
            )
            e.event_id = envelope["id"]
            put = self.routes.send_to_queue(envelope)
            if put.error:
                e.send_error = put.error
                continue
            self._track(e, envelope)

    def _track(self, e: TrackedEvent, delivered_envelope: dict[str, Any]) -> None:
        e.dedup_key, e.invalid_reason = self.dedup_key(delivered_envelope)
        e.sent = True
        # The queue route bypasses the rule (a message the rule did not deliver: the dispatcher's own
        # checks are the defense in depth); on the bus, EventBridge applies the rule's pattern.
        if e.route == "bus" and not self.matcher.matches(delivered_envelope):
            e.rule_filtered = f"not matched by rule {self.rule_name}"


__all__ = ["RunSender"]
