"""``gcpipe genesys sync-filter``."""

from __future__ import annotations

import click

from ..ops import genesys_filter as ops
from ._output import emit_json, stdout, table
from .context import CliContext


@click.group()
def genesys() -> None:
    """The Genesys Cloud side of the environment."""


@genesys.command("sync-filter")
@click.option(
    "--integration-id",
    metavar="ID",
    help="The Genesys 'Amazon EventBridge Source' integration id (locally: the simulator's, from the state file).",
)
@click.option("--apply", is_flag=True, help="Write the change (default: show the difference only).")
@click.option(
    "--operator-secret",
    metavar="NAME",
    help="Secrets Manager secret of the operator OAuth client (default: stack output GenesysOperatorSecretName).",
)
@click.option(
    "--genesys-base-url", metavar="URL", help="Genesys base URL serving /oauth/token and /api/v2 (the local simulator)."
)
@click.option(
    "--genesys-domain",
    metavar="DOMAIN",
    help="Genesys domain (e.g. mypurecloud.ie): login.DOMAIN / api.DOMAIN. Default: the processor's settings.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def sync_filter(
    obj: CliContext,
    integration_id: str | None,
    apply: bool,
    operator_secret: str | None,
    genesys_base_url: str | None,
    genesys_domain: str | None,
    as_json: bool,
) -> None:
    """Compare the integration's eventFilter topics with the topics the environment's rule expects
    (its event pattern's detail-type list), and with --apply make them equal.

    Uses the operator OAuth client (secret GenesysOperatorSecretName, or --operator-secret), whose
    role has integrations:integration:view and :edit; the Lambdas' client is never used. The write
    carries the config version that was read: if someone edited the integration in between, Genesys
    answers 409 and nothing is overwritten (exit 1; re-run to diff again). Idempotent: a second
    run finds nothing to change.
    """
    if genesys_base_url and genesys_domain:
        raise click.UsageError("give --genesys-base-url or --genesys-domain, not both")
    missing = (
        "missing --integration-id (Genesys Admin > Integrations > the Amazon EventBridge Source integration; "
        "locally it is in the state file)"
    )
    if not integration_id and not obj.local:
        raise click.UsageError(missing)  # before any AWS call
    target = obj.target
    integration_id = integration_id or target.genesys_integration_id
    if not integration_id:
        raise click.UsageError(missing)
    diff = ops.sync_filter(
        target,
        integration_id,
        apply=apply,
        secret_name=operator_secret,
        base_url=genesys_base_url,
        domain=genesys_domain,
    )
    if as_json:
        emit_json(diff.as_json())
        return
    out = stdout()
    rows = [[t, "keep"] for t in diff.expected if t in diff.current]
    rows += [[t, "add" if not diff.applied else "added"] for t in diff.to_add]
    rows += [[t, "remove" if not diff.applied else "removed"] for t in diff.to_remove]
    out.print(table(f"integration {integration_id} eventFilter (version {diff.version})", ["topic", "change"], rows))
    if diff.in_sync:
        out.print("in sync: nothing to change")
    elif diff.applied:
        out.print(f"applied: eventFilter now has {len(diff.expected)} topic(s) (version {diff.new_version})")
    else:
        out.print(f"{len(diff.to_add)} to add, {len(diff.to_remove)} to remove: re-run with --apply to write")


@genesys.command("writes")
@click.option("--conversation", "conversation_id", metavar="ID", help="Only the writes to this conversation.")
@click.option(
    "--json", "as_json", is_flag=True, help="Machine-readable output: one object per conversation/participant/kind."
)
@click.pass_obj
def writes(obj: CliContext, conversation_id: str | None, as_json: bool) -> None:
    """What the local stack wrote to Genesys (the simulator's record): to which conversation and
    participant, what, and how many times. Local only (--local).

    A write-back happens once per applied event; a count above 1 for one participant means
    several events of that conversation, or a failure mark by the error logger
    (aws_processing_status) next to the write-back. Values pass through the pipeline's redaction.
    """
    from ..ops import genesys_writes as writes_ops

    places = writes_ops.by_place(writes_ops.fetch_writes(obj.target, conversation_id))
    if as_json:
        emit_json([p.as_json() for p in places])
        return
    out = stdout()
    if not places:
        out.print("no writes to Genesys" + (f" for conversation {conversation_id}" if conversation_id else "") + " yet")
        return
    total = sum(p.count for p in places)
    rows = [
        [
            p.conversation_id or "-",
            p.participant_id or "-",
            p.kind,
            p.count,
            p.last,
            ", ".join(f"{k}={v}" for k, v in sorted(p.last_values.items())),
        ]
        for p in places
    ]
    out.print(
        table(
            f"{total} write(s) to {len(places)} place(s)",
            ["conversation", "participant", "what", "times", "last", "last values"],
            rows,
        )
    )
