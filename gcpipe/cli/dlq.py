"""``gcpipe dlq show | replay``."""
from __future__ import annotations

import click

from ..ops import dlq as ops
from ._output import emit_json, progress, stderr, stdout, table
from .context import CliContext


@click.group()
def dlq() -> None:
    """The main queue's dead-letter queue: inspect and replay."""


@dlq.command()
@click.option("--max", "max_messages", type=click.IntRange(min=1), default=50, show_default=True, help="At most this many messages.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def show(obj: CliContext, max_messages: int, as_json: bool) -> None:
    """Peek at dead-lettered messages without consuming them: dead-letter reason (the dispatcher's
    DeadLetterReason attribute, or "maxReceiveCount exceeded" when SQS moved it), topic,
    conversation id, receive count. Customer identifiers are redacted.

    Peeking is a receive: messages are made visible again at once, and their receive count
    goes up by one.
    """
    target = obj.target
    messages = ops.show(target, max_messages)
    if as_json:
        emit_json([m.as_json() for m in messages])
        return
    out = stdout()
    if not messages:
        out.print(f"the DLQ is empty ({target.description})")
        return
    out.print(table(f"{len(messages)} dead-lettered message(s)", ["sent", "reason", "topic", "conversation", "receives", "message id"],
                    [[m.sent, m.reason, m.topic, m.conversation_id, m.receive_count, m.message_id] for m in messages]))


@dlq.command()
@click.option("--max", "max_messages", type=click.IntRange(min=1), help="Move at most N messages (default: all).")
@click.option("--dry-run", is_flag=True, help="Show what would be moved; move nothing.")
@click.option("--wait/--no-wait", default=True, show_default=True, help="On AWS, follow the move task to its end.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def replay(obj: CliContext, max_messages: int | None, dry_run: bool, wait: bool, as_json: bool) -> None:
    """Move dead-lettered messages back to the main queue, with no loss and no duplication: a
    message is deleted from the DLQ only after its copy is confirmed on the main queue.

    On AWS (without --max) this is SQS's own DLQ redrive, StartMessageMoveTask, followed
    with ListMessageMoveTasks. With --max, and locally, it is receive, send, confirm, delete.
    A crash in between leaves a duplicate at worst, which the dispatcher's dedup absorbs.
    Fix the cause first: a malformed event dead-letters again.

    Exit 1 if some messages could not be moved.
    """
    target = obj.target
    depth = ops.depth(target, target.output("DeadLetterQueueUrl"))
    if dry_run:
        would = depth if max_messages is None else min(depth, max_messages)
        method = "SQS message move task" if not target.is_local and max_messages is None else "receive, send, confirm, delete"
        data = {"dry_run": True, "dlq_depth": depth, "would_move": would, "method": method}
        if as_json:
            emit_json(data)
        else:
            stdout().print(f"dry run: the DLQ holds ~{depth} message(s); would move {would} to the main queue via {method}")
            for m in ops.show(target, min(would, 10) or 1) if would else []:
                stdout().print(f"  {m.message_id}  {m.reason}  {m.topic}  {m.conversation_id}")
        return
    err = stderr()
    if not target.is_local and max_messages is None:
        with progress(err, disable=as_json) as bar:
            task = bar.add_task("moving", total=depth or None)
            report = ops.replay_by_move_task(target, wait=wait, on_progress=lambda moved, to_move: bar.update(task, completed=moved, total=to_move or depth or None))
    else:
        total = depth if max_messages is None else min(depth, max_messages)
        with progress(err, disable=as_json) as bar:
            task = bar.add_task("moving", total=total or None)
            report = ops.replay_by_copy(target, max_messages=max_messages, on_progress=lambda n: bar.advance(task, n))
    if as_json:
        emit_json(report.as_json())
    else:
        stdout().print(f"{report.detail} ({report.method}{', task ' + report.task_handle if report.task_handle else ''})")
    if report.failed:
        raise SystemExit(1)
