"""gcpipe genesys sync-filter against the Genesys simulator (or its documented-API stand-in)."""

from __future__ import annotations

import json

import pytest
import requests

from gcpipe import traffic
from gcpipe.cli import cli
from genesys_pipeline.genesys import GenesysClient

from .conftest import ACD_END, CUSTOMER_END, OPERATOR_SECRET

INTEGRATION = "4a3b2c1d-0000-4000-8000-000000000001"
FLOW_END = traffic.topic_template("flow.end")


@pytest.fixture
def integration(genesys_sim):
    genesys_sim.add_integration(
        INTEGRATION,
        {
            "name": "contact-center-events",
            "version": 3,
            "properties": {
                "eventSourceSuffix": "contact-center-events",
                "awsAccountId": "123456789012",
                "awsAccountRegion": "us-east-1",
                "eventFilter": [ACD_END, FLOW_END],
            },
            "advanced": {},
            "notes": "",
            "credentials": {},
        },
    )
    return genesys_sim


def current_config(sim) -> dict:
    token = requests.post(
        f"{sim.base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(OPERATOR_SECRET["client_id"], OPERATOR_SECRET["client_secret"]),
        timeout=5,
    ).json()["access_token"]
    return requests.get(
        f"{sim.base_url}/api/v2/integrations/{INTEGRATION}/config/current",
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    ).json()


def run(env, sim, *extra):
    return env.invoke(
        "genesys", "sync-filter", "--integration-id", INTEGRATION, *extra, obj={"genesys_base_url": sim.base_url}
    )


def test_dry_run_shows_the_difference_and_writes_nothing(env, integration):
    result = run(env, integration, "--json")
    assert result.exit_code == 0, result.output
    diff = json.loads(result.output)
    assert diff["to_add"] == [CUSTOMER_END] and diff["to_remove"] == [FLOW_END]
    assert diff["applied"] is False and diff["in_sync"] is False
    assert current_config(integration)["properties"]["eventFilter"] == [ACD_END, FLOW_END]
    human = run(env, integration)
    assert "re-run with --apply" in human.output and "customer.end" in human.output


def test_apply_then_second_run_changes_nothing(env, integration):
    applied = json.loads(run(env, integration, "--apply", "--json").output)
    assert applied["applied"] is True and applied["new_version"] == 4
    config = current_config(integration)
    assert config["properties"]["eventFilter"] == [ACD_END, CUSTOMER_END]
    assert config["properties"]["eventSourceSuffix"] == "contact-center-events"  # the rest is kept

    again = run(env, integration, "--apply")
    assert again.exit_code == 0 and "in sync: nothing to change" in again.output
    assert current_config(integration)["version"] == 4  # no second write


def test_concurrent_edit_gets_a_retry_message_not_an_overwrite(env, integration, monkeypatch):
    real_get = GenesysClient.get_integration_config

    def get_then_someone_else_writes(self, integration_id):
        config = real_get(self, integration_id)
        other = json.loads(json.dumps(config))
        other["properties"]["eventFilter"] = [ACD_END, FLOW_END, traffic.topic_template("acw")]
        self.put_integration_config(integration_id, other)  # Genesys Admin, in between
        return config

    monkeypatch.setattr(GenesysClient, "get_integration_config", get_then_someone_else_writes)
    result = run(env, integration, "--apply")

    assert result.exit_code == 1
    assert "changed by someone else" in result.output and "Re-run" in result.output
    assert "Traceback" not in result.output
    assert current_config(integration)["properties"]["eventFilter"] == [
        ACD_END,
        FLOW_END,
        traffic.topic_template("acw"),
    ]


def test_it_uses_the_operator_client_never_the_lambdas_one(env, integration):
    # The runtime secret is unusable: sync-filter must not need it.
    env.client("secretsmanager").put_secret_value(SecretId="genesys-test", SecretString="not even json")
    fetched = integration.token_fetches
    result = run(env, integration, "--apply", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["applied"] is True
    assert integration.token_fetches == fetched + 1


def test_operator_secret_option_overrides_the_stack_output(env, integration):
    env.client("secretsmanager").create_secret(Name="ops/another", SecretString=json.dumps(OPERATOR_SECRET))
    env.client("secretsmanager").put_secret_value(
        SecretId="genesys-test-operator", SecretString=json.dumps({"client_id": "x", "client_secret": "y"})
    )
    assert run(env, integration, "--operator-secret", "ops/another").exit_code == 0


def test_rotated_credentials_get_a_clear_message(env, integration):
    env.client("secretsmanager").put_secret_value(
        SecretId="genesys-test-operator", SecretString=json.dumps({"client_id": "old", "client_secret": "old"})
    )
    result = run(env, integration)
    assert result.exit_code == 1 and "were the credentials rotated" in result.output
    assert "genesys-test-operator" in result.output and "Traceback" not in result.output
    assert OPERATOR_SECRET["client_secret"] not in result.output


def test_unknown_integration_is_one_line(env, integration):
    result = env.invoke(
        "genesys",
        "sync-filter",
        "--integration-id",
        "no-such-integration",
        obj={"genesys_base_url": integration.base_url},
    )
    assert result.exit_code == 1 and "integration no-such-integration not found" in result.output
    assert "Traceback" not in result.output


def test_forbidden_names_the_permissions_the_operator_client_needs(env, integration):
    integration.fail_next(1, status=403)
    result = run(env, integration)
    assert result.exit_code == 1
    assert "integrations:integration:view and integrations:integration:edit" in result.output


def test_without_an_operator_secret_it_says_how_to_configure_one(env, integration):
    outputs = {k: v for k, v in env.outputs.items() if k != "GenesysOperatorSecretName"}
    result = env.runner.invoke(
        cli,
        ["--local", "--env", "test", "genesys", "sync-filter", "--integration-id", INTEGRATION],
        obj={"in_process": True, "outputs": outputs, "genesys_base_url": integration.base_url},
    )
    assert result.exit_code == 1
    assert "no output GenesysOperatorSecretName: set operatorSecretName in cdk.json" in result.output
    assert "--operator-secret" in result.output


def test_integration_id_is_required_outside_the_local_stack_state(env, integration):
    result = env.invoke("genesys", "sync-filter", obj={"genesys_base_url": integration.base_url})
    assert result.exit_code == 2 and "missing --integration-id" in result.output
    given = env.invoke(
        "genesys",
        "sync-filter",
        "--json",
        obj={"genesys_base_url": integration.base_url, "genesys_integration_id": INTEGRATION},
    )
    assert given.exit_code == 0 and json.loads(given.output)["integration_id"] == INTEGRATION
