"""``gcpipe local chaos``: the local pipeline under seeded faults at every seam (``gcpipe.chaos``)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ._output import stderr

EXIT_OK, EXIT_BROKEN, EXIT_USAGE = 0, 1, 2


@click.command("chaos")
@click.option("--events", type=click.IntRange(min=1, max=100_000), required=True, help="Events to send.")
@click.option("--seed", type=int, required=True, help="Seed of the traffic and of the fault schedule.")
@click.option(
    "--json",
    "json_file",
    is_flag=False,
    flag_value="-",
    default=None,
    metavar="[FILE]",
    help="Also write the figures as JSON: to FILE, or stdout when given alone.",
)
@click.option("--env", default="dev", show_default=True, metavar="NAME", help="Environment (stack) to run.")
@click.option(
    "--quiet-timeout",
    type=click.FloatRange(min=5.0),
    default=120.0,
    show_default=True,
    help="Stop waiting after this many seconds without a new outcome.",
)
@click.option(
    "--cdk-out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="A cloud assembly to deploy as is (default: .local-run/cdk.out, synthesized when stale).",
)
def command(
    events: int, seed: int, json_file: str | None, env: str, quiet_timeout: float, cdk_out: Path | None
) -> None:
    """Run the local pipeline on EVENTS events under random faults (reproducible from SEED) at every seam:
    Genesys, AWS, process crashes, delivery. Then redrive every failed execution once and check the promise.

    Exit status 0 only when sent = applied + duplicate + filtered + stale + dead-lettered + failed (+ skipped),
    no event is lost, no event was written twice with different values and no execution is still failed
    after the redrive; 1 otherwise; 2 for bad arguments.
    """
    import json

    from rich.console import Console

    from gcpipe.chaos.report import render
    from gcpipe.chaos.run import ChaosOptions, ChaosRun
    from gcpipe.local.run import RunnerError

    out = sys.stdout  # captured now: the run swaps sys.stdout for the Lambdas' log file
    err = stderr()
    run = ChaosRun(
        ChaosOptions(events=events, seed=seed, env=env, quiet_timeout=quiet_timeout, cdk_out=cdk_out),
        say=lambda message: err.print(message, highlight=False),
    )
    try:
        report = run.run()
    except RunnerError as exc:
        raise click.ClickException(str(exc)) from None
    data = json.dumps(report.as_json(), indent=2) + "\n"
    if json_file == "-":
        out.write(data)
        out.flush()
        render(report, err)
    else:
        render(report, Console(file=out, soft_wrap=False, width=None if out.isatty() else 160))
        if json_file:
            Path(json_file).write_text(data, encoding="utf-8")
    if not report.ok:
        sys.exit(EXIT_BROKEN)


__all__ = ["command"]
