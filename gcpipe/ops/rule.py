"""The environment's pipeline rule: its event pattern, evaluated like EventBridge does.

``gcpipe send`` routes events straight to the main queue (a custom PutEvents
may not use an ``aws.`` source, and a partner bus only takes the partner's
events), so it applies the deployed rule's own pattern first: an event the rule
would not deliver is counted as filtered-by-rule and not sent.

On AWS the pattern is evaluated by EventBridge itself (``TestEventPattern``);
moto does not implement that API, so locally moto's own matcher
(``moto.events.models.EventPattern``, the one its buses use) stands in.
Results are cached on the projection of the event onto the paths the pattern
mentions: a 10,000-event backfill costs a handful of TestEventPattern calls.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, cast

from .target import Target

_MISSING = object()
# TestEventPattern requires these envelope fields (EventBridge API reference,
# TestEventPattern "Event"); moto omits `account` from delivered envelopes.
_REQUIRED_ENVELOPE_DEFAULTS = {"account": "000000000000", "resources": [], "region": "us-east-1", "version": "0"}


@dataclass(frozen=True)
class PipelineRule:
    name: str
    bus_name: str
    arn: str
    pattern: dict[str, Any]

    @property
    def topics(self) -> list[str]:
        return topics_from_pattern(self.pattern)


def load_rule(target: Target) -> PipelineRule:
    name = target.output("EventRuleName")
    bus = target.output("EventBusName")
    rule = target.client("events").describe_rule(Name=name, EventBusName=bus)
    pattern = json.loads(rule.get("EventPattern") or "{}")
    return PipelineRule(name=name, bus_name=bus, arn=rule["Arn"], pattern=pattern)


def topics_from_pattern(pattern: dict[str, Any]) -> list[str]:
    """The exact detail-type values the pattern accepts (top level and each ``$or`` branch), in order."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if not isinstance(node, dict):
            return
        for value in node.get("detail-type", []) if isinstance(node.get("detail-type"), list) else []:
            if isinstance(value, str) and value not in found:
                found.append(value)
        for branch in node.get("$or", []) if isinstance(node.get("$or"), list) else []:
            walk(branch)

    walk(pattern)
    return found


def _pattern_paths(pattern: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = []
    for key, value in pattern.items():
        if key == "$or" and isinstance(value, list):
            for branch in value:
                paths.extend(_pattern_paths(branch, prefix))
        elif isinstance(value, dict):
            paths.extend(_pattern_paths(value, prefix + (key,)))
        else:
            paths.append(prefix + (key,))
    return sorted(set(paths))


def _get(event: Any, path: tuple[str, ...]) -> Any:
    node = event
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return _MISSING
        node = node[key]
    return node


class RuleMatcher:
    """``matches(envelope) -> bool`` for one rule, with a projection cache."""

    def __init__(self, pattern: dict[str, Any], evaluate: Callable[[dict[str, Any]], bool]):
        self._paths = _pattern_paths(pattern)
        self._evaluate = evaluate
        self._cache: dict[tuple[str, ...], bool] = {}
        self.evaluations = 0  # how many times the backend was asked (for tests and --verbose)

    @classmethod
    def local(cls, pattern: dict[str, Any]) -> "RuleMatcher":
        """The pattern evaluated by moto's matcher, the one the local buses route with."""
        from moto.events.models import EventPattern  # dev/local dependency only

        # moto types the event as EventMessageType, a TypedDict of the very envelope we pass
        return cls(
            pattern, cast(Callable[[dict[str, Any]], bool], EventPattern.load(json.dumps(pattern)).matches_event)
        )

    @classmethod
    def for_target(cls, target: Target, rule: PipelineRule) -> "RuleMatcher":
        if target.is_local:
            return cls.local(rule.pattern)
        events = target.client("events")
        raw_pattern = json.dumps(rule.pattern)

        def aws_evaluate(envelope: dict[str, Any]) -> bool:
            event = {**_REQUIRED_ENVELOPE_DEFAULTS, **envelope}
            return bool(events.test_event_pattern(EventPattern=raw_pattern, Event=json.dumps(event))["Result"])

        return cls(rule.pattern, aws_evaluate)

    def matches(self, envelope: dict[str, Any]) -> bool:
        key = tuple(
            "<missing>" if (v := _get(envelope, p)) is _MISSING else json.dumps(v, sort_keys=True) for p in self._paths
        )
        if key not in self._cache:
            self.evaluations += 1
            self._cache[key] = self._evaluate(envelope)
        return self._cache[key]
