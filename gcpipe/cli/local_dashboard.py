"""``gcpipe local dashboard``: the stack's CloudWatch dashboard, filled with the last local run's metrics (offline HTML)."""

from __future__ import annotations

from pathlib import Path

import click

from ._output import emit_json, stderr


@click.command("dashboard")
@click.option("--env", default="dev", show_default=True, help="Environment (stack GenesysEvents-ENV).")
@click.option(
    "--cdk-out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Cloud assembly holding the template (default: .local-run/cdk.out, what `gcpipe local run` synthesized).",
)
@click.option(
    "--log",
    "log_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The Lambdas' output of the run (default: .local-run/lambdas.log).",
)
@click.option(
    "--aws-metrics",
    "aws_metrics_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The AWS service metrics the emulator recorded (default: aws-metrics.log beside --log).",
)
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the page (default: .local-run/dashboard.html).",
)
@click.option("--json", "as_json", is_flag=True, help="Also print each widget and its data-point counts as JSON.")
def command(
    env: str,
    cdk_out: Path | None,
    log_file: Path | None,
    aws_metrics_file: Path | None,
    out_file: Path | None,
    as_json: bool,
) -> None:
    """Write the stack's own dashboard (the template's DashboardBody) as one self-contained HTML page, filled
    with the metrics the local Lambdas emitted (EMF lines) during the last `gcpipe local run`, and the AWS
    service metrics (SQS, Step Functions, Lambda) the emulator recorded as those services would. Each alarm
    shows the state it reaches over the run. No CDN: opens offline.
    """
    from gcpipe.local.dashboard import DashboardError, build
    from gcpipe.local.run_files import RUN_DIR
    from gcpipe.local.template import TemplateError
    from gcpipe.names import stack_name

    cdk_out = cdk_out or RUN_DIR / "cdk.out"
    log_file = log_file or RUN_DIR / "lambdas.log"
    out_file = out_file or RUN_DIR / "dashboard.html"
    try:
        page = build(cdk_out, stack_name(env), log_file, aws_metrics_file)
    except (DashboardError, TemplateError) as exc:
        raise click.ClickException(str(exc)) from None
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(page.html, encoding="utf-8")
    with_data = sum(1 for w in page.widgets if w.has_data)
    alarming = sorted(a.alarm for a in page.alarms.values() if a.state == "ALARM")
    stderr().print(
        f"wrote {out_file}: {len(page.widgets)} widgets of {page.stack_name}'s dashboard, "
        f"{with_data} with data from {log_file}; alarms in ALARM over the run: "
        f"{', '.join(alarming) or 'none'}",
        highlight=False,
    )
    if as_json:
        emit_json(page.as_json())


__all__ = ["command"]
