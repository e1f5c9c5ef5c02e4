"""What a run prints: the progress bar while it follows the events, then the summary tables, the dead
letters, the failed executions with how to replay them, and the IAM decisions (rich, on the terminal)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...names import stack_name
from .. import write_kinds
from ..ledger import OUTCOMES, Accounting
from ..run_files import previous_of
from .summary import RunSummary


def progress_text(acc: Accounting) -> str:
    short = {
        "applied": "applied",
        "duplicate": "dup",
        "filtered": "filtered",
        "stale": "stale",
        "dead_lettered": "DLQ",
        "failed": "failed",
        "skipped": "skipped",
    }
    return "outcomes " + " ".join(f"{short[o]} {acc.counts[o]}" for o in OUTCOMES)


class NoProgress:
    console = None

    def __enter__(self) -> "NoProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def add_task(self, *a: Any, **k: Any) -> int:
        return 0

    def update(self, *a: Any, **k: Any) -> None:
        return None


def progress_bar(console: Any) -> Any:
    if console is None:
        return NoProgress()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def render_permissions(summary: RunSummary, console: Any, *, unused: bool) -> None:
    """The AWS calls IAM denied and, with ``unused``, per role the grants no call used."""
    from rich.table import Table

    denied = summary.iam.get("denied") or []
    if denied:
        t = Table(title="AWS calls denied by IAM (the function role's policy in the template)", title_justify="left")
        for c in ("role", "action", "resource"):
            t.add_column(c, overflow="fold")
        for d in denied:
            t.add_row(d["role"], d["action"], d["resource"])
        console.print(t)
    if unused:
        grants = summary.iam.get("unused") or []
        t = Table(
            title="granted but never used in this run (Lambda's own logs/X-Ray/event source mapping actions aside)",
            title_justify="left",
        )
        for c in ("role", "action", "resource", "policy"):
            t.add_column(c, overflow="fold")
        for g in grants:
            t.add_row(g["role"], g["action"], g["resource"], g["policy"])
        console.print(t if grants else "every permission granted to the functions was used")


def render_summary(summary: RunSummary, console: Any) -> None:
    from rich.table import Table

    from genesys_pipeline.redaction import redact

    acc = summary.accounting
    if acc.holds:
        console.print(f"[bold green]{stack_name(summary.env)}: every event accounted for[/]")
    elif summary.timed_out and not acc.over_accounted:
        console.print(
            f"[bold yellow]{stack_name(summary.env)}: stopped waiting with {len(acc.unaccounted)} event(s) "
            "still in progress (see the note below)[/]"
        )
    else:
        console.print(f"[bold red]{stack_name(summary.env)}: events NOT all accounted for[/]")
    t = Table()
    t.add_column("events", justify="left")
    t.add_column("count", justify="right")
    t.add_row("sent", str(acc.sent))
    for o in OUTCOMES:
        t.add_row(f"  {o.replace('_', '-')}", str(acc.counts[o]))
    t.add_row("accounted (sum of outcomes)", str(acc.total), style="bold" if acc.holds else "bold red")
    if acc.unaccounted:
        t.add_row("no outcome", str(len(acc.unaccounted)), style="red")
    if acc.superseded:
        t.add_row("failures resolved by a replay", str(acc.superseded))
    t.add_row("Genesys writes", write_kinds.explain(summary.writes, summary.attribute_keys, acc.counts["applied"]))
    t.add_row("Genesys token fetches", str(summary.token_fetches))
    t.add_row(
        "Genesys 429 / 5xx answered",
        f"{summary.genesys_requests['rate_limited_429']} / {summary.genesys_requests['unavailable_5xx']}",
    )
    t.add_row("wall time", f"{summary.wall_seconds:.1f} s")
    console.print(t)

    by_kind: dict[tuple[str, str], int] = {}
    for e in summary.events:
        if e.sent:
            by_kind[(e.kind, e.outcome or "NONE")] = by_kind.get((e.kind, e.outcome or "NONE"), 0) + 1
    k = Table(title="what each kind of event became", title_justify="left")
    for c in ("sent as", "outcome", "count"):
        k.add_column(c)
    for (kind, outcome), n in sorted(by_kind.items()):
        k.add_row(kind, outcome.replace("_", "-"), str(n))
    console.print(k)

    dead = [e for e in summary.events if e.outcome == "dead_lettered"]
    if dead:
        d = Table(title="dead-lettered (on the DLQ, with their reasons)", title_justify="left")
        for c in ("line" if any(e.line for e in dead) else "kind", "event id", "reason"):
            d.add_column(c, overflow="fold")
        for e in dead:
            d.add_row(str(e.line) if e.line else e.kind, e.event_id or "", redact(e.reason or ""))
        console.print(d)

    if summary.failed_executions:
        f = Table(title="failed executions (redrivable)", title_justify="left")
        for c in ("execution", "failed at", "error", "cause"):
            f.add_column(c, overflow="fold")
        for fx in summary.failed_executions:
            f.add_row(fx.name, fx.failed_state or "", fx.error or "", redact(fx.cause or ""))
        console.print(f)
        console.print(
            "replay them: [bold]gcpipe --local redrive <arn>[/] (locally a new execution with the same "
            "input: moto has no RedriveExecution); on AWS, the console's [bold]Redrive[/] button or "
            "[bold]gcpipe --env <env> redrive <arn>[/] (RedriveExecution, resumes at the Process state)."
        )
        for fx in summary.failed_executions:
            console.print(f"  {fx.arn}", soft_wrap=True)

    for p in summary.input_problems:
        console.print(f"[red]input {p}[/]")
    for e in summary.send_errors:
        console.print(f"[red]not sent{' (line ' + str(e.line) + ')' if e.line else ''}: {e.send_error}[/]")
    if acc.unaccounted:
        console.print(f"[red]{len(acc.unaccounted)} event(s) have no outcome:[/]")
        for e in acc.unaccounted[:20]:
            console.print(
                f"  {('line ' + str(e.line)) if e.line else e.kind} event {e.event_id} dedup key {e.dedup_key}"
                f"{' (parser: ' + e.invalid_reason + ')' if e.invalid_reason else ''}"
            )
    for o in acc.over_accounted:
        console.print(f"[red]more than one outcome: {o}[/]")
    for note in summary.notes:
        console.print(f"[dim]note: {note}[/]")
    console.print(
        f"[dim]{acc.as_json()['equation']}; Lambda logs and metrics: {summary.log_file} "
        f"(the previous run's: {previous_of(Path(summary.log_file)).name})[/]"
    )


__all__ = ["NoProgress", "progress_bar", "progress_text", "render_permissions", "render_summary"]
