"""``gcpipe``: the operator CLI of the Genesys event pipeline.

One CLI for a deployed environment (``--env prod``: boto3's default credential
chain, resources from the stack outputs of ``GenesysEvents-prod``) and for the
local stack (``--local``). Same commands either way.

Exit codes: 0 ok, 1 partial failure (or an AWS/Genesys error, reported on one
line), 2 usage error.

Adding a command: a module in this package defining a click command, imported
and added in ``_register`` below. ``gcpipe local <sub>`` commands are
discovered automatically from ``gcpipe/cli/local_*.py`` (see ``local.py``).
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from typing import Any

import click
import requests
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from ..ops.errors import NotSupportedOnTarget, OperatorError
from .context import CliContext

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE = 0, 1, 2


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        op = getattr(exc, "operation_name", "AWS call")
        return f"AWS {op} failed: {err.get('Code', 'Error')}: {err.get('Message', '')}".rstrip(": ")
    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials found (boto3 default chain): set AWS_PROFILE or pass --profile, or use --local"
    if isinstance(exc, NoRegionError):
        return "no AWS region: pass --region"
    return " ".join(str(exc).split()) or type(exc).__name__


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gcpipe")
    except PackageNotFoundError:  # running from a checkout without `pip install -e .`
        return "0.1.0+checkout"


class OperatorGroup(click.Group):
    """Turns expected failures into click errors: one line, the right exit code, no traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NotSupportedOnTarget as exc:
            raise click.UsageError(str(exc), ctx) from None
        except (OperatorError, ClientError, BotoCoreError, requests.RequestException) as exc:
            obj = ctx.find_object(CliContext)
            if obj is not None and obj.debug:
                raise
            raise click.ClickException(_one_line(exc)) from None


@click.group(
    name="gcpipe", cls=OperatorGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.option(
    "--env",
    "env",
    metavar="NAME",
    envvar="GCPIPE_ENV",
    help="Deployed environment: acts on stack GenesysEvents-NAME. With --local, defaults to the local state file's env.",
)
@click.option(
    "--local", "local", is_flag=True, help="Act on the local stack (moto + Genesys simulator) instead of AWS."
)
@click.option(
    "--endpoint-url",
    metavar="URL",
    envvar="GCPIPE_AWS_ENDPOINT",
    help="Local moto server endpoint (implies --local). Default: from the local state file.",
)
@click.option(
    "--state-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Local runner state file (default: .local-run/endpoints.json in the working directory or project root).",
)
@click.option("--region", metavar="REGION", help="AWS region (default: from the profile / AWS_REGION).")
@click.option("--profile", metavar="PROFILE", help="AWS profile (default: boto3's default credential chain).")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(version=_version(), prog_name="gcpipe")
@click.pass_context
def cli(
    ctx: click.Context,
    env: str | None,
    local: bool,
    endpoint_url: str | None,
    state_file: Path | None,
    region: str | None,
    profile: str | None,
    debug: bool,
) -> None:
    """Operate the Genesys Cloud event pipeline: inject events, inspect and redrive failures,
    replay dead letters and archives, keep the Genesys topic filter in sync.

    \b
    Examples:
      gcpipe --env prod failures --since 24h
      gcpipe --env prod redrive --all-failed --since 2h --dry-run
      gcpipe --local send --generate 1000
      gcpipe --env staging dlq show
    """
    local = local or bool(endpoint_url) or bool(state_file)
    if local and profile:
        raise click.UsageError("--profile applies to AWS; the local stack uses dummy credentials", ctx)
    ctx.obj = CliContext.from_overrides(
        ctx.obj,
        env=env,
        local=local,
        endpoint_url=endpoint_url,
        state_file=state_file,
        region=region,
        profile=profile,
        debug=debug,
    )


def _register() -> None:
    from .archive import archive
    from .dlq import dlq
    from .executions import failures, redrive
    from .genesys import genesys
    from .local import local
    from .send import send

    for command in (send, failures, redrive, dlq, archive, genesys, local):
        cli.add_command(command)


_register()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``gcpipe = gcpipe.cli:main``)."""
    try:
        cli.main(args=argv, prog_name="gcpipe")
    finally:
        # The interpreter's exit collects every object several times over: after `gcpipe local run`, moto's
        # ~270,000 take 0.7 s. Frozen objects are skipped, and the process's memory goes back to the OS at once.
        gc.freeze()


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
