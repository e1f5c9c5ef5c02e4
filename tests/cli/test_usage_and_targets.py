"""Usage errors (exit 2, no traceback), one-line AWS errors (exit 1), and how --local finds its stack."""

from __future__ import annotations

import json

import boto3
import pytest
from click.testing import CliRunner

from gcpipe.cli import cli
from gcpipe.ops.target import LocalState

COMMANDS = [
    [],
    ["send"],
    ["failures"],
    ["redrive"],
    ["dlq"],
    ["dlq", "show"],
    ["dlq", "replay"],
    ["archive"],
    ["archive", "replay"],
    ["genesys"],
    ["genesys", "sync-filter"],
    ["local"],
    ["local", "chaos"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a) or "gcpipe")
def test_every_command_has_help(args):
    result = CliRunner().invoke(cli, [*args, "--help"])
    assert result.exit_code == 0 and "Usage: gcpipe" in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["send"], "exactly one of FILE or --generate"),
        (["send", "x.jsonl", "--generate", "3"], "exactly one of FILE or --generate"),
        (["send", "--generate", "0"], "--generate"),
        (["send", "x.jsonl", "--topic", "acd.end"], "only apply to --generate"),
        (["send", "--generate", "5", "--concurrency", "99"], "--concurrency"),
        (["redrive"], "--all-failed"),
        (["redrive", "arn:x", "--all-failed"], "--all-failed"),
        (["redrive", "arn:x", "--since", "1h"], "--since only applies"),
        (["failures", "--since", "yesterday-ish"], "is not a time"),
        (["archive", "replay"], "--from"),
        (["archive", "replay", "--from", "2h", "--to", "3h"], "--to must be after --from"),
        (["genesys", "sync-filter"], "--integration-id"),
        (["dlq", "replay", "--max", "0"], "--max"),
        (["--profile", "p", "--local", "failures"], "--profile"),
        (["nosuch"], "No such command"),
        (["local", "chaos", "--seed", "1"], "--events"),
        (["local", "chaos", "--events", "10"], "--seed"),
        (["local", "chaos", "--events", "0", "--seed", "1"], "--events"),
        (["local", "chaos", "--events", "10", "--seed", "x"], "--seed"),
    ],
)
def test_usage_errors_exit_2_with_a_usage_message(args, message):
    result = CliRunner().invoke(cli, ["--env", "test", *args])
    assert result.exit_code == 2, result.output
    assert "Usage: gcpipe" in result.output and message in result.output
    assert "Traceback" not in result.output


def test_no_environment_is_a_usage_error():
    result = CliRunner().invoke(cli, ["failures"], env={"GCPIPE_ENV": ""})
    assert result.exit_code == 2 and "--env" in result.output


def test_send_missing_file_is_a_usage_error(env, tmp_path):
    result = env.invoke("send", str(tmp_path / "nope.jsonl"))
    assert result.exit_code == 2 and "does not exist" in result.output


def test_archive_replay_locally_is_a_usage_error(env):
    result = env.invoke("archive", "replay", "--from", "2h")
    assert result.exit_code == 2
    assert "AWS-only" in result.output and "gcpipe --local send" in result.output


def test_missing_stack_is_one_line_exit_1(env):
    result = CliRunner().invoke(cli, ["--env", "nope", "--region", "us-east-1", "failures"])
    assert result.exit_code == 1
    assert (
        result.output.strip()
        == "Error: stack GenesysEvents-nope not found (GenesysEvents-nope on AWS us-east-1): check --env and --region"
    )


def test_unexpected_aws_error_is_one_line_exit_1(env):
    outputs = {**env.outputs, "DeadLetterQueueUrl": env.outputs["DeadLetterQueueUrl"] + "-gone"}
    result = env.invoke("dlq", "show", obj={"outputs": outputs})
    assert result.exit_code == 1
    assert (
        result.output.startswith("Error: AWS ReceiveMessage failed:") and len(result.output.strip().splitlines()) == 1
    )


def test_missing_output_is_one_line_exit_1(env):
    outputs = {k: v for k, v in env.outputs.items() if k != "DeadLetterQueueUrl"}
    result = env.invoke("dlq", "show", obj={"outputs": outputs})
    assert result.exit_code == 1 and "has no output 'DeadLetterQueueUrl'" in result.output


def test_local_without_a_running_stack_says_how_to_start_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GCPIPE_AWS_ENDPOINT", raising=False)
    monkeypatch.setattr(LocalState, "default_paths", staticmethod(lambda: [tmp_path / ".local-run" / "endpoints.json"]))
    result = CliRunner().invoke(cli, ["--local", "failures"])
    assert result.exit_code == 1 and "gcpipe local run" in result.output


def test_local_finds_the_moto_server_from_the_state_file(tmp_path):
    """The real --local path: a moto server in another thread, found through the runner's state file."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        sqs = boto3.client(
            "sqs",
            region_name="us-east-1",
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        dlq = sqs.create_queue(QueueName="state-file-dlq")["QueueUrl"]
        sqs.send_message(
            QueueUrl=dlq,
            MessageBody=json.dumps(
                {"detail-type": "x", "detail": {"eventBody": {"conversationId": "c-9", "ani": "tel:+15551234567"}}}
            ),
            MessageAttributes={"DeadLetterReason": {"DataType": "String", "StringValue": "missing detail.version"}},
        )
        cfn = boto3.client(
            "cloudformation",
            region_name="us-east-1",
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        cfn.create_stack(
            StackName="GenesysEvents-dev",
            TemplateBody=json.dumps(
                {
                    "Resources": {"M": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "m"}}},
                    "Outputs": {"DeadLetterQueueUrl": {"Value": dlq}},
                }
            ),
        )
        state = tmp_path / "endpoints.json"
        LocalState(aws_endpoint=endpoint, env="dev", genesys_base_url="http://127.0.0.1:1").write(state)

        result = CliRunner().invoke(cli, ["--state-file", str(state), "dlq", "show", "--json"])

        assert result.exit_code == 0, result.output
        [row] = json.loads(result.output)
        assert row["reason"] == "missing detail.version" and row["conversation_id"] == "c-9"
        assert "5551234567" not in row["body_preview"]
    finally:
        server.stop()
