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
@click.option(
    "--max",
    "max_messages",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="At most this many messages.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def show(obj: CliContext, max_messages: int, as_json: bool) -> None:
    """Peek at dead-lettered messages without consuming them: dead-letter reason (the dispatcher's
    DeadLetterReason attribute, or "maxReceiveCount exceeded" when SQS moved it), topic,
    conversation id, receive count. Customer identifiers are redacted.

    Peeking is a receive: messages are made visible again at once, and their receive count
    goes up by one. The count shown is the one before this look (other looks count: the
    console's "Poll for messages", and, locally, `gcpipe local run`'s own peeks while it
    follows its demo mix).
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
    out.print(
        table(
            f"{len(messages)} dead-lettered message(s)",
            ["sent", "reason", "topic", "conversation", "receives", "message id"],
            [[m.sent, m.reason, m.topic, m.conversation_id or "-", m.receive_count, m.message_id] for m in messages],
        )
    )
    out.print(
        "receives: before this look (each look at a queue is a receive"
        + (", and so is each of `gcpipe local run`'s own peeks while it follows a run)" if target.is_local else ")")
    )


@dlq.command()
@click.option("--max", "max_messages", type=click.IntRange(min=1), help="Move at most N messages (default: all).")
@click.option("--dry-run", is_flag=True, help="Show what would be moved; move nothing.")
@click.option("--wait/--no-wait", default=True, show_default=True, help="On AWS, follow the move task to its end.")
@click.option(
    "--all",
    "everything",
    is_flag=True,
    help="Replay every message, also those that would dead-letter again (malformed for today's parser).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def replay(
    obj: CliContext, max_messages: int | None, dry_run: bool, wait: bool, everything: bool, as_json: bool
) -> None:
    """Move dead-lettered messages back to the main queue, with no loss and no duplication: a
    message is deleted from the DLQ only after its copy is confirmed on the main queue.

    On AWS (without --max) this is SQS's own DLQ redrive, StartMessageMoveTask, followed
    with ListMessageMoveTasks. With --max, and locally, it is receive, send, confirm, delete.
    A crash in between leaves a duplicate at worst, which the dispatcher's dedup absorbs.

    The reasons come first. A message the dispatcher dead-lettered as malformed is checked
    again with today's parser and org: if it would dead-letter again it stays, unless --all
    (fix the parser and deploy first). Messages SQS moved after maxReceiveCount are replayed.

    Exit 1 if some messages could not be moved.
    """
    target = obj.target
    depth = ops.depth(target, target.output("DeadLetterQueueUrl"))
    assessed = [] if everything or not depth else ops.assess(target, max(depth, ops.RECEIVE_MAX) * 2)
    keep = {a.letter.message_id for a in assessed if a.still_fails}
    if assessed and not as_json:
        _print_reasons(assessed)
    if dry_run:
        replayable = depth - len(keep) if assessed else depth
        would = max(0, replayable if max_messages is None else min(replayable, max_messages))
        method = (
            "SQS message move task"
            if not target.is_local and max_messages is None and not keep
            else "receive, send, confirm, delete"
        )
        data = {"dry_run": True, "dlq_depth": depth, "would_move": would, "method": method, "would_keep": len(keep)}
        if as_json:
            emit_json(data)
        else:
            stdout().print(
                f"dry run: the DLQ holds ~{depth} message(s); would move {would} to the main queue via {method}"
                + (f"; {len(keep)} that would dead-letter again stay (--all moves them too)" if keep else "")
            )
            sample = (
                [a.letter for a in assessed if not a.still_fails]
                if assessed
                else (ops.show(target, min(would, 10) or 1) if would else [])
            )
            for m in sample[:10]:
                stdout().print(
                    f"  {m.message_id}  {m.reason}  {m.topic or '-'}  conversation {m.conversation_id or '-'}"
                )
        return
    err = stderr()
    if not target.is_local and max_messages is None and not keep:
        with progress(err, disable=as_json) as bar:
            task = bar.add_task("moving", total=depth or None)
            report = ops.replay_by_move_task(
                target,
                wait=wait,
                on_progress=lambda moved, to_move: bar.update(task, completed=moved, total=to_move or depth or None),
            )
    else:
        total = depth if max_messages is None else min(depth, max_messages)
        with progress(err, disable=as_json) as bar:
            task = bar.add_task("moving", total=total or None)
            report = ops.replay_by_copy(
                target, max_messages=max_messages, on_progress=lambda n: bar.advance(task, n), keep=keep
            )
    if as_json:
        emit_json(report.as_json())
    else:
        stdout().print(
            f"{report.detail} ({report.method}{', task ' + report.task_handle if report.task_handle else ''})"
        )
    if report.failed:
        raise SystemExit(1)


def _print_reasons(assessed: list[ops.Assessment]) -> None:
    """Why the messages are there, grouped, and what replaying would do with each group."""
    groups: dict[tuple[str, str | None], int] = {}
    for a in assessed:
        groups[(a.letter.reason, a.still_fails)] = groups.get((a.letter.reason, a.still_fails), 0) + 1
    rows = [
        [reason, n, f"stays: would dead-letter again ({still})" if still else "replayed: could succeed now"]
        for (reason, still), n in sorted(groups.items(), key=lambda kv: -kv[1])
    ]
    stdout().print(
        table(f"the DLQ by dead-letter reason ({len(assessed)} message(s))", ["reason", "messages", "replay"], rows)
    )
