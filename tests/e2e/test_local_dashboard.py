"""`gcpipe local dashboard`: the template's own dashboard, filled with the EMF lines the local Lambdas printed.

Events go through the whole local pipeline (in-process) with the Lambdas' output captured into a log file,
as `gcpipe local run` does; then the command renders the page from the session's synthesized template.
"""

from __future__ import annotations

import json
import re

from click.testing import CliRunner

from gcpipe.cli import cli
from gcpipe.local.dashboard import build, dashboard_body
from gcpipe.local.run.lambda_output import LambdaOutput
from gcpipe.local.service_metrics import ServiceMetricsLog
from gcpipe.local.template import CloudAssembly

CUSTOM_NAMESPACE = "GenesysEventPipeline"


def run_traffic(e2e, log_file):
    # The Lambdas' output, and what the emulated services record (as `gcpipe local run` does)
    with (
        LambdaOutput(log_file) as output,
        ServiceMetricsLog(log_file.with_name("aws-metrics.log"), sqs=e2e.pipeline.client("sqs"), sample_seconds=0.2),
    ):
        output.ensure()
        applied = [e2e.event("acd.end") for _ in range(3)]
        e2e.sim.fail_next(1, 429, retry_after=1)  # one 429: the budget widget's line, retried and applied
        e2e.send(*applied)
        e2e.send(applied[0], kind="duplicate")
        e2e.send(e2e.event("acd.end", queue_id="99999999-9999-4999-8999-999999999999"))  # filtered by the rule
        wrong_type = e2e.event("acd.end")
        wrong_type["detail"]["eventBody"]["eventTime"] = "yesterday"
        e2e.send(wrong_type)  # dead-lettered by the dispatcher, with its topic
        e2e.settle()
        assert e2e.pipeline.wait_until_idle(60)
    return applied


def test_every_widget_of_the_template_appears_and_the_lambdas_metrics_fill_it(e2e, synthesized, tmp_path):
    log_file = tmp_path / "lambdas.log"
    applied = run_traffic(e2e, log_file)
    out = tmp_path / "dashboard.html"

    result = CliRunner().invoke(
        cli,
        ["local", "dashboard", "--cdk-out", str(synthesized), "--log", str(log_file), "--out", str(out), "--json"],
        catch_exceptions=False,
    )

    assert result.exit_code == 0, result.output
    page = out.read_text()
    template_widgets = dashboard_body(CloudAssembly.load(synthesized, "GenesysEvents-dev"))["widgets"]
    titles = [w["properties"].get("title", w["type"]) for w in template_widgets]
    assert re.findall(r"data-title='([^']*)'", page) == titles  # every widget, in the template's order
    assert not re.search(r"<script|https?://", page, re.I)  # self-contained: no script, no CDN

    report = json.loads(result.stdout)
    for widget in report["widgets"]:
        if widget["type"] != "text":
            assert widget["has_data"], widget  # every widget is filled: the Lambdas' metrics, AWS's, alarms
        for line in widget["lines"]:
            if line["points"] == 0:
                assert line["note"], line  # an empty line says why
    [alarm_widget] = [w for w in report["widgets"] if w["type"] == "alarm"]
    states = {a["alarm"]: a["state"] for a in alarm_widget["alarms"]}
    assert states and set(states.values()) <= {"OK", "ALARM", "INSUFFICIENT_DATA"}
    # The alarms this run may trip, and only those: one message on the DLQ (sampled to the end: it alarms), and
    # one 429 among a few requests, which alarms unless the run crossed a 5-minute boundary after it (an alarm
    # evaluates the last period only, as on CloudWatch; tests/local covers that rule)
    alarming = {a.rstrip("0123456789ABCDEF") for a, s in states.items() if s == "ALARM"}
    assert "ObservabilityDeadLetterQueueDepth" in alarming, states
    assert alarming <= {"ObservabilityDeadLetterQueueDepth", "ObservabilityGenesysRateLimitedShare"}, states
    assert states[next(a for a in states if a.startswith("ObservabilityFailedExecutions"))] == "OK"
    # Silence is judged over 6 periods of 5 minutes: a short run cannot say
    assert states[next(a for a in states if a.startswith("ObservabilityNoEventsReceived"))] == "INSUFFICIENT_DATA"

    board = build(synthesized, "GenesysEvents-dev", log_file)
    # The aggregate series (the per-topic ones carry a topic dimension too).
    lines = {
        ln.name: ln
        for w in board.widgets
        for ln in w.lines
        if ln.namespace == CUSTOM_NAMESPACE and "topic" not in ln.dimensions
    }
    assert sum(v for _, v in lines["EventsApplied"].points) == len(applied)
    assert sum(v for _, v in lines["EventsDuplicate"].points) == 1
    # AWS's own metrics, recorded by the emulated services under the names the widgets resolve to
    aws = {
        (ln.namespace, ln.name, ln.label): ln
        for w in board.widgets
        for ln in w.lines
        if (ln.namespace or "").startswith("AWS/")
    }
    started = [ln for (ns, name, _), ln in aws.items() if name == "ExecutionsStarted"]
    assert [sum(v for _, v in ln.points) for ln in started] == [len(applied)]  # the duplicate started none
    succeeded = [ln for (ns, name, _), ln in aws.items() if name == "ExecutionsSucceeded"]
    assert [sum(v for _, v in ln.points) for ln in succeeded] == [len(applied)]
    processor_errors = next(ln for (ns, name, label), ln in aws.items() if name == "Errors" and "Processor" in label)
    assert len(processor_errors.points) >= len(applied) and sum(v for _, v in processor_errors.points) == 0
    visible = [ln for (ns, name, _), ln in aws.items() if name == "ApproximateNumberOfMessagesVisible"]
    assert visible and all(ln.has_data for ln in visible)
    assert all(a.evaluated for a in board.alarms.values() if "FailedExecutions" in a.alarm)


def test_a_missing_log_is_one_line_with_the_fix(synthesized, tmp_path):
    result = CliRunner().invoke(
        cli,
        [
            "local",
            "dashboard",
            "--cdk-out",
            str(synthesized),
            "--log",
            str(tmp_path / "nothing.log"),
            "--out",
            str(tmp_path / "d.html"),
        ],
    )
    assert result.exit_code == 1 and "run the pipeline first (gcpipe local run)" in result.output
    assert "Traceback" not in result.output
