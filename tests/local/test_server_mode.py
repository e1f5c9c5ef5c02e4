"""LocalPipeline in server mode: moto on a loopback port, reachable from other processes."""

from __future__ import annotations

import json

import boto3

from gcpipe.local.deploy import GenesysEndpoint
from gcpipe.local.pipeline import LocalPipeline
from tests.local.test_deploy_template import _event, write_assembly


def test_the_pipeline_runs_behind_a_loopback_moto_server(tmp_path):
    cdk_out = write_assembly(tmp_path / "cdk.out", tmp_path / "logged.jsonl")
    genesys = GenesysEndpoint("http://simulator.local", "sim-client", "sim-secret")
    with LocalPipeline("test", cdk_out=cdk_out, genesys=genesys, mode="server") as p:
        assert p.endpoint_url.startswith("http://127.0.0.1:")
        p.write_state_file(tmp_path / "endpoints.json")
        state = json.loads((tmp_path / "endpoints.json").read_text())
        assert state["aws_endpoint"] == p.endpoint_url and state["outputs"] == p.outputs

        p.put_events([_event("k-ok"), _event("k-bad", reject=True)])
        p.start_pollers()
        assert p.wait_until_idle(15)

        # an independent client, as another process would make it
        sfn = boto3.client(
            "stepfunctions",
            endpoint_url=p.endpoint_url,
            region_name=p.region,
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
        statuses = {
            e["name"]: e["status"]
            for e in sfn.list_executions(stateMachineArn=p.outputs["StateMachineArn"])["executions"]
        }
        assert statuses == {"k-ok": "SUCCEEDED", "k-bad": "FAILED"}
        assert "k-bad" in (tmp_path / "logged.jsonl").read_text()
