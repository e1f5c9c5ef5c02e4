"""IAM for the local functions: each AWS API call a function makes is checked against its role's policy.

moto's own IAM enforcement checks actions but not resources (its TODO), so the local runtime evaluates the
synthesized template's policies itself, with the template's ARNs resolved by the deployer:

- ``RolePolicy.for_function(stack, function_name)``: the statements of the function's execution role, from
  the role's inline ``Policies``, every ``AWS::IAM::Policy`` attached to it and the AWS managed policies in
  ``MANAGED_POLICIES``;
- ``RolePolicy.decide(action, resources)``: IAM's evaluation for one identity-based policy set (an explicit
  Deny wins, then any Allow, else the implicit deny), with IAM's wildcards (``*``, ``?``; actions
  case-insensitive). A ``Condition`` is not evaluated locally; the guess is the strict one, so that
  nothing passes here that AWS could refuse: a conditional Allow allows nothing, a conditional Deny denies
  as if unconditional (a call that depends on one is denied locally, visible at once);
- ``call_resources(service, operation, params, ...)``: the resource ARN(s) an API call acts on, as IAM
  sees them (a secret by name is its full ARN, with the random suffix); ``["*"]`` for actions IAM does not
  scope to a resource (``cloudwatch:PutMetricData``) or that are not mapped here.

- ``event_source_denial(policy, queue_arn)``: what the Lambda service checks on the role when an SQS event
  source mapping is created (its pollers then receive and delete with the role): CreateEventSourceMapping
  fails without it, so a local pipeline whose role lacks it does not start.

The check runs in each worker (``iam_guard``); the worker reports every decision, and ``PermissionUse``
lists per role what was granted but never used (``gcpipe local run --unused-permissions``).
"""

from __future__ import annotations

import fnmatch
import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

# AWS managed policies a CDK function role may carry (ManagedPolicyArns), by name: their statements.
MANAGED_POLICIES: dict[str, list[dict[str, Any]]] = {
    "AWSLambdaBasicExecutionRole": [
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "*",
        }
    ],
    "AWSXRayDaemonWriteAccess": [
        {
            "Effect": "Allow",
            "Action": [
                "xray:PutTraceSegments",
                "xray:PutTelemetryRecords",
                "xray:GetSamplingRules",
                "xray:GetSamplingTargets",
                "xray:GetSamplingStatisticSummaries",
            ],
            "Resource": "*",
        }
    ],
}
# Actions the Lambda service itself performs with the function's role (not the function's code): shipping
# logs, active tracing, and the SQS event source mapping's receive/delete. Never "unused" in the report.
SERVICE_ACTIONS = (
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSampling*",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
)
# What CreateEventSourceMapping checks on the function's role for an SQS source ("The provided execution role
# does not have permissions to call ReceiveMessage on SQS"), in the order it names them.
EVENT_SOURCE_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
# botocore's signing name -> IAM's service prefix, where they differ
IAM_PREFIX = {"monitoring": "cloudwatch"}
# API operations that IAM authorizes under another action's name (the Service Authorization Reference lists
# no action of the operation's own name): SQS's batch calls, Lambda's Invoke, S3's reads.
ACTION_OF_OPERATION = {
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "lambda:Invoke": "lambda:InvokeFunction",
    "lambda:InvokeAsync": "lambda:InvokeFunction",
    "s3:HeadObject": "s3:GetObject",
    "s3:ListObjectsV2": "s3:ListBucket",
    "s3:HeadBucket": "s3:ListBucket",
}
# Services whose AccessDenied error code is the query protocol's (the others answer AccessDeniedException)
QUERY_STYLE_DENIAL = {"sqs", "cloudwatch", "s3", "sts", "iam", "sns"}


@dataclass(frozen=True)
class Statement:
    index: int
    effect: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...]
    resources: tuple[str, ...]
    not_resources: tuple[str, ...]
    conditional: bool
    source: str  # the policy it comes from (logical id or managed policy name)

    def applies(self, action: str, resource: str) -> bool:
        if self.conditional and self.effect == "Allow":  # the strict guess (module docstring)
            return False
        if self.actions and not any(_match(p, action, case=False) for p in self.actions):
            return False
        if self.not_actions and any(_match(p, action, case=False) for p in self.not_actions):
            return False
        if self.resources and not any(_match(p, resource) for p in self.resources):
            return False
        if self.not_resources and any(_match(p, resource) for p in self.not_resources):
            return False
        return True

    def grants(self) -> list[tuple[str, str]]:
        return [(a, r) for a in self.actions for r in self.resources] if self.effect == "Allow" else []


@dataclass(frozen=True)
class Decision:
    allowed: bool
    action: str
    resource: str
    statement: int | None  # the statement that decided (None: the implicit deny)


@dataclass(frozen=True)
class RolePolicy:
    """The identity-based policies of one execution role, resolved."""

    role_name: str
    role_arn: str
    statements: tuple[Statement, ...]
    account_id: str
    region: str
    secret_arns: Mapping[str, str] = field(default_factory=dict)  # secret name -> ARN (IAM sees the ARN)

    def decide(self, action: str, resources: Iterable[str]) -> Decision:
        """Every resource must be allowed; the first one denied decides."""
        last = Decision(True, action, "*", None)
        for resource in resources:
            denied = next((s for s in self.statements if s.effect == "Deny" and s.applies(action, resource)), None)
            if denied is not None:
                return Decision(False, action, resource, denied.index)
            allowed = next((s for s in self.statements if s.effect == "Allow" and s.applies(action, resource)), None)
            if allowed is None:
                return Decision(False, action, resource, None)
            last = Decision(True, action, resource, allowed.index)
        return last

    def denial_message(self, decision: Decision, function_name: str) -> str:
        """AWS's wording for an identity-based implicit (or explicit) deny."""
        principal = f"arn:aws:sts::{self.account_id}:assumed-role/{self.role_name}/{function_name}"
        why = (
            "with an explicit deny in an identity-based policy"
            if decision.statement is not None
            else f"because no identity-based policy allows the {decision.action} action"
        )
        return (
            f"User: {principal} is not authorized to perform: {decision.action} on resource: {decision.resource} {why}"
        )

    # -- building and crossing a process boundary -------------------------------------------
    @classmethod
    def for_function(
        cls,
        stack: Any,
        function_name: str,
        *,
        account_id: str,
        region: str,
        secret_arns: Mapping[str, str] | None = None,
    ) -> "RolePolicy":
        """The policy of ``function_name``'s role in a ``deploy.DeployedStack`` (resolved properties)."""
        functions = [r for r in stack.of_type("AWS::Lambda::Function") if r.ref == function_name]
        if not functions:
            raise KeyError(f"{function_name} is not a function of {stack.stack_name}")
        role_arn = functions[0].properties["Role"]
        roles = [r for r in stack.of_type("AWS::IAM::Role") if r.attributes.get("Arn") == role_arn]
        if not roles:  # a role the template does not define (imported): nothing is known to be allowed
            return cls(role_arn.rsplit("/", 1)[-1], role_arn, (), account_id, region, dict(secret_arns or {}))
        role = roles[0]
        docs: list[tuple[str, dict[str, Any]]] = []
        for pol in role.properties.get("Policies", []):
            docs.append((f"{role.logical_id}/{pol.get('PolicyName')}", pol["PolicyDocument"]))
        for pol in stack.of_type("AWS::IAM::Policy"):
            if role.ref in pol.properties.get("Roles", []):
                docs.append((pol.logical_id, pol.properties["PolicyDocument"]))
        for arn in role.properties.get("ManagedPolicyArns", []):
            name = str(arn).rsplit("/", 1)[-1]
            docs.append((name, {"Statement": MANAGED_POLICIES.get(name, [])}))
        statements: list[Statement] = []
        for source, doc in docs:
            raw = doc.get("Statement", [])
            for s in [raw] if isinstance(raw, dict) else raw:
                statements.append(
                    Statement(
                        len(statements),
                        s.get("Effect", "Allow"),
                        _tuple(s.get("Action")),
                        _tuple(s.get("NotAction")),
                        _tuple(s.get("Resource")),
                        _tuple(s.get("NotResource")),
                        bool(s.get("Condition")),
                        source,
                    )
                )
        return cls(role.ref, role_arn, tuple(statements), account_id, region, dict(secret_arns or {}))

    def to_json(self) -> dict[str, Any]:
        return {
            "role_name": self.role_name,
            "role_arn": self.role_arn,
            "account_id": self.account_id,
            "region": self.region,
            "secret_arns": dict(self.secret_arns),
            "statements": [
                {
                    "index": s.index,
                    "effect": s.effect,
                    "actions": s.actions,
                    "not_actions": s.not_actions,
                    "resources": s.resources,
                    "not_resources": s.not_resources,
                    "conditional": s.conditional,
                    "source": s.source,
                }
                for s in self.statements
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "RolePolicy":
        statements = tuple(
            Statement(
                s["index"],
                s["effect"],
                tuple(s["actions"]),
                tuple(s["not_actions"]),
                tuple(s["resources"]),
                tuple(s["not_resources"]),
                s["conditional"],
                s["source"],
            )
            for s in data["statements"]
        )
        return cls(
            data["role_name"],
            data["role_arn"],
            statements,
            data["account_id"],
            data["region"],
            dict(data.get("secret_arns") or {}),
        )

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(self.to_json()))
        return path


def event_source_denial(policy: RolePolicy, queue_arn: str) -> str | None:
    """Lambda's refusal of an SQS event source mapping for a role without the pollers' permissions, or None."""
    for action in EVENT_SOURCE_ACTIONS:
        if not policy.decide(action, [queue_arn]).allowed:
            return (
                f"InvalidParameterValueException: The provided execution role does not have permissions to call "
                f"{action.split(':', 1)[1]} on SQS (role {policy.role_name}, queue {queue_arn})"
            )
    return None


def _tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return tuple(str(v) for v in (value if isinstance(value, list) else [value]))


def _match(pattern: str, value: str, *, case: bool = True) -> bool:
    if pattern == "*":
        return True
    if not case:
        pattern, value = pattern.lower(), value.lower()
    # IAM's wildcards are * and ? only (fnmatch would also read [...]): escape the rest
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


# -- the resource of an API call ----------------------------------------------------------------


def iam_action(signing_name: str, operation: str) -> str:
    """The IAM action an API operation is authorized as (``sqs:SendMessageBatch`` -> ``sqs:SendMessage``)."""
    action = f"{IAM_PREFIX.get(signing_name, signing_name)}:{operation}"
    return ACTION_OF_OPERATION.get(action, action)


def call_resources(action: str, params: Mapping[str, Any], policy: RolePolicy) -> list[str]:
    """The ARN(s) IAM checks ``action`` (``service:Operation``) against, from the call's parameters."""
    service, _, operation = action.partition(":")
    region, account = policy.region, policy.account_id

    def arn(svc: str, resource: str) -> str:
        return f"arn:aws:{svc}:{region}:{account}:{resource}"

    if service == "dynamodb":
        tables = [params["TableName"]] if params.get("TableName") else []
        tables += list((params.get("RequestItems") or {}))
        for item in params.get("TransactItems") or []:
            tables += [op["TableName"] for op in item.values() if isinstance(op, dict) and op.get("TableName")]
        return [t if str(t).startswith("arn:") else arn("dynamodb", f"table/{t}") for t in tables] or ["*"]
    if service == "states":
        for key in ("stateMachineArn", "executionArn", "activityArn"):
            if params.get(key):
                return [params[key]]
        return ["*"]
    if service == "sqs":
        url = params.get("QueueUrl")
        if url:
            parts = str(url).rstrip("/").split("/")
            return [
                f"arn:aws:sqs:{region}:{parts[-2] if len(parts) >= 2 and parts[-2].isdigit() else account}:{parts[-1]}"
            ]
        if params.get("QueueName"):
            return [arn("sqs", params["QueueName"])]
        return ["*"]
    if service == "secretsmanager":
        secret = params.get("SecretId")
        if not secret:
            return ["*"]
        secret = str(secret)
        return [
            secret
            if secret.startswith("arn:")
            else policy.secret_arns.get(secret) or arn("secretsmanager", f"secret:{secret}")
        ]
    if service == "lambda":
        name = params.get("FunctionName")
        if not name:
            return ["*"]
        return [name if str(name).startswith("arn:") else arn("lambda", f"function:{name}")]
    if service == "events" and operation == "PutEvents":
        buses = {e.get("EventBusName") or "default" for e in params.get("Entries") or []}
        return [b if b.startswith("arn:") else arn("events", f"event-bus/{b}") for b in sorted(buses)] or ["*"]
    if service == "logs" and params.get("logGroupName"):
        return [arn("logs", f"log-group:{params['logGroupName']}:*")]
    return ["*"]


def denial_code(action: str) -> str:
    return "AccessDenied" if action.split(":", 1)[0] in QUERY_STYLE_DENIAL else "AccessDeniedException"


# -- what was used --------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnusedGrant:
    role_name: str
    action: str
    resource: str
    source: str


class PermissionUse:
    """Per role: the decisions the functions' calls got, and the grants no call used (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._policies: dict[str, RolePolicy] = {}
        self._used: dict[str, set[tuple[int, str]]] = {}  # role -> (statement, action called)
        self.denied: list[tuple[str, Decision]] = []  # (role, decision), in order

    def register(self, policy: RolePolicy) -> None:
        with self._lock:
            self._policies.setdefault(policy.role_name, policy)
            self._used.setdefault(policy.role_name, set())

    def record(self, role_name: str, decision: Decision) -> None:
        with self._lock:
            if decision.allowed and decision.statement is not None:
                self._used.setdefault(role_name, set()).add((decision.statement, decision.action))
            elif not decision.allowed:
                self.denied.append((role_name, decision))

    def unused(self) -> list[UnusedGrant]:
        """Allow statements' (action, resource) pairs that no call matched, Lambda's own service actions aside."""
        out: list[UnusedGrant] = []
        with self._lock:
            for role, policy in sorted(self._policies.items()):
                used = self._used.get(role, set())
                for s in policy.statements:
                    for action, resource in s.grants():
                        if any(i == s.index and _match(action, called, case=False) for i, called in used):
                            continue
                        if not any(fnmatch.fnmatchcase(action, pattern) for pattern in SERVICE_ACTIONS):
                            out.append(UnusedGrant(role, action, resource, s.source))
        return out

    def reset(self) -> None:
        with self._lock:
            self._policies.clear()
            self._used.clear()
            self.denied.clear()


__all__ = [
    "Decision",
    "PermissionUse",
    "RolePolicy",
    "Statement",
    "UnusedGrant",
    "call_resources",
    "denial_code",
    "event_source_denial",
    "iam_action",
]
