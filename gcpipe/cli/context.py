"""Per-invocation state of the CLI: global options and the lazily resolved Target.

The Target is resolved on first use, once per invocation, so ``--help`` and
usage errors never touch AWS.

Callers that run the CLI in-process (tests with ``mock_aws``, the local
runner) can pass overrides as click's ``obj``::

    CliRunner().invoke(cli, ["--local", "dlq", "show"],
                       obj={"in_process": True, "outputs": {...}, "genesys_base_url": sim.base_url})

``in_process`` means: talk to whatever boto3 reaches with no endpoint (moto's
in-process mock); ``outputs`` skips the CloudFormation lookup.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..ops.target import Target, resolve_target

OVERRIDE_KEYS = ("in_process", "outputs", "genesys_base_url", "genesys_integration_id")


@dataclass
class CliContext:
    env: str | None = None
    local: bool = False
    endpoint_url: str | None = None
    state_file: Path | None = None
    region: str | None = None
    profile: str | None = None
    debug: bool = False
    in_process: bool = False
    outputs: Mapping[str, str] | None = None
    genesys_base_url: str | None = None
    genesys_integration_id: str | None = None
    _target: Target | None = field(default=None, repr=False)

    @classmethod
    def from_overrides(cls, overrides: Any, **options: Any) -> "CliContext":
        extra = {}
        if isinstance(overrides, Mapping):
            unknown = set(overrides) - set(OVERRIDE_KEYS)
            if unknown:
                raise ValueError(f"unknown CLI overrides {sorted(unknown)}; allowed: {OVERRIDE_KEYS}")
            extra = dict(overrides)
        return cls(**options, **extra)

    @property
    def target(self) -> Target:
        if self._target is None:
            if not self.local and not self.env:
                import click

                raise click.UsageError("no environment: pass --env NAME (acts on stack GenesysEvents-NAME), or --local")
            self._target = resolve_target(
                env=self.env,
                local=self.local,
                endpoint_url=self.endpoint_url,
                state_file=self.state_file,
                region=self.region,
                profile=self.profile,
                outputs=self.outputs,
                genesys_base_url=self.genesys_base_url,
                in_process=self.in_process,
                genesys_integration_id=self.genesys_integration_id,
            )
        return self._target
