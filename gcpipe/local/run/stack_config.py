"""What the deployed stack says about itself, read from the emulator (never restated here): the bus,
the dispatcher's filters, the max age, the retry budget of the state machine, the attributes written."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    from ..pipeline import LocalPipeline

PARTNER_BUS_PREFIX = "aws.partner/genesys.com/cloud/"


@dataclass(frozen=True)
class StackConfig:
    bus_name: str
    org_id: str | None
    topics: tuple[str, ...]  # allowed topic templates
    queue_ids: tuple[str, ...]
    max_age_seconds: int
    unavailable_attempts: int  # how many processor attempts the ASL makes on GenesysUnavailable
    in_progress_wait_seconds: float  # the ASL's total wait on IdempotencyAlreadyInProgressError (unscaled)
    attribute_map: dict[str, str]


def read_stack_config(pipeline: LocalPipeline) -> StackConfig:
    from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

    from genesys_pipeline.settings import DEFAULT_ATTRIBUTE_MAP, DEFAULT_MAX_EVENT_AGE_SECONDS

    functions = pipeline.functions
    dispatcher = functions["DispatcherFunctionName"]["Environment"]["Variables"]
    processor = functions["ProcessorFunctionName"]["Environment"]["Variables"]
    bus = pipeline.outputs["EventBusName"]
    org = dispatcher.get("GENESYS_ORG_ID") or None
    if org is None and bus.startswith(PARTNER_BUS_PREFIX):
        org = bus.split("/")[3]
    definition = json.loads(
        pipeline.client("stepfunctions").describe_state_machine(stateMachineArn=pipeline.outputs["StateMachineArn"])[
            "definition"
        ]
    )
    return StackConfig(
        bus_name=bus,
        org_id=org,
        topics=tuple(t for t in dispatcher.get("ALLOWED_TOPICS", "").split(",") if t),
        queue_ids=tuple(q for q in dispatcher.get("ALLOWED_QUEUE_IDS", "").split(",") if q),
        max_age_seconds=int(dispatcher.get("MAX_EVENT_AGE_SECONDS") or DEFAULT_MAX_EVENT_AGE_SECONDS),
        unavailable_attempts=retry_attempts(definition, "GenesysUnavailable"),
        in_progress_wait_seconds=retry_wait_seconds(definition, IdempotencyAlreadyInProgressError.__name__),
        attribute_map=json.loads(processor["ATTRIBUTE_MAP"])
        if processor.get("ATTRIBUTE_MAP")
        else dict(DEFAULT_ATTRIBUTE_MAP),
    )


def retry_attempts(definition: dict[str, Any], error: str) -> int:
    """Attempts a Task state makes on ``error``: 1 + MaxAttempts of the first retrier that names it (or States.ALL)."""
    return max((1 + int(r.get("MaxAttempts", 3)) for r in _retriers_of(definition, error)), default=1)


def retry_wait_seconds(definition: dict[str, Any], error: str) -> float:
    """The longest total wait of the first retrier that names ``error`` (its delays without jitter), over the
    Task states; 0 when none retries it."""
    return max((_total_wait(r) for r in _retriers_of(definition, error)), default=0.0)


def _total_wait(retrier: dict[str, Any]) -> float:
    interval = float(retrier.get("IntervalSeconds", 1))
    rate = float(retrier.get("BackoffRate", 2.0))
    cap = float(retrier.get("MaxDelaySeconds", float("inf")))
    return sum(min(cap, interval * rate**k) for k in range(int(retrier.get("MaxAttempts", 3))))


def _retriers_of(definition: dict[str, Any], error: str) -> Iterator[dict[str, Any]]:
    """Per Task state, the first retrier that names ``error`` (or States.ALL): the one Step Functions applies."""
    for state in _states(definition):
        if state.get("Type") != "Task":
            continue
        for retrier in state.get("Retry", []):
            names = retrier.get("ErrorEquals", [])
            if error in names or "States.ALL" in names:
                yield retrier
                break


def _states(definition: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for state in (definition.get("States") or {}).values():
        yield state
        for branch in state.get("Branches", []):
            yield from _states(branch)
        if isinstance(state.get("Iterator"), dict):
            yield from _states(state["Iterator"])
        if isinstance(state.get("ItemProcessor"), dict):
            yield from _states(state["ItemProcessor"])


__all__ = ["StackConfig", "read_stack_config", "retry_attempts", "retry_wait_seconds"]
