"""EventBridge gaps of moto 5.2.5 that the pipeline runs into, each closed by one small patch.

1. Partner bus names contain ``/`` (``aws.partner/genesys.com/cloud/<org>/<name>``).
   ``EventsBackend._normalize_event_bus_arn`` keeps only what follows the last
   ``/``, so put_rule/put_targets/put_events on a partner bus fail with "Event
   bus <name> does not exist". Patched to strip only an ARN's
   ``...:event-bus/`` prefix.
2. The envelope delivered to a target lacks ``account`` (moto builds it from a
   default input template that omits it) and key order differs from AWS.
   Patched: with no InputTransformer the target receives the whole envelope
   (version, id, detail-type, source, account, time, region, resources, detail).
3. ``put_partner_events`` delivers to the *default* bus of the subscribed
   account and returns no entries. On AWS a partner event goes to the bus
   created from the event source. Patched to do that and return EventIds.
4. A rule with a Lambda target raises ``NotImplementedError`` in put_events.
   Patched: Lambda targets get an asynchronous (Event) invocation, as
   EventBridge does; the local runtime runs the real handler in its worker process.
5. ``TestEventPattern`` answers nothing. ``event_pattern_matches`` exposes
   moto's own matcher (``moto.events.models.EventPattern``), and the API call is
   patched to answer ``{"Result": ...}`` with it.

Create a partner bus as AWS does: ``create_partner_bus`` calls
``create_partner_event_source`` (what the partner does) and then
``create_event_bus(Name=..., EventSourceName=...)`` (what the customer does).
"""

from __future__ import annotations

import copy
import json
from typing import TYPE_CHECKING, Any, cast


if TYPE_CHECKING:
    from moto.events.utils import EventMessageType

# The keys of an event as EventBridge delivers it to a target, in its order.
ENVELOPE_KEYS = (
    "version",
    "id",
    "detail-type",
    "source",
    "account",
    "time",
    "region",
    "resources",
    "detail",
    "replay-name",
)


def event_pattern_matches(pattern: str | dict, event: str | dict) -> bool:
    """TestEventPattern, locally: does ``event`` (a full envelope) match ``pattern``? Uses moto's matcher."""
    from moto.events.models import EventPattern

    raw = pattern if isinstance(pattern, str) else json.dumps(pattern)
    evt = json.loads(event) if isinstance(event, str) else event
    return EventPattern.load(raw).matches_event(cast("EventMessageType", evt))  # the envelope moto's type describes


def create_partner_bus(events_client: Any, name: str, account_id: str) -> str:
    """Create the partner event source and the bus associated with it. Returns the bus ARN."""
    events_client.create_partner_event_source(Name=name, Account=account_id)
    return events_client.create_event_bus(Name=name, EventSourceName=name)["EventBusArn"]


def normalize_event_bus_arn(self: Any, event_bus_arn: str | None) -> str:
    if event_bus_arn is None:
        return "default"
    if event_bus_arn.startswith("arn:") and ":event-bus/" in event_bus_arn:
        return event_bus_arn.split(":event-bus/", 1)[1]
    return event_bus_arn


def template_parse(original: Any) -> Any:
    def parse(input_template: str | None, input_paths_map: dict[str, Any] | None, event: Any) -> dict[str, Any]:
        if not input_template and not input_paths_map:
            return {k: copy.deepcopy(event[k]) for k in ENVELOPE_KEYS if k in event}
        return original(input_template, input_paths_map, event)

    return staticmethod(parse)


def send_to_targets(original: Any) -> Any:
    def send_to_targets(self: Any, original_event: Any, transform_input: bool = True) -> None:
        lambda_targets = [t for t in self.targets if t.get("Arn", "").split(":")[2:3] == ["lambda"]]
        if not lambda_targets:
            return original(self, original_event, transform_input)
        if self.event_pattern.matches_event(original_event):
            _deliver_to_lambdas(self, lambda_targets, original_event, transform_input)
        others = [t for t in self.targets if t not in lambda_targets]
        if others:
            clone = copy.copy(self)
            clone.targets = others
            original(clone, original_event, transform_input)

    return send_to_targets


def _deliver_to_lambdas(rule: Any, targets: list[dict[str, Any]], original_event: Any, transform_input: bool) -> None:
    from moto.awslambda.utils import get_backend
    from moto.events.models import EventTemplateParser
    from moto.core.utils import iso_8601_datetime_without_milliseconds, utcfromtimestamp

    for target in targets:
        event: dict[str, Any]
        if target.get("Input"):
            event = json.loads(target["Input"])
        elif transform_input:
            transformer = target.get("InputTransformer", {})
            event = EventTemplateParser.parse(
                input_template=transformer.get("InputTemplate"),
                input_paths_map=transformer.get("InputPathsMap", {}),
                event=original_event,
            )
        else:
            event = {k: copy.deepcopy(original_event[k]) for k in ENVELOPE_KEYS if k in original_event}
        if isinstance(event, dict) and isinstance(event.get("time"), (int, float)):
            event["time"] = iso_8601_datetime_without_milliseconds(utcfromtimestamp(int(event["time"])))
        arn = target["Arn"]
        region, account = arn.split(":")[3], arn.split(":")[4]
        get_backend(account, region).invoke(
            function_name=arn,
            qualifier=None,
            body=json.dumps(event),
            headers={"X-Amz-Invocation-Type": "Event"},
            response_headers={},
        )


def put_partner_events(self: Any, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from moto.events.models import events_backends

    results: list[dict[str, Any]] = []
    for entry in entries:
        source = entry["Source"]
        result: dict[str, Any] = {"ErrorCode": "InvalidArgument", "ErrorMessage": f"unknown event source {source}"}
        for account_id in self.partner_event_sources[source].accounts:
            backend = events_backends[account_id][self.region_name]
            routed = dict(entry)
            if source in backend.event_buses:
                routed["EventBusName"] = source
            result = backend.put_events([routed])[0]
        results.append(result)
    return results


def put_partner_events_response(self: Any) -> str:
    entries = self._get_param("Entries")
    results = self.events_backend.put_partner_events(entries)
    failed = sum(1 for r in results if "ErrorCode" in r)
    return json.dumps({"Entries": results, "FailedEntryCount": failed})


def test_event_pattern_response(self: Any) -> str:
    return json.dumps({"Result": event_pattern_matches(self._get_param("EventPattern"), self._get_param("Event"))})
