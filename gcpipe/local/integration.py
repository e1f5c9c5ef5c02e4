"""The Genesys EventBridge integration the local partner source came from, held by the simulator.

On Genesys, the partner event source exists because an "Amazon EventBridge Source"
integration (type ``amazon-eventbridge-source``) was set up with the AWS account, the
region, the source suffix and a topic filter (``eventFilter``). The local stack's partner
source gets the same: an integration in the simulator whose properties match the deployed
bus. Its filter deliberately **drifts** from the rule (the last configured topic missing,
``...attributes`` added: a real mistake, the feedback-loop topic), so that
``gcpipe --local genesys sync-filter`` has something to show and ``--apply`` something to fix.

The operator OAuth client is seeded too: a client of its own in the simulator and, when the
stack names one (output ``GenesysOperatorSecretName``), its secret in the local Secrets
Manager, so sync-filter never uses the Lambdas' client here either.
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from gcpipe.ops.rule import topics_from_pattern

from .deploy import GenesysEndpoint, ensure_secret

INTEGRATION_TYPE = "amazon-eventbridge-source"
FEEDBACK_TOPIC = "v2.detail.events.conversation.{id}.attributes"
OPERATOR_SECRET_OUTPUT = "GenesysOperatorSecretName"  # gcpipe.ops.genesys_filter reads the same output


@dataclass(frozen=True)
class LocalIntegration:
    integration_id: str
    expected_topics: list[str]  # the deployed rule's detail-type list
    event_filter: list[str]  # what the integration was seeded with (drifted)
    operator_client_id: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "integration_id": self.integration_id,
            "expected_topics": self.expected_topics,
            "event_filter": self.event_filter,
        }


def integration_id_for(stack_name: str) -> str:
    """Stable per stack, so a README or a script can name it run after run."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"gcpipe-local/{stack_name}/eventbridge-integration"))


def drifted_filter(topics: list[str]) -> list[str]:
    """One topic missing (the last), the feedback-loop ``attributes`` topic added."""
    kept = topics[:-1] if len(topics) > 1 else []
    return [*kept, FEEDBACK_TOPIC]


def seed_integration(sim: Any, pipeline: Any) -> LocalIntegration:
    """Add the integration (and the operator client) for ``pipeline``'s deployed stack to the simulator ``sim``."""
    outputs = pipeline.outputs
    bus = outputs["EventBusName"]
    rule = pipeline.client("events").describe_rule(Name=outputs["EventRuleName"], EventBusName=bus)
    topics = topics_from_pattern(json.loads(rule.get("EventPattern") or "{}"))
    event_filter = drifted_filter(topics)
    suffix = bus.rsplit("/", 1)[-1]
    integration_id = integration_id_for(pipeline.stack_name)
    sim.add_integration(
        integration_id,
        {
            "id": integration_id,
            "name": f"Amazon EventBridge Source ({suffix})",
            "version": 1,
            "properties": {
                "awsAccountId": pipeline.account_id,
                "awsAccountRegion": pipeline.region,
                "eventSourceSuffix": suffix,
                "eventFilter": event_filter,
            },
            "advanced": {},
            "notes": f"integration type {INTEGRATION_TYPE}; seeded by gcpipe local with a filter that drifts from cdk.json",
            "credentials": {},
        },
    )
    operator_client_id = None
    secret_name = outputs.get(OPERATOR_SECRET_OUTPUT)
    if secret_name:
        operator_client_id, operator_secret = f"local-operator-{secrets.token_hex(4)}", secrets.token_urlsafe(24)
        sim.add_client(operator_client_id, operator_secret)
        ensure_secret(
            pipeline.session,
            pipeline.region,
            secret_name,
            GenesysEndpoint(sim.base_url, operator_client_id, operator_secret),
            pipeline.endpoint_url,
        )
    return LocalIntegration(integration_id, topics, event_filter, operator_client_id)


__all__ = ["LocalIntegration", "drifted_filter", "integration_id_for", "seed_integration"]
