"""Target: the environment a command acts on, resolved once per invocation.

A Target is the stack outputs of ``GenesysEvents-<env>`` plus a boto3 session
whose clients point at the right place:

* deployed (``--env prod``): boto3's default credential chain (or
  ``--profile``), outputs read from CloudFormation ``describe_stacks``;
* local (``--local``): the local moto server, found from ``--endpoint-url``,
  ``$GCPIPE_AWS_ENDPOINT`` or the state file the local runner writes
  (``.local-run/endpoints.json``: ``{"aws_endpoint", "genesys_base_url", "env",
  "region"?, "outputs"?}``). Outputs come from the state file when it carries
  them, else from the moto server's own CloudFormation stack. Local sessions
  always use dummy credentials, so a developer's real profile never talks to
  moto (and moto never sees real keys);
* in-process (tests, or the local runner calling the CLI in its own process):
  ``in_process=True`` means "no endpoint: boto3's defaults, which ``mock_aws``
  intercepts".

Commands ask the target for clients (``target.client("sqs")``) and for outputs
by the contract's key names (``target.output("MainQueueUrl")``, see
docs/contracts.md), and branch on ``target.is_local`` only where moto lacks an
API (RedriveExecution, StartMessageMoveTask, TestEventPattern, StartReplay).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import quote

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from .. import PROJECT_ROOT
from ..names import stack_name
from .errors import TargetError

STATE_FILE_RELATIVE = Path(".local-run") / "endpoints.json"
LOCAL_DEFAULT_ENV = "dev"  # the Makefile's `make run` default (ENV ?= dev)
LOCAL_DEFAULT_REGION = "us-east-1"
ENDPOINT_ENV_VAR = "GCPIPE_AWS_ENDPOINT"
ENV_ENV_VAR = "GCPIPE_ENV"

# Standard retry mode retries throttling and 5xx with backoff for every call the
# CLI makes; the per-entry retries of batch APIs are the commands' own job.
_BOTO_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=32)


@dataclass(frozen=True)
class LocalState:
    """What the local runner writes so that ``gcpipe --local`` can find its stack."""

    aws_endpoint: str
    env: str = LOCAL_DEFAULT_ENV
    genesys_base_url: str | None = None
    region: str | None = None
    outputs: dict[str, str] | None = None
    genesys_integration_id: str | None = None  # the simulator's EventBridge integration (gcpipe/local/integration.py)

    @classmethod
    def read(cls, path: Path) -> "LocalState":
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise TargetError(
                f"local state file {path} not found: start the local stack with `gcpipe local run`"
            ) from None
        except (OSError, json.JSONDecodeError) as exc:
            raise TargetError(f"local state file {path} is unreadable: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("aws_endpoint"), str):
            raise TargetError(f"local state file {path} has no aws_endpoint")
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)

    def write(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({k: v for k, v in asdict(self).items() if v is not None}, indent=2) + "\n")

    @staticmethod
    def default_paths() -> list[Path]:
        """Where ``--local`` looks without ``--state-file``: the working directory, then the project root."""
        paths = [Path.cwd() / STATE_FILE_RELATIVE, PROJECT_ROOT / STATE_FILE_RELATIVE]
        return list(dict.fromkeys(p.resolve() for p in paths))


@dataclass
class Target:
    env: str
    region: str
    is_local: bool
    outputs: Mapping[str, str]
    session: boto3.Session
    endpoint_url: str | None = None
    genesys_base_url: str | None = None
    genesys_integration_id: str | None = None  # local only: the simulator's integration, from the state file
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def stack_name(self) -> str:
        return stack_name(self.env)

    @property
    def description(self) -> str:
        where = f"local ({self.endpoint_url or 'in-process'})" if self.is_local else f"AWS {self.region}"
        return f"{self.stack_name} on {where}"

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(
                service, region_name=self.region, endpoint_url=self.endpoint_url, config=_BOTO_CONFIG
            )
        return self._clients[service]

    def output(self, key: str) -> str:
        value = self.outputs.get(key)
        if not value:
            raise TargetError(
                f"stack {self.stack_name} has no output {key!r} (outputs: {', '.join(sorted(self.outputs)) or 'none'})"
            )
        return value

    def execution_console_url(self, execution_arn: str) -> str | None:
        """The Step Functions console page with the Redrive button; none for a local stack."""
        if self.is_local:
            return None
        return (
            f"https://{self.region}.console.aws.amazon.com/states/home?region={self.region}"
            f"#/v2/executions/details/{quote(execution_arn, safe=':')}"
        )


def resolve_target(
    *,
    env: str | None,
    local: bool,
    endpoint_url: str | None = None,
    state_file: Path | None = None,
    region: str | None = None,
    profile: str | None = None,
    outputs: Mapping[str, str] | None = None,
    genesys_base_url: str | None = None,
    in_process: bool = False,
    genesys_integration_id: str | None = None,
) -> Target:
    """Build the Target for one invocation. Raises TargetError with an actionable message."""
    env = env or os.environ.get(ENV_ENV_VAR) or None
    if not local:
        if not env:
            raise TargetError("no environment: pass --env NAME (stack GenesysEvents-NAME) or --local")
        session = boto3.Session(profile_name=profile, region_name=region)
        if not session.region_name:
            raise TargetError("no AWS region: pass --region or configure AWS_REGION / a profile region")
        target = Target(
            env=env,
            region=session.region_name,
            is_local=False,
            outputs={},
            session=session,
            genesys_base_url=genesys_base_url,
        )
    else:
        state = None
        endpoint_url = endpoint_url or os.environ.get(ENDPOINT_ENV_VAR) or None
        if state_file is not None:
            state = LocalState.read(state_file)
        elif not endpoint_url and not in_process:
            for candidate in LocalState.default_paths():
                if candidate.exists():
                    state = LocalState.read(candidate)
                    break
            else:
                raise TargetError(
                    "no local stack found: start it with `gcpipe local run`, or pass --endpoint-url / --state-file "
                    f"(looked for {', '.join(str(p) for p in LocalState.default_paths())})"
                )
        if state is not None:
            endpoint_url = endpoint_url or state.aws_endpoint
            env = env or state.env
            region = region or state.region
            genesys_base_url = genesys_base_url or state.genesys_base_url
            genesys_integration_id = genesys_integration_id or state.genesys_integration_id
            if outputs is None and state.outputs:
                outputs = state.outputs
        region = region or LOCAL_DEFAULT_REGION
        session = boto3.Session(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            aws_session_token="testing",
            region_name=region,
        )
        target = Target(
            env=env or LOCAL_DEFAULT_ENV,
            region=region,
            is_local=True,
            outputs={},
            session=session,
            endpoint_url=None if in_process else endpoint_url,
            genesys_base_url=genesys_base_url,
            genesys_integration_id=genesys_integration_id,
        )
    target.outputs = dict(outputs) if outputs is not None else _stack_outputs(target)
    return target


def _stack_outputs(target: Target) -> dict[str, str]:
    try:
        stacks = target.client("cloudformation").describe_stacks(StackName=target.stack_name)["Stacks"]
    except ClientError as exc:
        message = exc.response.get("Error", {}).get("Message", str(exc))
        if "does not exist" in message:
            raise TargetError(
                f"stack {target.stack_name} not found ({target.description}): check --env and --region"
            ) from None
        raise
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
