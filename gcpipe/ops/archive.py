"""``gcpipe archive replay``: EventBridge's native replay from the partner bus's archive.

The replay re-delivers archived events to the bus, limited to the pipeline rule
(``Destination.FilterArns``), so other rules on the bus do not see them twice.
Replayed events carry a ``replay-name`` field; the dispatcher's dedup key ignores
the envelope, so events that were already processed come back as duplicates.

AWS only: the local stack has no archive replay worth the name (moto's does not
go through the local runner's SQS poller), so locally the command is a usage
error (exit 2) pointing at ``gcpipe send``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from .errors import NotSupportedOnTarget, OperatorError
from .rule import load_rule
from .target import Target

# EventBridge: a replay name is 1-64 chars of [.\-_A-Za-z0-9] (StartReplay API reference).
_REPLAY_NAME_MAX = 64


@dataclass
class ReplayStarted:
    replay_name: str
    replay_arn: str
    state: str
    archive_arn: str
    destination: str
    rule_arn: str
    start: str
    end: str

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def replay_name(env: str, now: datetime) -> str:
    name = f"gcpipe-{env}-{now.strftime('%Y%m%dT%H%M%S')}"
    return re.sub(r"[^.\-_A-Za-z0-9]", "-", name)[:_REPLAY_NAME_MAX]


def start_replay(target: Target, start: datetime, end: datetime, *, name: str | None = None) -> ReplayStarted:
    if target.is_local:
        raise NotSupportedOnTarget(
            "archive replay is AWS-only (EventBridge archives are not replayed through the local stack); "
            "locally, re-send the events with `gcpipe --local send FILE.jsonl`"
        )
    if end <= start:
        raise OperatorError(f"--to ({end.isoformat()}) must be after --from ({start.isoformat()})")
    events = target.client("events")
    archive = events.describe_archive(ArchiveName=target.output("ArchiveName"))
    rule = load_rule(target)
    bus_arn = events.describe_event_bus(Name=rule.bus_name)["Arn"]
    name = name or replay_name(target.env, datetime.now(timezone.utc))
    response = events.start_replay(
        ReplayName=name,
        Description=f"gcpipe archive replay to {rule.name}",
        EventSourceArn=archive["ArchiveArn"],
        EventStartTime=start,
        EventEndTime=end,
        Destination={"Arn": bus_arn, "FilterArns": [rule.arn]},
    )
    return ReplayStarted(
        replay_name=name,
        replay_arn=response.get("ReplayArn", ""),
        state=response.get("State", "STARTING"),
        archive_arn=archive["ArchiveArn"],
        destination=bus_arn,
        rule_arn=rule.arn,
        start=start.isoformat(),
        end=end.isoformat(),
    )
