"""``gcpipe send``."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Iterator

import click

from .. import traffic
from ..ops import send as ops
from ..ops.rule import RuleMatcher, load_rule
from ..ops.validation import load_parser, org_of_source
from ._output import emit_json, progress, stderr, stdout, table
from .context import CliContext

SHOWN_PER_LIST = 50


@click.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option(
    "--generate",
    "generate",
    type=click.IntRange(min=1),
    metavar="N",
    help="Generate N realistic events instead of reading FILE.",
)
@click.option(
    "--topic",
    "topics",
    multiple=True,
    metavar="TOPIC",
    help="With --generate: topic to generate (acd.end, customer.end, attributes, or a full template). Repeatable. Default: acd.end and customer.end.",
)
@click.option(
    "--queue",
    "queues",
    multiple=True,
    metavar="QUEUE_ID",
    help="With --generate: Genesys queue id for acd.end events. Repeatable. Default: the sample's queue.",
)
@click.option("--seed", type=int, help="With --generate: random seed, for a reproducible set.")
@click.option(
    "--audit-log",
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSONL audit log, one line per input line. Default: .gcpipe/audit/send-<env>-<time>.jsonl",
)
@click.option(
    "--org-id",
    metavar="ORG_ID",
    help="Expected Genesys org id. Default: the dispatcher's GENESYS_ORG_ID, else the partner bus's org.",
)
@click.option(
    "--concurrency", type=click.IntRange(1, 32), default=4, show_default=True, help="SendMessageBatch calls in flight."
)
@click.option(
    "--max-attempts",
    type=click.IntRange(1, 20),
    default=6,
    show_default=True,
    help="Attempts per batch entry (failed entries retried with jittered backoff).",
)
@click.option("--dry-run", is_flag=True, help="Validate, dedup and filter; send nothing.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
@click.pass_obj
def send(
    obj: CliContext,
    file: Path | None,
    generate: int | None,
    topics: tuple[str, ...],
    queues: tuple[str, ...],
    seed: int | None,
    audit_log: Path | None,
    org_id: str | None,
    concurrency: int,
    max_attempts: int,
    dry_run: bool,
    no_progress: bool,
    as_json: bool,
) -> None:
    """Inject Genesys EventBridge events (JSONL FILE, '-' for stdin, or --generate N) into the pipeline,
    for backfills, tests and load.

    \b
    Route (the only one AWS allows for these events):
      A custom PutEvents may not use an "aws." source, and a partner bus only
      takes its partner's events. So each event is
      1. validated with the pipeline's own parser (rejects reported by line and
         reason; the rest still go) and its org checked;
      2. dropped if its dedup key already occurred in the input (counted);
      3. evaluated against the deployed rule's own event pattern
         (TestEventPattern on AWS; moto's matcher locally): non-matching events
         are counted as filtered-by-rule and not sent;
      4. sent straight to the main SQS queue, the original envelope as the
         body, with SendMessageBatch (10 entries and 256 KiB per call, 256 KiB
         per event: a larger event is rejected with its size). Failed entries
         are retried with backoff at bounded concurrency.
    The dispatcher's validation, dedup and filter still apply downstream.

    Blank lines are skipped. Ctrl-C stops at once and says what was accepted; so does an
    endpoint that refuses every connection for a few seconds (a stopped local stack).
    Re-sending the same file is safe: what was already accepted comes back as duplicates,
    which the pipeline absorbs (dedup key).

    Exit 0 when every line was accepted, a duplicate or filtered; 1 when any
    line was rejected or failed (see the audit log), or the run was stopped early.
    """
    if (file is None) == (generate is None):
        raise click.UsageError("give exactly one of FILE or --generate N")
    if (topics or queues or seed is not None) and generate is None:
        raise click.UsageError("--topic, --queue and --seed only apply to --generate")
    for t in topics:
        if not t or " " in t:
            raise click.BadParameter(f"{t!r} is not a topic", param_hint="--topic")
    target = obj.target
    parser, parser_name = load_parser()
    rule = load_rule(target)
    matcher = RuleMatcher.for_target(target, rule)
    org = ops.expected_org(target, org_id)
    if generate is not None:
        source = target.outputs.get("EventBusName", "")
        if not org_of_source(source):
            source = traffic.partner_source(org) if org else traffic.partner_source()
        items = traffic.generate(
            generate,
            topics=topics or traffic.DEFAULT_TOPICS,
            queue_ids=queues or (traffic.SAMPLE_QUEUE_ID,),
            source=source,
            rng=random.Random(seed),
        )
        lines: Iterator[tuple[int, str | None, str | None]] = (
            (n, traffic.TrafficItem("event", e).line(), None) for n, e in enumerate(items, start=1)
        )
        total = generate
    else:
        assert file is not None  # exactly one of FILE and --generate (checked above)
        if str(file) != "-" and not file.exists():
            raise click.BadParameter(f"{file} does not exist", param_hint="FILE")
        total = None
        if str(file) != "-":
            with open(file, "rb") as fh:
                total = sum(1 for _ in fh)
        lines = ops.read_lines(file)
    audit_path = audit_log or ops.default_audit_path(target.env)
    audit = ops.AuditLog(audit_path)
    err = stderr()
    if not as_json:
        err.print(
            f"[bold]send[/] to {target.description}: rule {rule.name}, queue {target.output('MainQueueUrl')}"
            f"{' (dry run)' if dry_run else ''}"
        )
    try:
        with progress(err, disable=no_progress or as_json) as bar:
            task = bar.add_task("events", total=total)
            sender = ops.Sender(
                sqs=ops.sqs_client(target),
                queue_url=target.output("MainQueueUrl"),
                parser=parser,
                matcher=matcher,
                audit=audit,
                org_id=org,
                retry=ops.RetryPolicy(max_attempts=max_attempts),
                concurrency=concurrency,
                dry_run=dry_run,
                on_progress=lambda n: bar.advance(task, n),
                endpoint=target.endpoint_url or f"SQS in {target.region}",
            )
            try:
                report = sender.run(lines)
            except KeyboardInterrupt:  # a second Ctrl-C while the batches in flight finish
                sender.halt(ops.INTERRUPTED, "interrupted (Ctrl-C)")
                report = sender.report
    finally:
        audit.close()
    report.audit_log, report.parser, report.rule, report.expected_org = str(audit_path), parser_name, rule.name, org
    if as_json:
        emit_json(report.as_json())
    elif report.stopped == ops.UNREACHABLE:
        pass  # one line, below: the summary table would only repeat it
    else:
        _render(report)
    if report.stopped:
        click.echo(_stopped_line(report, file, "--local" if target.is_local else f"--env {target.env}"), err=True)
    if not report.ok:
        raise SystemExit(1)


def _stopped_line(report: ops.SendReport, file: Path | None, where: str) -> str:
    """Why the run stopped, what SQS had accepted by then, where the record is, how to resume."""
    accepted = report.counts[ops.ACCEPTED]
    again = f"`gcpipe {where} send {file}`" if file is not None and str(file) != "-" else "the same input"
    resume = (
        f"to resume, run {again} again: re-sending is safe, the {accepted:,} already accepted "
        "come back as duplicates that the pipeline absorbs (dedup key)"
    )
    if report.stopped == ops.UNREACHABLE:
        return (
            f"gcpipe send: stopped: {report.stop_detail}; {accepted:,} line(s) accepted before that, "
            f"listed in the audit log {report.audit_log}; {resume}"
        )
    return (
        f"gcpipe send: interrupted: {accepted:,} line(s) accepted of {report.lines:,} read "
        f"(audit log {report.audit_log}); {resume}"
    )


def _render(report: ops.SendReport) -> None:
    out = stdout()
    c = report.counts
    out.print(
        table(
            "send summary",
            [
                "lines",
                "accepted",
                "rejected",
                "duplicate",
                "filtered by rule",
                "failed",
                "blank (skipped)",
                "SQS calls",
                "retried entries",
                "seconds",
                "ev/s",
            ],
            [
                [
                    report.lines,
                    c[ops.ACCEPTED],
                    c[ops.REJECTED],
                    c[ops.DUPLICATE],
                    c[ops.FILTERED],
                    c[ops.FAILED],
                    report.blank_lines,
                    report.calls,
                    report.retried_entries,
                    f"{report.elapsed_seconds:.1f}",
                    f"{report.lines / report.elapsed_seconds:,.0f}" if report.elapsed_seconds else "-",
                ]
            ],
        )
    )
    for title, items, columns, row in (
        ("rejected", report.rejected, ["line", "reason"], lambda o: [o.line, o.reason]),
        (
            "duplicates (dropped)",
            report.duplicates,
            ["line", "duplicate of line", "dedup key"],
            lambda o: [o.line, o.duplicate_of, o.dedup_key],
        ),
        ("failed", report.failed, ["line", "reason"], lambda o: [o.line, o.reason]),
    ):
        if items:
            items = sorted(items, key=lambda o: o.line)
            out.print(table(f"{title}: {len(items)}", columns, [row(o) for o in items[:SHOWN_PER_LIST]]))
            if len(items) > SHOWN_PER_LIST:
                out.print(f"… and {len(items) - SHOWN_PER_LIST} more {title.split(' ')[0]} lines: see the audit log")
    out.print(f"audit log: {report.audit_log}   validated with: {report.parser}")
