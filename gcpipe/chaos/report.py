"""The figures of a chaos run, and how they are shown (rich) and written (JSON, stable key names)."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from gcpipe.local.ledger import OUTCOMES, Accounting
from gcpipe.local.stepfunctions import REPLAY_MARK
from gcpipe.local.write_kinds import WRITE_BACK, kind_of

INVARIANT_OUTCOMES = ("applied", "duplicate", "filtered", "stale", "dead_lettered", "failed", "skipped")


@dataclass(frozen=True)
class WriteFigures:
    write_backs: int
    targets: int  # conversations/participants written
    duplicate_writes: int  # write-backs of one target whose values differ from its first write
    repeated_identical_writes: int  # write-backs of one target with the same values as its first
    differing_attributes: tuple[str, ...] = ()  # the attribute names whose values differed (never the values)
    local_replay_rewrites: int = 0  # a local replay's write: only the execution's own attributes differ


EXECUTION_PLACEHOLDERS = ("{processedAt}", "{executionName}")  # the execution's own: a new execution's differ


def analyse_writes(writes: Iterable[Mapping[str, Any]], attribute_map: Mapping[str, str]) -> WriteFigures:
    """The simulator's recorded writes: the write-backs per target (method and path: one conversation's
    participant; every generated event has its own), each compared with the target's first write.

    A write by a local replay (its execution attribute names a ``-replay-`` execution) that differs from the
    first only in the attributes templated from the execution (``{processedAt}``, ``{executionName}``) is a
    ``local_replay_rewrite``, not a duplicate: moto has no RedriveExecution, so a local redrive is a new
    execution with its own start time, where AWS's redrive keeps the execution and writes the same values."""
    keys = list(attribute_map)
    execution_keys = {
        k for k, template in attribute_map.items() if any(p in str(template) for p in EXECUTION_PLACEHOLDERS)
    }
    per_target: dict[tuple[str, str], list[str]] = defaultdict(list)
    total = 0
    for w in writes:
        if kind_of(w, keys) != WRITE_BACK:
            continue
        total += 1
        per_target[(str(w.get("method")), str(w.get("path")))].append(json.dumps(w.get("body"), sort_keys=True))
    divergent = identical = replay = 0
    differing: set[str] = set()
    for bodies in per_target.values():
        first = bodies[0]
        for body in bodies[1:]:
            if body == first:
                identical += 1
                continue
            a, b = (json.loads(x).get("attributes") or {} for x in (first, body))
            changed = {k for k in set(a) | set(b) if a.get(k) != b.get(k)}
            by_replay = any(REPLAY_MARK in str(b.get(k, "")) for k in execution_keys)
            if by_replay and changed <= execution_keys:
                replay += 1
            else:
                divergent += 1
                differing |= changed
    return WriteFigures(total, len(per_target), divergent, identical, tuple(sorted(differing)), replay)


@dataclass
class ChaosReport:
    events: int
    seed: int
    accounting: Accounting
    failed_before_redrive: int
    failed_executions_redriven: int
    writes: WriteFigures
    faults: dict[str, int]
    wall_seconds: float
    quiet: bool  # False: stopped waiting (no new outcome for the quiet timeout)
    fast_forwarded: int = 0
    sends_failed: int = 0
    failures_before_redrive: dict[str, int] = field(default_factory=dict)  # failed executions per error name
    failures_after_redrive: dict[str, int] = field(default_factory=dict)

    @property
    def lost(self) -> int:
        return len(self.accounting.unaccounted)

    @property
    def failed_after_redrive(self) -> int:
        return self.accounting.counts["failed"]

    @property
    def invariant_holds(self) -> bool:
        return self.accounting.holds

    @property
    def ok(self) -> bool:
        return (
            self.invariant_holds
            and self.lost == 0
            and self.writes.duplicate_writes == 0
            and self.failed_after_redrive == 0
        )

    def as_json(self) -> dict[str, Any]:
        acc = self.accounting
        return {
            "ok": self.ok,
            "events": self.events,
            "seed": self.seed,
            "sent": acc.sent,
            "outcomes": {o: acc.counts[o] for o in OUTCOMES},
            "invariant": {
                "holds": self.invariant_holds,
                "equation": f"sent {acc.sent} = "
                + " + ".join(f"{o} {acc.counts[o]}" for o in INVARIANT_OUTCOMES)
                + f" (= {acc.total})",
                "more_than_one_outcome": list(acc.over_accounted),
            },
            "lost": self.lost,
            "lost_events": [e.event_id or f"#{e.index}" for e in acc.unaccounted],
            "duplicate_writes": self.writes.duplicate_writes,
            "repeated_identical_writes": self.writes.repeated_identical_writes,
            "write_backs": self.writes.write_backs,
            "duplicate_write_attributes": list(self.writes.differing_attributes),
            "local_replay_rewrites": self.writes.local_replay_rewrites,
            "failed_before_redrive": self.failed_before_redrive,
            "failed_executions_redriven": self.failed_executions_redriven,
            "failed_after_redrive": self.failed_after_redrive,
            "failure_errors_before_redrive": dict(self.failures_before_redrive),
            "failure_errors_after_redrive": dict(self.failures_after_redrive),
            "faults_injected": dict(self.faults),
            "faults_injected_total": sum(self.faults.values()),
            "wall_seconds": round(self.wall_seconds, 1),
            "quiet": self.quiet,
            "in_flight_fast_forwarded": self.fast_forwarded,
            "sends_failed": self.sends_failed,
        }


def render(report: ChaosReport, console: Any) -> None:
    from rich.table import Table

    data = report.as_json()
    verdict = "[bold green]OK[/]" if report.ok else "[bold red]NOT OK[/]"
    console.print(f"chaos run, seed {report.seed}, {report.events} events: {verdict} in {data['wall_seconds']} s")
    console.print(
        ("[green]holds[/]: " if report.invariant_holds else "[red]does not hold[/]: ") + data["invariant"]["equation"],
        highlight=False,
    )
    for problem in data["invariant"]["more_than_one_outcome"][:10]:
        console.print(f"  [red]{problem}[/]", highlight=False)
    figures = Table(show_header=False, box=None)
    for key in (
        "lost",
        "duplicate_writes",
        "repeated_identical_writes",
        "local_replay_rewrites",
        "write_backs",
        "failed_before_redrive",
        "failed_executions_redriven",
        "failed_after_redrive",
        "in_flight_fast_forwarded",
    ):
        figures.add_row(key, str(data[key]))
    console.print(figures)
    faults = Table("fault", "injected", box=None)
    for kind, n in data["faults_injected"].items():
        faults.add_row(kind, str(n))
    console.print(faults)
    if not report.quiet:
        console.print("[yellow]stopped waiting: no new outcome for the quiet timeout[/]")


__all__ = ["ChaosReport", "WriteFigures", "analyse_writes", "render"]
