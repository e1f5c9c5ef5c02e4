"""The local stack's Genesys EventBridge integration (gcpipe.local.integration) and `gcpipe --local genesys sync-filter`.

The simulator holds the integration the partner source came from, with a filter that drifts from
cdk.json; the CLI (the real entry point, in-process on the same moto) shows the diff, --apply fixes
it, a second --apply changes nothing, and the operator's own client does it.
"""

from __future__ import annotations

import json

from click.testing import CliRunner

from gcpipe.cli import cli
from gcpipe.local.integration import FEEDBACK_TOPIC, drifted_filter, integration_id_for, seed_integration
from gcpipe.ops.target import LocalState


def sync(e2e, integration_id, *args):
    obj = {
        "in_process": True,
        "outputs": e2e.pipeline.outputs,
        "genesys_base_url": e2e.sim.base_url,
        "genesys_integration_id": integration_id,
    }
    return CliRunner().invoke(
        cli, ["--local", "--env", "dev", "genesys", "sync-filter", *args], obj=obj, catch_exceptions=False
    )


def test_the_seeded_integration_drifts_and_sync_filter_fixes_it_once(e2e):
    seeded = seed_integration(e2e.sim, e2e.pipeline)
    topics = list(e2e.config.topics)
    assert seeded.integration_id == integration_id_for("GenesysEvents-dev")
    assert sorted(seeded.expected_topics) == sorted(topics)
    held = e2e.sim.integration(seeded.integration_id)
    assert held["properties"]["eventSourceSuffix"] == e2e.config.bus_name.rsplit("/", 1)[-1]
    assert held["properties"]["awsAccountRegion"] == e2e.pipeline.region
    assert held["properties"]["eventFilter"] == drifted_filter(seeded.expected_topics)

    # The Lambdas' client is not used (least privilege): make its secret useless.
    e2e.pipeline.client("secretsmanager").put_secret_value(
        SecretId=e2e.pipeline.outputs["GenesysSecretName"], SecretString="{}"
    )
    fetches = e2e.sim.token_fetches
    shown = sync(e2e, seeded.integration_id, "--json")
    assert shown.exit_code == 0, shown.output
    diff = json.loads(shown.output)
    assert diff["to_add"] == [seeded.expected_topics[-1]] and diff["to_remove"] == [FEEDBACK_TOPIC]
    assert diff["applied"] is False

    applied = sync(e2e, seeded.integration_id, "--apply")
    assert applied.exit_code == 0, applied.output
    assert "applied: eventFilter now has" in applied.output
    assert sorted(e2e.sim.integration(seeded.integration_id)["properties"]["eventFilter"]) == sorted(topics)

    again = sync(e2e, seeded.integration_id, "--apply", "--json")
    assert json.loads(again.output)["in_sync"] is True and json.loads(again.output)["applied"] is False
    assert e2e.sim.integration(seeded.integration_id)["version"] == 2  # one write in all
    assert e2e.sim.token_fetches == fetches + 1  # the operator client's one token, cached across the three runs


def test_the_operator_secret_holds_a_client_of_its_own(e2e):
    seeded = seed_integration(e2e.sim, e2e.pipeline)
    secrets = e2e.pipeline.client("secretsmanager")
    operator = json.loads(
        secrets.get_secret_value(SecretId=e2e.pipeline.outputs["GenesysOperatorSecretName"])["SecretString"]
    )
    runtime = json.loads(secrets.get_secret_value(SecretId=e2e.pipeline.outputs["GenesysSecretName"])["SecretString"])
    assert operator["client_id"] == seeded.operator_client_id != runtime["client_id"]


def test_the_state_file_carries_the_integration_id(tmp_path):
    path = tmp_path / "endpoints.json"
    LocalState(aws_endpoint="http://127.0.0.1:1", genesys_integration_id="abc").write(path)
    assert LocalState.read(path).genesys_integration_id == "abc"


def test_the_drift_is_one_topic_missing_and_the_feedback_topic_added():
    a, b = "v2.detail.events.conversation.{id}.acd.end", "v2.detail.events.conversation.{id}.customer.end"
    assert drifted_filter([a, b]) == [a, FEEDBACK_TOPIC]
    assert drifted_filter([a]) == [FEEDBACK_TOPIC]
