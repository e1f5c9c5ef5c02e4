"""What a run found: the accounting, Genesys's side (writes, token fetches, 429s and 5xx), the failed
executions and how to replay them, the IAM decisions, the notes. ``RunSummary.as_json`` is ``--json``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from ..ledger import Accounting, CapturedOutcome, TrackedEvent
from .events_file import InputProblem

if TYPE_CHECKING:
    from gcpipe.simulator import GenesysSimulator

    from ..pipeline import LocalPipeline

REPLAY_HINT = (
    "local: gcpipe --local redrive {arn} (a new execution with the same input; moto has no "
    "RedriveExecution). On AWS: the console's Redrive button, or gcpipe --env ENV redrive {arn}"
)


@dataclass
class FailedExecution:
    arn: str
    name: str
    error: str | None
    cause: str | None
    failed_state: str | None
    replay: str

    def as_json(self) -> dict[str, Any]:
        return {
            "execution_arn": self.arn,
            "name": self.name,
            "error": self.error,
            "cause": self.cause,
            "failed_state": self.failed_state,
            "replay": self.replay,
        }


@dataclass
class RunSummary:
    env: str
    mode: str
    events: list[TrackedEvent]
    accounting: Accounting
    input_problems: list[InputProblem]
    writes: list[Mapping[str, Any]]
    token_fetches: int
    genesys_requests: dict[str, int]
    failed_executions: list[FailedExecution]
    phases: list[dict[str, Any]]
    wall_seconds: float
    log_file: Path
    notes: list[str] = field(default_factory=list)
    timed_out: bool = False
    attribute_keys: tuple[str, ...] = ()  # what the processor writes (its ATTRIBUTE_MAP): tells write-backs apart
    iam: dict[str, Any] = field(default_factory=dict)  # {"denied": [...], "unused": [...]}: lambda_runtime's IAM check

    @property
    def ok(self) -> bool:
        return self.accounting.holds and not self.input_problems and not self.send_errors and not self.timed_out

    @property
    def send_errors(self) -> list[TrackedEvent]:
        return [e for e in self.events if e.send_error]

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "env": self.env,
            "mode": self.mode,
            "invariant": self.accounting.as_json(),
            "events": [e.as_json() for e in self.events],
            "input_errors": [{"line": p.line, "error": p.message} for p in self.input_problems],
            "genesys": {
                "writes": self.writes,
                "write_count": len(self.writes),
                "token_fetches": self.token_fetches,
                "requests": self.genesys_requests,
            },
            "failed_executions": [f.as_json() for f in self.failed_executions],
            "phases": self.phases,
            "wall_seconds": round(self.wall_seconds, 2),
            "lambda_log": str(self.log_file),
            "iam": self.iam,
            "notes": self.notes,
        }


@dataclass
class RunRecord:
    """What the run loop kept while it ran, for the summary."""

    env: str
    mode: str
    events: list[TrackedEvent]
    accounting: Accounting
    outcomes: list[CapturedOutcome]
    input_problems: list[InputProblem]
    phases: list[dict[str, Any]]
    wall_seconds: float
    log_file: Path
    notes: list[str]
    timed_out: bool
    attribute_keys: tuple[str, ...]


def summarize(run: RunRecord, sim: GenesysSimulator, pipeline: LocalPipeline) -> RunSummary:
    writes: list[Mapping[str, Any]] = [
        {
            "method": w.method,
            "path": w.path,
            "conversation_id": w.conversation_id,
            "participant_id": w.participant_id,
            "body": w.body,
        }
        for w in sim.writes
    ]
    requests = {
        "total": sim.request_count(),
        "api": sim.request_count("/api/"),
        "rate_limited_429": sim.request_count("/api/", status=429),
        "unavailable_5xx": sum(sim.request_count("/api/", status=s) for s in (500, 502, 503, 504)),
    }
    failed: list[FailedExecution] = []
    for ex in pipeline.executions("FAILED") + pipeline.executions("TIMED_OUT") + pipeline.executions("ABORTED"):
        record = next(
            (
                ln.record
                for ln in run.outcomes
                if ln.outcome == "failed" and ln.record.execution_arn == ex["executionArn"]
            ),
            None,
        )
        failed.append(
            FailedExecution(
                arn=ex["executionArn"],
                name=ex["name"],
                error=ex.get("error"),
                cause=(record.cause if record else None) or _short_cause(ex.get("cause")),
                failed_state=record.failed_state if record else None,
                replay=REPLAY_HINT.format(arn=ex["executionArn"]),
            )
        )
    notes = list(run.notes)
    if run.accounting.foreign:
        notes.append(f"{run.accounting.foreign} outcome line(s) for events this run did not send")
    permissions = pipeline.permissions
    iam = {
        "denied": [{"role": role, "action": d.action, "resource": d.resource} for role, d in permissions.denied],
        "unused": [
            {"role": u.role_name, "action": u.action, "resource": u.resource, "policy": u.source}
            for u in permissions.unused()
        ],
    }
    if iam["denied"]:
        notes.append(f"{len(iam['denied'])} AWS call(s) denied by the functions' IAM policies (see 'iam' / above)")
    return RunSummary(
        run.env,
        run.mode,
        run.events,
        run.accounting,
        run.input_problems,
        writes,
        sim.token_fetches,
        requests,
        failed,
        run.phases,
        run.wall_seconds,
        run.log_file,
        notes,
        run.timed_out,
        run.attribute_keys,
        iam,
    )


def _short_cause(cause: Any) -> str | None:
    if not cause:
        return None
    try:
        parsed = json.loads(cause)
        if isinstance(parsed, dict) and parsed.get("errorMessage"):
            return f"{parsed.get('errorType', 'Error')}: {parsed['errorMessage']}"
    except ValueError:
        pass
    return str(cause)[:300]


__all__ = ["FailedExecution", "RunRecord", "RunSummary", "summarize"]
