"""PII backstop: a CloudWatch Logs data protection policy on every log group of the stack.

In-code redaction (lambdas/genesys_pipeline/redaction.py) stays the first line; this policy masks phone
numbers and e-mail addresses that slip past it (readers without logs:Unmask see them masked) and
audits each finding to a log group of its own, so a leak shows up as a finding to fix in code.

An Aspect applies it, so a log group added later is covered without anyone remembering to.
"""

from __future__ import annotations

from typing import cast

import jsii
from aws_cdk import Aspects, Aws, IAspect
from aws_cdk import aws_logs as logs
from constructs import Construct, IConstruct

from . import constants as C
from .config import EnvironmentConfig
from .function import log_retention, removal_policy

# CloudWatch Logs managed data identifiers (every phone-number locale it offers, and e-mail addresses).
DATA_IDENTIFIERS = (
    "EmailAddress",
    "PhoneNumber-US",
    "PhoneNumber-GB",
    "PhoneNumber-DE",
    "PhoneNumber-FR",
    "PhoneNumber-ES",
    "PhoneNumber-IT",
    "PhoneNumber-BR",
)


def data_protection_policy(stack_name: str, audit_log_group_name: str) -> dict:
    identifiers = [f"arn:{Aws.PARTITION}:dataprotection::aws:data-identifier/{i}" for i in DATA_IDENTIFIERS]
    return {
        "Name": f"{stack_name}-{C.DATA_PROTECTION_POLICY_SUFFIX}",
        "Description": "Mask customer phone numbers and e-mail addresses; audit every finding",
        "Version": "2021-06-01",
        "Statement": [
            {
                "Sid": "audit",
                "DataIdentifier": identifiers,
                "Operation": {"Audit": {"FindingsDestination": {"CloudWatchLogs": {"LogGroup": audit_log_group_name}}}},
            },
            {"Sid": "redact", "DataIdentifier": identifiers, "Operation": {"Deidentify": {"MaskConfig": {}}}},
        ],
    }


@jsii.implements(IAspect)
class _ProtectEveryLogGroup:
    def __init__(self, policy: dict, audit_path: str):
        self._policy = policy
        self._audit_path = audit_path  # by path: jsii hands the aspect new proxies, so `is` cannot tell

    def visit(self, node: IConstruct) -> None:
        # The audit group holds findings (where and which identifier), not the data: it takes no policy,
        # which would also make it audit into itself.
        if (
            isinstance(node, logs.CfnLogGroup)
            and node.node.path != self._audit_path
            and node.data_protection_policy is None
        ):
            node.data_protection_policy = self._policy


class LogDataProtection(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig):
        super().__init__(scope, construct_id)
        self.audit_log_group = logs.LogGroup(
            self,
            "AuditLogGroup",
            log_group_name=f"/genesys-pipeline/{config.stack_name}/data-protection-audit",
            retention=log_retention(config),
            removal_policy=removal_policy(config),
        )
        # By Ref: CloudFormation then creates the audit group before any log group whose policy names it.
        self.policy = data_protection_policy(config.stack_name, self.audit_log_group.log_group_name)
        Aspects.of(scope).add(
            _ProtectEveryLogGroup(
                self.policy, cast(logs.CfnLogGroup, self.audit_log_group.node.default_child).node.path
            )
        )
