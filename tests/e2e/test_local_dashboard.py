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
from gcpipe.local.runner import LambdaOutput
from gcpipe.local.template import CloudAssembly

CUSTOM_NAMESPACE = "GenesysEventPipeline"


def run_traffic(e2e, log_file):
    with LambdaOutput(log_file) as output:
        output.ensure()
        applied = [e2e.event("acd.end") for _ in range(3)]
        e2e.send(*applied)
        e2e.send(applied[0], kind="duplicate")
        e2e.send(e2e.event("acd.end", queue_id="99999999-9999-4999-8999-999999999999"))  # filtered by the rule
        e2e.settle()
        assert e2e.pipeline.wait_until_idle(60)
    return applied


def test_every_widget_of_the_template_appears_and_the_lambdas_metrics_fill_it(e2e, synthesized, tmp_path):
    log_file = tmp_path / "lambdas.log"
    applied = run_traffic(e2e, log_file)
    out = tmp_path / "dashboard.html"

    result = CliRunner().invoke(cli, ["local", "dashboard", "--cdk-out", str(synthesized), "--log", str(log_file),
                                      "--out", str(out), "--json"], catch_exceptions=False)

    assert result.exit_code == 0, result.output
    page = out.read_text()
    template_widgets = dashboard_body(CloudAssembly.load(synthesized, "GenesysEvents-dev"))["widgets"]
    titles = [w["properties"].get("title", w["type"]) for w in template_widgets]
    assert re.findall(r"data-title='([^']*)'", page) == titles  # every widget, in the template's order
    assert not re.search(r"<script|https?://", page, re.I)  # self-contained: no script, no CDN

    report = json.loads(result.stdout)
    emitted = {name for name in re.findall(r'"Name":\s*"([A-Za-z]+)"', log_file.read_text())}
    for widget, raw in zip(report["widgets"], template_widgets):
        custom = [m for m in raw["properties"].get("metrics", []) if m and m[0] == CUSTOM_NAMESPACE]
        if any(m[1] in emitted for m in custom):
            assert widget["has_data"], widget  # a widget of the Lambdas' metrics is filled
        for line in widget["lines"]:
            if line["points"] == 0:
                assert line["note"], line  # an empty line says why (AWS service metric, or none this run)
    assert sum(w["has_data"] for w in report["widgets"]) >= 2

    board = build(synthesized, "GenesysEvents-dev", log_file)
    # The aggregate series (the per-topic ones carry a topic dimension too).
    lines = {ln.name: ln for w in board.widgets for ln in w.lines
             if ln.namespace == CUSTOM_NAMESPACE and "topic" not in ln.dimensions}
    assert sum(v for _, v in lines["EventsApplied"].points) == len(applied)
    assert sum(v for _, v in lines["EventsDuplicate"].points) == 1
    aws_lines = [ln for w in board.widgets for ln in w.lines if (ln.namespace or "").startswith("AWS/")]
    assert aws_lines and all(not ln.has_data and "recorded by CloudWatch" in ln.note for ln in aws_lines)


def test_a_missing_log_is_one_line_with_the_fix(synthesized, tmp_path):
    result = CliRunner().invoke(cli, ["local", "dashboard", "--cdk-out", str(synthesized),
                                      "--log", str(tmp_path / "nothing.log"), "--out", str(tmp_path / "d.html")])
    assert result.exit_code == 1 and "run the pipeline first (gcpipe local run)" in result.output
    assert "Traceback" not in result.output
