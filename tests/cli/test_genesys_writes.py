"""gcpipe --local genesys writes: what was written to (simulated) Genesys, read from the simulator's
/sim/writes endpoint while the stack runs (issue 14, defect 3)."""

from __future__ import annotations

import json

import requests
from click.testing import CliRunner

from gcpipe.cli import cli

CONV_A, CONV_B = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
AGENT, CUSTOMER = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa", "cccccccc-cccc-4ccc-8ccc-cccccccccccc"


def _write(sim, conversation: str, participant: str, attributes: dict) -> None:
    token = requests.post(
        f"{sim.base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(sim.client_id, sim.client_secret),
        timeout=5,
    ).json()["access_token"]
    response = requests.patch(
        f"{sim.base_url}/api/v2/conversations/{conversation}/participants/{participant}/attributes",
        json={"attributes": attributes},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert response.status_code == 202


def _invoke(sim, *args: str):
    return CliRunner().invoke(
        cli,
        ["--local", "--env", "test", "genesys", "writes", *args],
        obj={"in_process": True, "outputs": {}, "genesys_base_url": sim.base_url},
        catch_exceptions=False,
    )


def test_writes_are_listed_by_conversation_and_participant_with_how_many_times(genesys_sim):
    # Given a write-back to one participant, a second write (a failure mark) to it, and one elsewhere
    _write(genesys_sim, CONV_A, AGENT, {"aws_processed": "true", "aws_pipeline_execution": "acd-end-1"})
    _write(genesys_sim, CONV_A, AGENT, {"aws_processing_status": "failed"})
    _write(genesys_sim, CONV_B, CUSTOMER, {"aws_processed": "true", "note": "tel:+13175550123"})

    # When the operator asks, as JSON
    result = _invoke(genesys_sim, "--json")

    # Then one row per place, with the count and the merged last values; customer data redacted
    assert result.exit_code == 0, result.output
    rows = {(r["conversation_id"], r["participant_id"]): r for r in json.loads(result.output)}
    assert set(rows) == {(CONV_A, AGENT), (CONV_B, CUSTOMER)}
    a = rows[(CONV_A, AGENT)]
    assert a["count"] == 2 and a["kind"] == "participant attributes"
    assert a["last_values"] == {
        "aws_processed": "true",
        "aws_pipeline_execution": "acd-end-1",
        "aws_processing_status": "failed",
    }
    assert rows[(CONV_B, CUSTOMER)]["count"] == 1
    assert "13175550123" not in result.output and "***" in result.output

    # And --conversation narrows it; the table says how many writes went where
    only_b = json.loads(_invoke(genesys_sim, "--conversation", CONV_B, "--json").output)
    assert [(r["conversation_id"], r["count"]) for r in only_b] == [(CONV_B, 1)]
    table = _invoke(genesys_sim).output
    assert "3 write(s) to 2 place(s)" in table and CONV_A in table


def test_the_endpoint_is_outside_the_genesys_api_and_read_only(genesys_sim):
    assert requests.get(f"{genesys_sim.base_url}/sim/writes", timeout=5).json() == {"writes": []}
    assert requests.post(f"{genesys_sim.base_url}/sim/writes", timeout=5).status_code == 405
    # the Genesys API namespace is untouched: no such path there
    assert requests.get(f"{genesys_sim.base_url}/api/v2/sim/writes", timeout=5).status_code == 401


def test_no_writes_yet_and_aws_targets_are_told_plainly(genesys_sim):
    assert "no writes to Genesys yet" in _invoke(genesys_sim).output
    on_aws = CliRunner().invoke(cli, ["--env", "prod", "genesys", "writes"], obj={"outputs": {}})
    assert on_aws.exit_code == 2 and "--local" in on_aws.output


def test_a_stopped_simulator_is_one_line_not_a_traceback(genesys_sim):
    url = genesys_sim.base_url
    genesys_sim.stop()
    result = CliRunner().invoke(
        cli,
        ["--local", "--env", "test", "genesys", "writes"],
        obj={"in_process": True, "outputs": {}, "genesys_base_url": url},
    )
    assert result.exit_code == 1 and "not answering" in result.output and "Traceback" not in result.output
