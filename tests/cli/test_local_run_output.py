"""What `gcpipe local run` tells the operator: the writes beside applied, a timeout on lack of progress
that does not read as a loss, and the previous run's Lambda log kept (issue 14, defects 6 and 10)."""

from __future__ import annotations

import io
from collections import Counter

from rich.console import Console

from gcpipe.local import write_kinds
from gcpipe.local.ledger import Accounting, TrackedEvent
from gcpipe.local.progress_watch import ProgressWatch
from gcpipe.local.run.lambda_output import LambdaOutput
from gcpipe.local.run.report import render_summary
from gcpipe.local.run.summary import RunSummary

ATTRS = ("aws_processed", "aws_processed_at", "aws_pipeline_execution")


def _write(attributes: dict, path: str = "/api/v2/conversations/c/participants/p/attributes") -> dict:
    return {
        "method": "PATCH",
        "path": path,
        "conversation_id": "c",
        "participant_id": "p",
        "body": {"attributes": attributes},
    }


def test_writes_beside_applied_say_why_they_differ_on_the_same_line():
    writes = [_write({"aws_processed": "true"}) for _ in range(40)] + [_write({"aws_processing_status": "failed"})]
    line = write_kinds.explain(writes, ATTRS, applied=40)
    assert (
        line
        == "41 (40 write-back(s), one per applied event; 1 failure mark(s) by the error logger (failed executions))"
    )
    tags = [{"method": "PUT", "path": "/api/v2/conversations/c/tags", "body": {"externalTag": "x"}}]
    assert "1 external tag(s) by the processor" in write_kinds.explain(writes[:2] + tags, ATTRS, applied=2)


def _summary(events: list[TrackedEvent], accounting: Accounting, **kw) -> RunSummary:
    return RunSummary(
        "dev",
        "server",
        events,
        accounting,
        [],
        kw.pop("writes", []),
        1,
        {"rate_limited_429": 0, "unavailable_5xx": 0},
        [],
        [],
        12.0,
        kw.pop("log_file", "lambdas.log"),
        attribute_keys=ATTRS,
        **kw,
    )


def test_the_summary_table_carries_the_reason_beside_the_writes():
    e = TrackedEvent(index=1, kind="event", envelope={}, sent=True, outcome="applied", dedup_key="k")
    acc = Accounting(1, Counter({"applied": 1}), [], [], 0, 0)
    out = io.StringIO()
    render_summary(
        _summary([e], acc, writes=[_write({"aws_processed": "true"}), _write({"aws_processing_status": "failed"})]),
        Console(file=out, width=250),
    )
    [row] = [ln for ln in out.getvalue().splitlines() if "Genesys writes" in ln]
    assert "2 (1 write-back(s), one per applied event; 1 failure mark(s) by the error logger" in row


def test_a_timeout_is_on_lack_of_progress_not_total_time():
    now = [0.0]
    watch = ProgressWatch(patience=90, clock=lambda: now[0])
    for step in range(1, 40):  # 390 s in total, a new outcome every 10 s: never stalled
        now[0] += 10
        watch.observe(step)
        assert not watch.stalled
    now[0] += 91  # then nothing new for longer than the patience
    watch.observe(39)
    assert watch.stalled
    text = watch.explain(without_outcome=12, queued=10, running=2)
    assert "without a new outcome" in text and "still working" in text and "Not known to be lost" in text
    assert f"{39 / 481:.1f} events/s" in text


def test_a_timed_out_run_reads_as_still_in_progress_not_as_lost():
    e = TrackedEvent(index=1, kind="event", envelope={}, sent=True, outcome=None, dedup_key="k")
    acc = Accounting(1, Counter(), [e], [], 0, 0)
    out = io.StringIO()
    render_summary(
        _summary([e], acc, timed_out=True, notes=["stopped waiting after 90 s without a new outcome: ..."]),
        Console(file=out, width=250),
    )
    text = out.getvalue()
    assert "stopped waiting with 1 event(s) still in progress" in text
    assert "NOT all accounted" not in text


def test_each_run_keeps_the_previous_runs_lambda_log(tmp_path):
    log = tmp_path / "lambdas.log"
    for run in ("first", "second"):
        with LambdaOutput(log):
            print(f"{run} run's output")
    assert log.read_text() == "second run's output\n"
    assert (tmp_path / "lambdas.previous.log").read_text() == "first run's output\n"
