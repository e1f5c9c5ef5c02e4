"""``gcpipe local run``: the README's main command (``make run``).

The logic lives in ``gcpipe.local.run``; this module is the click surface:
options, where things are printed, exit status.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click

from ._output import stderr

if TYPE_CHECKING:
    from gcpipe.local.run import LocalRun, RunSummary

EXIT_OK, EXIT_NOT_ACCOUNTED, EXIT_USAGE = 0, 1, 2


@click.command("run")
@click.option(
    "--env",
    "env",
    default="dev",
    show_default=True,
    metavar="NAME",
    help="Environment to run: deploys GenesysEvents-NAME from its synthesized template.",
)
@click.option(
    "--events",
    "events_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    metavar="FILE.jsonl",
    help="Your own EventBridge events (one JSON envelope per line) instead of the generated mix. "
    "A bad line is reported by number; the other lines still run.",
)
@click.option(
    "--count",
    type=click.IntRange(min=1, max=5000),
    default=24,
    show_default=True,
    help="Distinct valid events in the generated mix (duplicates, late, malformed, storm and burst events come on top).",
)
@click.option("--seed", type=int, default=None, help="Seed of the generated mix (reproducible runs).")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Machine-readable summary on stdout: per event its id, dedup key, outcome and reason; the Genesys writes.",
)
@click.option(
    "--keep-running",
    is_flag=True,
    help="Leave the emulator and the simulator up (state file .local-run/endpoints.json) so that "
    "`gcpipe --local ...` works from another terminal; Ctrl-C stops them.",
)
@click.option("--no-faults", is_flag=True, help="Generated mix without the 429 storm and the 5xx bursts.")
@click.option(
    "--retry-time-scale",
    type=click.FloatRange(min=0.0, max=1.0),
    default=None,
    help="Fraction of real time the state machine's Retry waits take (default 0.02; 0 skips them).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1.0),
    default=90.0,
    show_default=True,
    help="Give up after this many seconds without a new outcome (progress, not total time: a big run may take longer).",
)
@click.option(
    "--cdk-out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="A cloud assembly to deploy as is (default: .local-run/cdk.out, synthesized when stale).",
)
@click.option(
    "--unused-permissions",
    is_flag=True,
    help="After the summary, list per function role the IAM permissions the template grants that no "
    "call used in this run (every AWS call is checked against the role's policy).",
)
@click.option(
    "--mode",
    type=click.Choice(["server", "in-process"]),
    default=None,
    hidden=True,
    help="moto as a loopback server (default) or in-process (tests).",
)
def command(
    env: str,
    events_file: Path | None,
    count: int,
    seed: int | None,
    as_json: bool,
    keep_running: bool,
    no_faults: bool,
    retry_time_scale: float | None,
    timeout: float,
    cdk_out: Path | None,
    unused_permissions: bool,
    mode: str | None,
) -> None:
    """Run the whole pipeline locally (moto + Genesys simulator) and account for every event.

    Deploys the synthesized stack onto a local AWS emulator, sends a realistic traffic mix
    through the partner bus (several topics, queues inside and outside the filter, the same
    event three times, late and stale events, malformed ones, a Genesys 429 storm and 5xx
    bursts) and follows each event to its outcome. Exit status 0 only when every event sent
    has exactly one outcome: sent = applied + duplicate + filtered + stale + dead-lettered + failed + skipped.
    """
    from gcpipe.local.run import LocalRun, RunnerError, RunOptions

    if keep_running and mode == "in-process":
        raise click.UsageError("--keep-running needs the moto server (other terminals reach it over HTTP)")
    out_stream = sys.stdout  # captured now: the run swaps sys.stdout for the Lambdas' log file
    err = stderr()
    options = RunOptions(
        env=env,
        events_file=events_file,
        count=count,
        seed=seed,
        mode=mode or "server",
        keep_running=keep_running,
        faults=not no_faults,
        timeout=timeout,
        cdk_out=cdk_out,
    )
    if retry_time_scale is not None:
        options.retry_time_scale = retry_time_scale

    def say(message: str) -> None:
        err.print(message, highlight=False)

    run = LocalRun(options, progress_console=err if err.is_terminal or not as_json else None, say=say)

    def ready(active: LocalRun, summary: RunSummary) -> None:  # --keep-running: show, then serve
        _show(summary, as_json, out_stream, unused_permissions)
        assert active.pipeline is not None and active.sim is not None  # the run is up: both started
        state_file = options.run_dir / "endpoints.json"
        say("")
        say(
            f"[bold]kept running[/]: AWS emulator {active.pipeline.endpoint_url}, Genesys simulator {active.sim.base_url}"
        )
        say(f"state file {state_file}: from another terminal, e.g.")
        say("  gcpipe --local failures --since 1h")
        say("  gcpipe --local send --generate 100")
        say("  gcpipe --local dlq show")
        say("  gcpipe --local genesys writes")
        say("  gcpipe --local genesys sync-filter [--apply]   # the simulator's integration drifts from cdk.json")
        say(
            "Ctrl-C to stop: the first drains what is queued or running, a second stops at once. "
            "Locally nothing is durable: events not finished when the stack stops are lost."
        )
        shutdown.append(active.serve_until_stopped(state_file))
        say("stopped.")

    shutdown: list = []
    try:
        summary = run.run(on_ready=ready if keep_running else None)
    except RunnerError as exc:
        raise click.ClickException(str(exc)) from None
    if not keep_running:
        _show(summary, as_json, out_stream, unused_permissions)
    if not summary.ok:
        missing = len(summary.accounting.unaccounted)
        reasons = []
        if missing:
            reasons.append(f"{missing} event(s) without an outcome")
        if summary.accounting.over_accounted:
            reasons.append(f"{len(summary.accounting.over_accounted)} dedup key(s) with more outcomes than events")
        if summary.input_problems:
            reasons.append(
                f"{len(summary.input_problems)} input line(s) not sent: "
                + "; ".join(str(p) for p in summary.input_problems[:5])
            )
        if summary.send_errors:
            reasons.append(f"{len(summary.send_errors)} event(s) could not be sent")
        if summary.timed_out:
            reasons.append(
                f"stopped waiting after {options.timeout:.0f} s without a new outcome "
                "(see the note above: not known to be lost)"
            )
        click.echo("gcpipe local run: " + "; ".join(reasons), err=True)
        sys.exit(EXIT_NOT_ACCOUNTED)
    if shutdown and shutdown[0].dropped:
        click.echo(
            f"gcpipe local run: stopped at once, {len(shutdown[0].dropped)} accepted event(s) dropped "
            f"(ids in {shutdown[0].dropped_file})",
            err=True,
        )
        sys.exit(EXIT_NOT_ACCOUNTED)


def _show(summary: RunSummary, as_json: bool, stream: TextIO, unused_permissions: bool = False) -> None:
    from rich.console import Console

    from gcpipe.local.run.report import render_permissions, render_summary

    if as_json:
        import json

        stream.write(json.dumps(summary.as_json(), indent=2, default=str) + "\n")
        stream.flush()
        return
    console = Console(file=stream, soft_wrap=False, width=None if stream.isatty() else 160)
    render_summary(summary, console)
    render_permissions(summary, console, unused=unused_permissions)


__all__ = ["command"]
