"""``LocalPipeline``: the stack of one environment, deployed from its synthesized template onto moto.

    from gcpipe.local import LocalPipeline
    from gcpipe.local.deploy import GenesysEndpoint

    genesys = GenesysEndpoint(sim.base_url, "client-id", "client-secret")
    with LocalPipeline(env="dev", genesys=genesys) as pipeline:     # in-process (mock_aws)
        pipeline.put_events([sample_envelope])                       # as Genesys would (PutPartnerEvents)
        pipeline.drain()                                             # tests: synchronous, deterministic
        pipeline.state().idle                                        # queues, executions, async work: a snapshot
        [execution] = pipeline.executions()
        pipeline.outputs["MainQueueUrl"]; pipeline.client("sqs"); pipeline.functions["DispatcherFunctionName"]

    with LocalPipeline(env="dev", genesys=genesys, mode="server", retry_time_scale=1.0) as pipeline:
        pipeline.start_pollers()                                     # the demo: background pollers
        pipeline.endpoint_url                                        # http://127.0.0.1:<port>
        pipeline.wait_until_idle(30)

Modes:
- ``in-process``: ``mock_aws``. Every boto3 client of the process (the
  handlers' too) talks to moto.
- ``server``: moto's server (``moto_server.MotoServer``) on 127.0.0.1 (ephemeral port),
  ``MOTO_PORT`` set to it (moto's Step Functions interpreter calls Lambda
  there), and ``AWS_ENDPOINT_URL`` set so this process's own boto3 clients
  reach it too. Other processes (the CLI with ``--local``) use
  ``endpoint_url`` / the state file (``write_state_file``).

In both modes the functions run in their own worker processes (lambda_runtime), which reach the
emulator over HTTP: the server's endpoint, or (in-process) a moto server the runtime starts in this
process over the same backends. Each function's role policy from the template is registered with the
runtime, which checks every AWS call of its workers against it. The adapters patch moto's classes in
this process: one LocalPipeline per process at a time.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, cast
from unittest import mock

import boto3

from .. import PROJECT_ROOT
from ..names import stack_name
from ..sending import EventSender
from . import MOTO_CONFIG, install_adapters, remove_adapters
from .deploy import DeployedStack, GenesysEndpoint, TemplateDeployer, TemplateError, ensure_secret
from .iam import PermissionUse, RolePolicy, event_source_denial
from .lambda_runtime import RUNTIME
from .moto_server import MotoServer
from .sqs_poller import SqsEventSourcePoller, SqsMappingConfig, move_messages
from .stepfunctions import RETRY_CLOCK, STATUS_EVENTS, LocalReplay, replay_execution
from .template import CloudAssembly

if TYPE_CHECKING:
    from moto.core.config import DefaultConfig

LOG = logging.getLogger(__name__)

DEFAULT_ACCOUNT = "123456789012"  # moto's default account
DEFAULT_REGION = "us-east-1"
# Dummy credentials: moto never sees real keys, and a real profile never talks to moto.
_LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_SESSION_TOKEN": "local"}
_QUIET_LOGGERS = ("moto.stepfunctions.parser.asl.component.eval_component", "werkzeug")


@dataclass(frozen=True)
class QueueState:
    """One queue a poller (an event source mapping) reads, as SQS counts it, and whether a batch of it is
    being processed."""

    url: str
    visible: int
    in_flight: int  # received and not deleted yet (ApproximateNumberOfMessagesNotVisible)
    delayed: int  # held back by DelaySeconds: the request budget's deferrals
    polling: bool  # its poller has a batch in progress

    @property
    def empty(self) -> bool:
        return not (self.visible or self.in_flight or self.delayed or self.polling)


@dataclass(frozen=True)
class PipelineState:
    """What the pipeline still has to do, at one moment: the queues, the running executions, and the
    asynchronous work not yet delivered (Event invocations, status-change events)."""

    queues: tuple[QueueState, ...]
    running_executions: int
    pending_async: int

    @property
    def visible(self) -> int:
        return sum(q.visible for q in self.queues)

    @property
    def in_flight(self) -> int:
        return sum(q.in_flight for q in self.queues)

    @property
    def delayed(self) -> int:
        return sum(q.delayed for q in self.queues)

    @property
    def settled(self) -> bool:
        """No execution runs and no asynchronous delivery is pending (the queues aside)."""
        return not self.running_executions and not self.pending_async

    @property
    def idle(self) -> bool:
        """Nothing queued, delayed, in flight, being polled, running or pending: no outcome is still to come."""
        return self.settled and all(q.empty for q in self.queues)

    @property
    def stuck_in_flight(self) -> bool:
        """Only records left in flight (or delayed) remain: what a failed dispatch leaves until its visibility
        timeout, which the local run fast-forwards (``expire_in_flight``)."""
        moving = any(q.visible or q.polling for q in self.queues)
        return not moving and bool(self.in_flight + self.delayed) and self.settled

    def queue(self, url: str) -> QueueState:
        return next(q for q in self.queues if q.url == url)


class LocalPipeline:
    def __init__(
        self,
        env: str = "dev",
        *,
        genesys: GenesysEndpoint | None = None,
        cdk_out: str | Path | None = None,
        mode: str = "in-process",
        region: str | None = None,
        retry_time_scale: float = 0.0,
        parameters: dict[str, Any] | None = None,
        quiet_moto: bool = True,
    ):
        if mode not in ("in-process", "server"):
            raise ValueError("mode must be 'in-process' or 'server'")
        self.env = env
        self.stack_name = stack_name(env)
        self.genesys = genesys
        self.cdk_out = Path(cdk_out) if cdk_out else PROJECT_ROOT / "cdk.out"
        self.mode = mode
        self.retry_time_scale = retry_time_scale
        self.parameters = parameters
        self.quiet_moto = quiet_moto
        self.assembly = CloudAssembly.load(self.cdk_out, self.stack_name)
        pinned_account, pinned_region = self._template_environment()
        # moto answers as the template's account, so ARNs written into the template match.
        self.account_id = pinned_account or DEFAULT_ACCOUNT
        self.region = region or pinned_region or DEFAULT_REGION
        self.endpoint_url: str | None = None
        self.stack: DeployedStack | None = None
        self.pollers: list[SqsEventSourcePoller] = []
        self._mock: Any = None
        self._server: Any = None
        self._patches: list[Any] = []
        self._session: boto3.Session | None = None
        self._clients: dict[str, Any] = {}
        self._role_policies: dict[str, RolePolicy] = {}  # function name -> its role's resolved policy
        self._started = False

    def _template_environment(self) -> tuple[str | None, str | None]:
        """(account, region) the template is pinned to, read from the CDK asset bucket it names
        (``cdk-<qualifier>-assets-<account>-<region>``); (None, None) for an environment-agnostic one."""
        match = re.search(r'"cdk-[a-z0-9]+-assets-(\d{12})-([a-z0-9-]+)"', json.dumps(self.assembly.template))
        return (match.group(1), match.group(2)) if match else (None, None)

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> "LocalPipeline":
        if self._started:
            return self
        self._start_emulator()
        try:
            install_adapters()
            RUNTIME.reset()
            RETRY_CLOCK.scale = self.retry_time_scale
            RETRY_CLOCK.requested.clear()
            RETRY_CLOCK.slept.clear()
            STATUS_EVENTS.enabled = True
            STATUS_EVENTS.emitted.clear()
            if self.quiet_moto:
                for name in _QUIET_LOGGERS:
                    logging.getLogger(name).setLevel(logging.CRITICAL)
            self._deploy()
            self._started = True
        except BaseException:
            self._stop_emulator()
            raise
        return self

    def _start_emulator(self) -> None:
        env_patch = mock.patch.dict(os.environ, {"AWS_DEFAULT_REGION": self.region, "MOTO_ACCOUNT_ID": self.account_id})
        env_patch.start()
        self._patches.append(env_patch)
        if self.mode == "in-process":
            from moto import mock_aws

            self._mock = mock_aws(config=cast("DefaultConfig", MOTO_CONFIG))  # the keys moto's config has
            self._mock.start()
            self._session = boto3.Session(region_name=self.region)
            return
        from moto.core.config import default_user_config

        config_patch = mock.patch.dict(default_user_config, MOTO_CONFIG)
        config_patch.start()
        self._patches.append(config_patch)
        self._server = MotoServer()
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        server_env = dict(_LOCAL_CREDENTIALS)
        server_env.update({"MOTO_PORT": str(port), "AWS_ENDPOINT_URL": self.endpoint_url})
        env = mock.patch.dict(os.environ, server_env)
        env.start()
        self._patches.append(env)
        self._session = boto3.Session(region_name=self.region, **{k.lower(): v for k, v in _LOCAL_CREDENTIALS.items()})

    def _deploy(self) -> None:
        deployer = TemplateDeployer(
            self.session,
            self.assembly,
            account_id=self.account_id,
            region=self.region,
            genesys=self.genesys,
            parameters=self.parameters,
            register_code_dir=RUNTIME.register_code_dir,
            endpoint_url=self.endpoint_url,
        )
        if self.genesys:
            # A secret the template only names (created out of band on AWS) is created here.
            for name in deployer._genesys_secret_names() | ({self._named_secret()} - {None}):
                if name and not any(
                    r.type == "AWS::SecretsManager::Secret" and r.properties.get("Name") == name
                    for r in deployer.resources.values()
                ):
                    ensure_secret(self.session, self.region, name, self.genesys, self.endpoint_url)
        self.stack = deployer.deploy()
        if self.endpoint_url:
            RUNTIME.aws_endpoint = self.endpoint_url
        self._register_role_policies()
        self.pollers = self._make_pollers()

    def _register_role_policies(self) -> None:
        """Every function's calls are checked against its role's policy, as the template grants it."""
        assert self.stack is not None
        secrets = {
            s["Name"]: s["ARN"]
            for page in self.client("secretsmanager").get_paginator("list_secrets").paginate()
            for s in page.get("SecretList", [])
        }
        for fn in self.stack.of_type("AWS::Lambda::Function"):
            policy = RolePolicy.for_function(
                self.stack, fn.ref, account_id=self.account_id, region=self.region, secret_arns=secrets
            )
            self._role_policies[fn.ref] = policy
            RUNTIME.set_role_policy(fn.ref, policy)

    def _named_secret(self) -> str | None:
        out = (self.assembly.template.get("Outputs") or {}).get("GenesysSecretName", {}).get("Value")
        return out if isinstance(out, str) else None

    def _make_pollers(self) -> list[SqsEventSourcePoller]:
        lam, sqs = self.client("lambda"), self.client("sqs")
        pollers = []
        for mapping in lam.list_event_source_mappings().get("EventSourceMappings", []):
            arn = mapping["EventSourceArn"]
            if ":sqs:" not in arn:
                continue
            function_name = mapping["FunctionArn"].rsplit(":", 1)[1]
            denial = event_source_denial(self._role_policies[function_name], arn)
            if denial:  # CreateEventSourceMapping refuses it on AWS, so the deploy fails there
                raise TemplateError(f"could not map {arn} to {function_name}: {denial}")
            queue_name = arn.rsplit(":", 1)[1]
            url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
            config = SqsMappingConfig.from_mapping(mapping, url)
            pollers.append(SqsEventSourcePoller(config, sqs, lam, self.region))
        return pollers

    def stop(self) -> None:
        for p in self.pollers:
            p.stop()
        self.pollers = []
        RUNTIME.wait_for_async(5)
        self._stop_emulator()
        RUNTIME.reset()  # the next pipeline's functions start cold
        self._started = False

    def _stop_emulator(self) -> None:
        try:
            if self._server is not None:
                self._server.stop()
            if self._mock is not None:
                self._mock.stop()
        finally:
            self._server = self._mock = None
            remove_adapters()
            for p in reversed(self._patches):
                p.stop()
            self._patches = []
            self._clients = {}

    def __enter__(self) -> "LocalPipeline":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- access ---------------------------------------------------------------------------
    @property
    def session(self) -> boto3.Session:
        assert self._session is not None, "start() first"
        return self._session

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(
                service, region_name=self.region, endpoint_url=self.endpoint_url
            )
        return self._clients[service]

    @property
    def outputs(self) -> dict[str, str]:
        assert self.stack is not None, "start() first"
        return dict(self.stack.outputs)

    @property
    def functions(self) -> dict[str, dict[str, Any]]:
        """Function configuration (GetFunctionConfiguration) by output key, e.g. ``functions["DispatcherFunctionName"]``."""
        lam = self.client("lambda")
        return {
            key: lam.get_function_configuration(FunctionName=name)
            for key, name in self.outputs.items()
            if key.endswith("FunctionName")
        }

    @property
    def permissions(self) -> PermissionUse:
        """The IAM decisions the functions' AWS calls got, per role (denied calls, grants never used)."""
        return RUNTIME.permissions

    @property
    def poller(self) -> SqsEventSourcePoller:
        """The poller of the main queue (the dispatcher's event source mapping)."""
        main = self.outputs.get("MainQueueArn")
        for p in self.pollers:
            if p.config.queue_arn == main:
                return p
        return self.pollers[0]

    # -- driving --------------------------------------------------------------------------
    def put_events(self, events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Put events on the partner bus as Genesys does (PutPartnerEvents), 10 per call.

        Each item is an EventBridge envelope (like tests/fixtures/events) or a
        PutEvents entry (Source/DetailType/Detail); an entry without a Source gets the bus's.
        Returns the result entries.
        """
        sender = EventSender(events=self.client("events"), bus_source=self.outputs["EventBusName"])
        return sender.put_on_bus_raw(list(events))

    def start_pollers(self) -> None:
        for p in self.pollers:
            p.start()

    def stop_pollers(self, timeout: float = 5.0) -> bool:
        """Stop polling; wait up to ``timeout`` for the batches being processed. True when none is left running."""
        for p in self.pollers:
            p.stop(timeout)
        return not any(p.busy for p in self.pollers)

    def drain(self, timeout: float = 30.0) -> bool:
        """Synchronously poll every queue until the pipeline is idle (records left in flight after a
        failure are not waited for; see ``expire_in_flight``). Returns True when idle."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            progressed = False
            for p in self.pollers:
                progressed |= bool(p.drain())
            if not progressed:
                state = self.state()
                if state.settled and not state.delayed:
                    return True
            if not progressed:
                time.sleep(0.02)
        return False

    def expire_in_flight(self) -> int:
        """Fast-forward the visibility timeout of the records the pollers left after failures."""
        return sum(p.expire_in_flight() for p in self.pollers)

    def state(self) -> PipelineState:
        """A snapshot of the work left: each polled queue's counts, running executions, pending async work."""
        sqs = self.client("sqs")
        polling = {p.config.queue_url: p.busy for p in self.pollers}
        urls = list(polling) + [u for u in (self.outputs.get("MainQueueUrl"),) if u and u not in polling]
        queues = []
        for url in urls:
            a = sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                ],
            )["Attributes"]
            queues.append(
                QueueState(
                    url,
                    int(a["ApproximateNumberOfMessages"]),
                    int(a["ApproximateNumberOfMessagesNotVisible"]),
                    int(a.get("ApproximateNumberOfMessagesDelayed", 0)),
                    polling.get(url, False),
                )
            )
        return PipelineState(
            tuple(queues), len(self.running_executions()), RUNTIME.async_in_flight + STATUS_EVENTS.busy
        )

    def running_executions(self) -> list[dict[str, Any]]:
        """ListExecutions RUNNING of the stack's state machine (every state machine's, before it is known)."""
        sfn = self.client("stepfunctions")
        arn = self.outputs.get("StateMachineArn")
        machines = [arn] if arn else [m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]]
        found: list[dict[str, Any]] = []
        for machine in machines:
            for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine, statusFilter="RUNNING"):
                found.extend(page["executions"])
        return found

    def wait_until_idle(self, timeout: float = 30.0) -> bool:
        """Wait until the source queues are empty (visible and in flight), no execution runs, and no
        asynchronous delivery (status-change event, error logger) is pending. True when idle."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.state().idle:
                return True
            time.sleep(0.05)
        return False

    # -- inspection and operations --------------------------------------------------------
    def executions(self, status: str | None = None) -> list[dict[str, Any]]:
        """DescribeExecution of every execution of the stack's state machine (optionally one status)."""
        sfn = self.client("stepfunctions")
        kwargs: dict[str, Any] = {"stateMachineArn": self.outputs["StateMachineArn"]}
        if status:
            kwargs["statusFilter"] = status
        items = []
        for page in sfn.get_paginator("list_executions").paginate(**kwargs):
            items.extend(page["executions"])
        return [sfn.describe_execution(executionArn=i["executionArn"]) for i in items]

    def replay(self, execution_arn: str) -> LocalReplay:
        """Local stand-in for RedriveExecution: a new execution with the same input (see stepfunctions.py)."""
        return replay_execution(self.client("stepfunctions"), execution_arn)

    def redrive_dead_letters(self, max_messages: int | None = None) -> int:
        """Local StartMessageMoveTask: the DLQ's messages back to the main queue."""
        return move_messages(
            self.client("sqs"), self.outputs["DeadLetterQueueUrl"], self.outputs["MainQueueUrl"], max_messages
        )

    def queue_messages(self, output_key: str) -> list[dict[str, Any]]:
        """Peek at a queue's visible messages (received with visibility 0, so they stay)."""
        resp = self.client("sqs").receive_message(
            QueueUrl=self.outputs[output_key],
            MaxNumberOfMessages=10,
            VisibilityTimeout=0,
            MessageAttributeNames=["All"],
        )
        return resp.get("Messages", [])

    def write_state_file(self, path: str | Path, *, genesys_integration_id: str | None = None) -> None:
        """What ``gcpipe --local`` reads (gcpipe.ops.target.LocalState): endpoint, env, region, outputs
        (and the simulator's EventBridge integration, gcpipe.local.integration)."""
        if self.endpoint_url is None:
            raise RuntimeError("only a server-mode pipeline can be reached from another process")
        data = {"aws_endpoint": self.endpoint_url, "env": self.env, "region": self.region, "outputs": self.outputs}
        if self.genesys:
            data["genesys_base_url"] = self.genesys.base_url
        if genesys_integration_id:
            data["genesys_integration_id"] = genesys_integration_id
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2) + "\n")


__all__ = ["GenesysEndpoint", "LocalPipeline", "PipelineState", "QueueState"]
