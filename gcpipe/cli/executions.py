"""``gcpipe failures`` and ``gcpipe redrive``."""

from __future__ import annotations

from datetime import datetime

import click

from ..ops import executions as ops
from ._output import POINT_IN_TIME, emit_json, stdout, table
from .context import CliContext


@click.command()
@click.option(
    "--since",
    type=POINT_IN_TIME,
    default="24h",
    show_default=True,
    help="Executions started since (24h, 7d, or ISO 8601).",
)
@click.option(
    "--limit", type=click.IntRange(min=1), default=200, show_default=True, help="At most this many (newest first)."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def failures(obj: CliContext, since: datetime, limit: int, as_json: bool) -> None:
    """List FAILED, TIMED_OUT and ABORTED executions of the pipeline's state machine: time,
    conversation id (from the execution input), error, cause, console URL, and whether
    each can be redriven (describe_execution redriveStatus; locally always, via a new execution).

    Causes are redacted. Redrive them with `gcpipe redrive ARN...` or `--all-failed`.
    """
    target = obj.target
    found = ops.list_failures(target, since)[:limit]
    if as_json:
        emit_json([f.as_json() for f in found])
        return
    out = stdout()
    if not found:
        out.print(f"no failed executions since {since.isoformat(timespec='seconds')} ({target.description})")
        return
    columns = ["stopped", "status", "execution", "conversation", "error", "cause", "redrivable"]
    if not target.is_local:
        columns.append("console")
    rows = []
    for f in found:
        row = [
            f.stop_date or f.start_date,
            f.status,
            f.name,
            f.conversation_id,
            f.error,
            (f.cause or "")[:120],
            f.redrive_note,
        ]
        if not target.is_local:
            row.append(f.console_url)
        rows.append(row)
    out.print(table(f"{len(found)} failed execution(s) since {since.isoformat(timespec='seconds')}", columns, rows))


@click.command()
@click.argument("executions", nargs=-1, metavar="[EXECUTION_ARN_OR_NAME]...")
@click.option("--all-failed", is_flag=True, help="Every FAILED/TIMED_OUT/ABORTED execution since --since.")
@click.option("--since", type=POINT_IN_TIME, default=None, help="With --all-failed: started since (default 24h).")
@click.option("--dry-run", is_flag=True, help="Say what would be redriven; change nothing.")
@click.option(
    "--new-execution",
    is_flag=True,
    help="Start a new execution with the same input instead of RedriveExecution (for executions past the 14-day redrive window). Always the case locally.",
)
@click.option(
    "--force",
    is_flag=True,
    help="With a new execution (locally, or --new-execution): replay even an execution whose replay already "
    "succeeded or is running (skipped otherwise).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def redrive(
    obj: CliContext,
    executions: tuple[str, ...],
    all_failed: bool,
    since: datetime | None,
    dry_run: bool,
    new_execution: bool,
    force: bool,
    as_json: bool,
) -> None:
    """Redrive failed executions: RedriveExecution, the API behind the console's Redrive button,
    which resumes at the failed Process state with the same execution and input.

    Locally, where moto has no RedriveExecution, a new execution with the same input is
    started, named <name>-replay-N; that is safe because the processor's idempotency keys on
    the event's dedupKey in the input, not on the execution name. An execution whose replay
    already succeeded (or is running) is skipped, unless --force.

    Exit 1 if any execution could not be redriven.
    """
    if bool(executions) == all_failed:
        raise click.UsageError("give execution ARNs/names, or --all-failed (not both)")
    if since is not None and not all_failed:
        raise click.UsageError("--since only applies to --all-failed")
    target = obj.target
    if all_failed:
        since = since or POINT_IN_TIME.convert("24h", None, None)
        arns = [e["executionArn"] for e in ops.list_failed_arns(target, since)]
    else:
        arns = [_to_arn(target.output("StateMachineArn"), e) for e in executions]
    results = ops.redrive_many(target, arns, dry_run=dry_run, new_execution=new_execution, force=force)
    if as_json:
        emit_json([r.as_json() for r in results])
    else:
        out = stdout()
        if not results:
            out.print("nothing to redrive")
        else:
            out.print(
                table(
                    f"redrive{' (dry run)' if dry_run else ''}: {len(results)} execution(s)",
                    ["execution", "action", "result", "new execution"],
                    [
                        [
                            r.execution_arn.rsplit(":", 1)[-1],
                            r.action,
                            r.detail,
                            (r.new_execution_arn or "").rsplit(":", 1)[-1],
                        ]
                        for r in results
                    ],
                )
            )
    if any(not r.ok for r in results):
        raise SystemExit(1)


def _to_arn(state_machine_arn: str, value: str) -> str:
    """Accept an execution ARN, or a bare execution name of this environment's state machine."""
    if value.startswith("arn:"):
        if ":execution:" not in value:
            raise click.BadParameter(f"{value} is not an execution ARN", param_hint="EXECUTION_ARN")
        return value
    if not value or len(value) > ops.EXECUTION_NAME_MAX:
        raise click.BadParameter(
            f"{value!r} is neither an execution ARN nor an execution name", param_hint="EXECUTION_ARN"
        )
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":" + value
