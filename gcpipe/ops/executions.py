"""``gcpipe failures`` and ``gcpipe redrive``: failed Step Functions executions.

The state machine fails at its Process state on purpose (no Catch), so that the
console's Redrive button (the ``RedriveExecution`` API) resumes exactly there,
with the same execution and input. Redrive works on FAILED, TIMED_OUT and
ABORTED Standard executions for 14 days after they stopped (Step Functions
Developer Guide, "Redriving executions"); ``describe_execution`` says whether
an execution can be redriven (``redriveStatus``/``redriveStatusReason``).

moto has no RedriveExecution. Locally (and on AWS with ``--new-execution``,
for executions past the redrive window) a failure is replayed by starting a
*new* execution with the same input, named ``<original name>-replay-<N>``
(truncated to the 80-char limit). Tradeoff: the execution name is the
dispatcher's first dedup layer (StartExecution is idempotent by name), so a
new name bypasses it on purpose; that is safe because the processor's
idempotency (layer 2) keys on the ``dedupKey`` field of the execution INPUT,
not on the execution name: if the failed run had in fact written to Genesys,
the replay does not write twice. What a replay loses, compared with a
redrive: the history stays split over two executions, and the original stays
FAILED in the console (so ``gcpipe failures`` still lists it, marked replayed).
So a replay is not started again for an execution whose replay already
succeeded (the event is applied) or is still running, unless ``force``: each
new replay would cost a full execution for nothing.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from botocore.exceptions import ClientError

from genesys_pipeline.redaction import redact

from .target import Target

FAILED_STATUSES = ("FAILED", "TIMED_OUT", "ABORTED")
EXECUTION_NAME_MAX = 80  # Step Functions: execution names are 1-80 characters
REPLAY_MARK = "-replay-"
MAX_CAUSE_CHARS = 500


@dataclass
class FailedExecution:
    execution_arn: str
    name: str
    status: str
    start_date: str | None
    stop_date: str | None
    conversation_id: str | None
    dedup_key: str | None
    topic: str | None
    error: str | None
    cause: str | None
    redrivable: bool
    redrive_note: str
    console_url: str | None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RedriveResult:
    execution_arn: str
    action: str  # "redriven", "replayed", "would redrive", "would replay", "skipped", "would skip", "failed"
    ok: bool
    detail: str
    new_execution_arn: str | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    return str(value)


def _as_utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def list_failed_arns(target: Target, since: datetime) -> list[dict[str, Any]]:
    """Summaries of FAILED/TIMED_OUT/ABORTED executions started at or after ``since``, newest first."""
    sfn = target.client("stepfunctions")
    state_machine = target.output("StateMachineArn")
    found: list[dict[str, Any]] = []
    for status in FAILED_STATUSES:
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=state_machine, statusFilter=status):
            stop = False
            for item in page["executions"]:
                if _as_utc(item["startDate"]) < since:
                    stop = True  # ListExecutions returns newest first
                    break
                found.append(item)
            if stop:
                break
    found.sort(key=lambda e: _as_utc(e["startDate"]), reverse=True)
    return found


def _error_and_cause(sfn: Any, described: dict[str, Any]) -> tuple[str | None, str | None]:
    if described.get("error") or described.get("cause"):
        return described.get("error"), described.get("cause")
    history = sfn.get_execution_history(executionArn=described["executionArn"], reverseOrder=True, maxResults=10)
    for event in history.get("events", []):
        for key in ("executionFailedEventDetails", "executionTimedOutEventDetails", "executionAbortedEventDetails"):
            if key in event:
                return event[key].get("error"), event[key].get("cause")
    return None, None


def describe_failure(
    target: Target, summary: dict[str, Any], replayed_names: set[str] | None = None
) -> FailedExecution:
    sfn = target.client("stepfunctions")
    described = sfn.describe_execution(executionArn=summary["executionArn"])
    try:
        payload = json.loads(described.get("input") or "{}")
    except json.JSONDecodeError:
        payload = {}
    payload = payload if isinstance(payload, dict) else {}
    error, cause = _error_and_cause(sfn, described)
    if cause:
        cause = str(redact(cause))
        cause = cause if len(cause) <= MAX_CAUSE_CHARS else cause[: MAX_CAUSE_CHARS - 1] + "…"
    name = described["name"]
    if target.is_local:
        redrivable, note = True, "yes (local: new execution with the same input)"
    else:
        status = described.get("redriveStatus")
        redrivable = status == "REDRIVABLE"
        note = "yes" if redrivable else f"no: {described.get('redriveStatusReason') or status or 'unknown'}"
    if replayed_names is not None and name in replayed_names:
        note += "; already replayed"
    return FailedExecution(
        execution_arn=described["executionArn"],
        name=name,
        status=described["status"],
        start_date=_iso(described.get("startDate")),
        stop_date=_iso(described.get("stopDate")),
        conversation_id=payload.get("conversationId"),
        dedup_key=payload.get("dedupKey"),
        topic=payload.get("topic"),
        error=error,
        cause=cause,
        redrivable=redrivable,
        redrive_note=note,
        console_url=target.execution_console_url(described["executionArn"]),
    )


def _replayed_originals(target: Target) -> set[str]:
    """Names of executions that have a ``-replay-N`` execution (local bookkeeping)."""
    sfn = target.client("stepfunctions")
    names: set[str] = set()
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=target.output("StateMachineArn")):
        for item in page["executions"]:
            if REPLAY_MARK in item["name"]:
                names.add(item["name"].rsplit(REPLAY_MARK, 1)[0])
    return names


def list_failures(target: Target, since: datetime, concurrency: int = 8) -> list[FailedExecution]:
    summaries = list_failed_arns(target, since)
    replayed = _replayed_originals(target) if target.is_local and summaries else None
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(lambda s: describe_failure(target, s, replayed), summaries))


def replay_name(original: str, n: int) -> str:
    suffix = f"{REPLAY_MARK}{n}"
    return original[: EXECUTION_NAME_MAX - len(suffix)] + suffix


def replay_base(name: str) -> str:
    """The original execution's name, for an execution or any of its replays."""
    return name.rsplit(REPLAY_MARK, 1)[0] if REPLAY_MARK in name else name


def _existing_replays(sfn: Any, state_machine_arn: str, base: str) -> list[dict[str, Any]]:
    """``<base>-replay-1``, ``-2``, ... as far as they exist (names are deterministic: no listing of every execution)."""
    prefix = state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":"
    found = []
    for n in range(1, 1000):
        try:
            found.append(sfn.describe_execution(executionArn=prefix + replay_name(base, n)))
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("ExecutionDoesNotExist", "ResourceNotFound"):
                break
            raise
    return found


def _replay(target: Target, execution_arn: str, dry_run: bool, force: bool = False) -> RedriveResult:
    sfn = target.client("stepfunctions")
    described = sfn.describe_execution(executionArn=execution_arn)
    if described["status"] not in FAILED_STATUSES:
        return RedriveResult(execution_arn, "failed", False, f"execution is {described['status']}, not failed")
    base = replay_base(described["name"])
    existing = _existing_replays(sfn, described["stateMachineArn"], base)
    settled = next((e for e in existing if e["status"] == "SUCCEEDED"), None) or next(
        (e for e in existing if e["status"] == "RUNNING"), None
    )
    if settled is not None and not force:
        state = "succeeded (the event is applied)" if settled["status"] == "SUCCEEDED" else "is still running"
        return RedriveResult(
            execution_arn,
            "would skip" if dry_run else "skipped",
            True,
            f"already replayed: {settled['name']} {state}; --force replays it again",
            new_execution_arn=settled["executionArn"],
        )
    first = len(existing) + 1
    if dry_run:
        return RedriveResult(
            execution_arn, "would replay", True, f"would start {replay_name(base, first)} with the same input"
        )
    for n in range(first, first + 1000):
        name = replay_name(base, n)
        try:
            started = sfn.start_execution(
                stateMachineArn=described["stateMachineArn"], name=name, input=described.get("input") or "{}"
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ExecutionAlreadyExists":
                continue
            raise
        return RedriveResult(
            execution_arn,
            "replayed",
            True,
            f"started new execution {name} with the same input (RedriveExecution is not available "
            f"{'locally' if target.is_local else 'for this execution'})",
            new_execution_arn=started["executionArn"],
        )
    return RedriveResult(execution_arn, "failed", False, "too many replays of this execution")


def redrive(
    target: Target, execution_arn: str, *, dry_run: bool = False, new_execution: bool = False, force: bool = False
) -> RedriveResult:
    if target.is_local or new_execution:
        return _replay(target, execution_arn, dry_run, force)
    sfn = target.client("stepfunctions")
    described = sfn.describe_execution(executionArn=execution_arn)
    if described.get("redriveStatus") != "REDRIVABLE":
        reason = described.get("redriveStatusReason") or described.get("redriveStatus") or described["status"]
        return RedriveResult(
            execution_arn, "failed", False, f"not redrivable: {reason} (past 14 days? try --new-execution)"
        )
    if dry_run:
        return RedriveResult(execution_arn, "would redrive", True, "redrivable; would resume at the failed state")
    try:
        response = sfn.redrive_execution(executionArn=execution_arn)
    except ClientError as exc:
        return RedriveResult(
            execution_arn,
            "failed",
            False,
            f"{exc.response['Error']['Code']}: {exc.response['Error'].get('Message', '')}",
        )
    return RedriveResult(execution_arn, "redriven", True, f"redriven at {_iso(response.get('redriveDate'))}")


def redrive_many(
    target: Target, arns: list[str], *, dry_run: bool = False, new_execution: bool = False, force: bool = False
) -> list[RedriveResult]:
    results = []
    replaying = target.is_local or new_execution
    first_of: dict[str, str] = {}  # replay base -> the first ARN of that event in this call
    for arn in arns:
        base = replay_base(arn.rsplit(":", 1)[-1])
        if replaying and base in first_of:
            # An original and its failed replay are the same event: one replay for both.
            results.append(
                RedriveResult(
                    arn,
                    "would skip" if dry_run else "skipped",
                    True,
                    f"same event as {first_of[base].rsplit(':', 1)[-1]} (replayed once)",
                )
            )
            continue
        first_of[base] = arn
        try:
            results.append(redrive(target, arn, dry_run=dry_run, new_execution=new_execution, force=force))
        except ClientError as exc:
            err = exc.response.get("Error", {})
            results.append(RedriveResult(arn, "failed", False, f"{err.get('Code')}: {err.get('Message', '')}"))
    return results
