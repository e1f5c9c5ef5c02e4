"""``gcpipe archive replay``."""

from __future__ import annotations

from datetime import datetime

import click

from ..ops import archive as ops
from ._output import POINT_IN_TIME, emit_json, stdout
from .context import CliContext


@click.group()
def archive() -> None:
    """The partner bus's EventBridge archive."""


@archive.command()
@click.option(
    "--from",
    "start",
    type=POINT_IN_TIME,
    required=True,
    help="Replay events from this time (ISO 8601, or 6h / 2d ago).",
)
@click.option("--to", "end", type=POINT_IN_TIME, default="now", show_default=True, help="... up to this time.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def replay(obj: CliContext, start: datetime, end: datetime, as_json: bool) -> None:
    """Start an EventBridge archive replay of [--from, --to] to the pipeline rule only
    (StartReplay with Destination = the bus, FilterArns = [the rule]).

    Already-processed events come back as duplicates and are absorbed by the dedup key.
    Follow it in the EventBridge console (Replays) or with
    `aws events describe-replay --replay-name NAME`.

    AWS only: with --local this is a usage error (exit 2); re-send events with `gcpipe send`.
    """
    if end <= start:
        raise click.BadParameter("--to must be after --from", param_hint="--to")
    started = ops.start_replay(obj.target, start, end)
    if as_json:
        emit_json(started.as_json())
    else:
        stdout().print(
            f"replay {started.replay_name} {started.state}: {started.start} .. {started.end} "
            f"from {started.archive_arn} to rule {started.rule_arn}"
        )
