"""AWS-side fault injection inside a local Lambda worker (the ``GCPIPE_LOCAL_HOOKS`` seam of ``worker.py``).

``install_from_env`` reads the fault plan named by ``GCPIPE_FAULT_PLAN`` (JSON, written by ``gcpipe.chaos.plan``
and passed through ``LambdaRuntime.worker_environment``) and registers a botocore ``before-parameter-build``
handler in every session the function creates (it sees the call's API parameters: ``TableName``, ``QueueUrl``;
``before-call`` sees the serialized request). Nothing is sent for a call that fails here. A rule that fires raises what botocore itself raises for that fault: a
``ClientError`` with the service's error code and HTTP status (throttling, 5xx), or an
``EndpointConnectionError``; so the product's own handling (``genesys_pipeline.aws_faults``, the dispatcher's
partial batch failures) is what meets it. Two more actions: ``crash`` (``os._exit`` before the call: the
process dies mid-invocation, the runtime reports ``Runtime.ExitError``) and ``hang`` (sleep before the call
until the runtime kills the worker at the function's timeout: ``Sandbox.Timedout``).

Plan::

    {"seed": 7, "log": "/path/faults.log", "tokens": "/path/tokens",
     "rules": [{"kind": "idempotency-throttle", "handler": "processor", "service": "dynamodb",
                "operations": ["PutItem", "UpdateItem"], "table_env": "IDEMPOTENCY_TABLE",
                "probability": 0.03, "action": "error", "code": "ProvisionedThroughputExceededException",
                "status": 400, "after": 0, "limit": null}]}

- ``handler``: the function's handler module prefix (``_HANDLER``: ``dispatcher``, ``processor``,
  ``error_logger``); ``service`` and ``operations``: the botocore service and operation names;
- ``table_env`` / ``queue_env``: only calls whose ``TableName`` / ``QueueUrl`` equals that environment variable
  of the function (``queue_env`` may also be ``"*DLQ*"``: a queue URL other than ``MAIN_QUEUE_URL``);
- ``after``: the rule only fires on a call after that many calls of this operation in the same invocation
  (a dispatcher crash after part of its batch's StartExecutions);
- ``limit``: fires at most that many times over the whole run, across every worker (one token file each in
  ``tokens``, created with O_EXCL).

Each fire appends one line (``kind``) to ``log``; the chaos run counts them. Random draws come from a
``random.Random`` seeded by the plan's seed, the function and the worker's pid: reproducible per worker, the
interleaving of workers is the operating system's.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PLAN_VARIABLE = "GCPIPE_FAULT_PLAN"
HANG_SECONDS = 3600.0  # longer than any function timeout: the runtime kills the worker first
ACTIONS = ("error", "connect", "crash", "hang")


@dataclass
class FaultRule:
    kind: str
    handler: str
    service: str
    operations: tuple[str, ...]
    probability: float
    action: str = "error"
    code: str = "InternalServerError"
    status: int = 500
    table_env: str | None = None
    queue_env: str | None = None
    after: int = 0
    limit: int | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "FaultRule":
        action = str(data.get("action", "error"))
        if action not in ACTIONS:
            raise ValueError(f"fault rule {data.get('kind')!r}: action must be one of {', '.join(ACTIONS)}")
        return cls(
            kind=str(data["kind"]),
            handler=str(data["handler"]),
            service=str(data["service"]),
            operations=tuple(data.get("operations") or ()),
            probability=float(data.get("probability", 0.0)),
            action=action,
            code=str(data.get("code", "InternalServerError")),
            status=int(data.get("status", 500)),
            table_env=data.get("table_env"),
            queue_env=data.get("queue_env"),
            after=int(data.get("after", 0)),
            limit=data.get("limit"),
        )


@dataclass
class FaultInjector:
    """The rules of this function, and what they need at call time."""

    rules: list[FaultRule]
    rng: random.Random
    log: Path | None
    tokens: Path | None
    env: dict[str, str]
    _calls: dict[str, int] = field(default_factory=dict)
    _invocation: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _matches(self, rule: FaultRule, service: str, operation: str, params: dict[str, Any]) -> bool:
        if rule.service != service or (rule.operations and operation not in rule.operations):
            return False
        if rule.table_env is not None and params.get("TableName") != self.env.get(rule.table_env):
            return False
        if rule.queue_env is not None:
            url = params.get("QueueUrl")
            if rule.queue_env == "*DLQ*":
                return bool(url) and url != self.env.get("MAIN_QUEUE_URL")
            return url == self.env.get(rule.queue_env)
        return True

    def _take_token(self, rule: FaultRule) -> bool:
        if rule.limit is None:
            return True
        if self.tokens is None:
            return False
        for n in range(int(rule.limit)):
            try:
                fd = os.open(self.tokens / f"{rule.kind}.{n}", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                continue
            os.close(fd)
            return True
        return False

    def _record(self, rule: FaultRule) -> None:
        if self.log is not None:
            with open(self.log, "a", encoding="utf-8") as f:  # one short line: O_APPEND keeps lines whole
                f.write(rule.kind + "\n")

    def choose(self, service: str, operation: str, params: dict[str, Any], invocation: str | None) -> FaultRule | None:
        """The rule that fires for this call, if any (at most one)."""
        with self._lock:
            if invocation != self._invocation:
                self._invocation, self._calls = invocation, {}
            key = f"{service}.{operation}"
            seen = self._calls.get(key, 0)
            self._calls[key] = seen + 1
            for rule in self.rules:
                if not self._matches(rule, service, operation, params) or seen < rule.after:
                    continue
                if self.rng.random() < rule.probability and self._take_token(rule):
                    self._record(rule)
                    return rule
        return None

    def before_call(self, model: Any, params: dict[str, Any], context: Any = None, **_: Any) -> None:
        service = model.service_model.service_name
        invocation = _current_request_id()
        rule = self.choose(service, model.name, params, invocation)
        if rule is None:
            return
        raise_fault(rule, model.name)


def raise_fault(rule: FaultRule, operation: str) -> None:
    """Do what ``rule`` says for a call of ``operation``: raise botocore's error, or crash, or hang."""
    from botocore.exceptions import ClientError, EndpointConnectionError

    if rule.action == "crash":
        os._exit(1)
    if rule.action == "hang":
        time.sleep(HANG_SECONDS)
        return
    if rule.action == "connect":
        raise EndpointConnectionError(endpoint_url=os.environ.get("AWS_ENDPOINT_URL", "https://aws.invalid"))
    raise ClientError(
        {
            "Error": {"Code": rule.code, "Message": f"injected fault: {rule.kind}"},
            "ResponseMetadata": {"HTTPStatusCode": rule.status},
        },
        operation,
    )


def _current_request_id() -> str | None:
    """The invocation this thread serves: a new invocation restarts the per-invocation call counts."""
    return _INVOCATION.get()


class _Invocation:
    """Counts invocations by the handler calls the worker makes (patched in by ``install``)."""

    def __init__(self) -> None:
        self._n = 0

    def next(self) -> None:
        self._n += 1

    def get(self) -> str:
        return str(self._n)


_INVOCATION = _Invocation()


def load_plan(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def injector_for(plan: dict[str, Any], handler: str, env: dict[str, str], *, salt: int = 0) -> FaultInjector | None:
    """The injector of the function whose ``_HANDLER`` is ``handler``; None when no rule is its."""
    module = handler.split(".", 1)[0]
    rules = [FaultRule.from_json(r) for r in plan.get("rules", []) if r.get("handler") == module]
    if not rules:
        return None
    seed = f"{plan.get('seed', 0)}:{module}:{salt}"
    return FaultInjector(
        rules,
        random.Random(seed),
        Path(plan["log"]) if plan.get("log") else None,
        Path(plan["tokens"]) if plan.get("tokens") else None,
        env,
    )


def install_from_env() -> None:
    """The worker hook: install the plan named by ``GCPIPE_FAULT_PLAN`` for this function (no plan: nothing)."""
    path = os.environ.get(PLAN_VARIABLE)
    if not path:
        return
    injector = injector_for(load_plan(path), os.environ.get("_HANDLER", ""), dict(os.environ), salt=os.getpid())
    if injector is None:
        return
    from . import worker

    worker.register_botocore_handler("before-parameter-build.*.*", injector.before_call)
    worker.on_invoke(_INVOCATION.next)


__all__ = [
    "FaultInjector",
    "FaultRule",
    "PLAN_VARIABLE",
    "injector_for",
    "install_from_env",
    "load_plan",
    "raise_fault",
]
