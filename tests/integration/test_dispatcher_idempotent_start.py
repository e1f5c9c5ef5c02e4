"""StartExecution on a Standard machine with the name and input of a running execution, against moto.

moto does what the Step Functions API reference says: success, with the running execution's own
response (same executionArn, same startDate); ExecutionAlreadyExists once it is closed or for another input.
"""

from __future__ import annotations

import json
from datetime import timedelta

import boto3
import pytest
from moto import mock_aws

from genesys_pipeline.dispatch import StartResult, StepFunctionsExecutionStarter

# Without moto's ASL interpreter an execution stays RUNNING until stopped: the case under test.
DEFINITION = json.dumps({"StartAt": "Process", "States": {"Process": {"Type": "Pass", "End": True}}})


@pytest.fixture
def machine():
    with mock_aws():
        sfn = boto3.client("stepfunctions")
        arn = sfn.create_state_machine(
            name="genesys",
            definition=DEFINITION,
            type="STANDARD",
            roleArn="arn:aws:iam::123456789012:role/genesys-states",
        )["stateMachineArn"]
        yield sfn, arn


def test_moto_answers_an_identical_start_of_a_running_execution_with_its_original_response(machine):
    sfn, arn = machine
    first = sfn.start_execution(stateMachineArn=arn, name="key", input='{"a":1}')
    again = sfn.start_execution(stateMachineArn=arn, name="key", input='{"a":1}')
    assert (again["executionArn"], again["startDate"]) == (first["executionArn"], first["startDate"])
    assert sfn.describe_execution(executionArn=first["executionArn"])["status"] == "RUNNING"


def test_the_adapter_tells_another_copys_running_execution_from_its_own(machine):
    sfn, arn = machine
    starter = StepFunctionsExecutionStarter(sfn, arn)
    started = sfn.start_execution(stateMachineArn=arn, name="key", input='{"a":1}')["startDate"]
    # A copy first received after the execution started: a duplicate
    assert (
        starter.start_execution("key", '{"a":1}', not_before=started + timedelta(seconds=1))
        is StartResult.ALREADY_RUNNING
    )
    # The message that started it, received again (first received before the start): its own start
    assert starter.start_execution("key", '{"a":1}', not_before=started - timedelta(seconds=1)) is StartResult.STARTED
    # Another input, or the execution closed: ExecutionAlreadyExists
    assert starter.start_execution("key", '{"a":2}') is StartResult.ALREADY_EXISTS
    sfn.stop_execution(executionArn=f"{arn.replace(':stateMachine:', ':execution:')}:key")
    assert (
        starter.start_execution("key", '{"a":1}', not_before=started + timedelta(seconds=1))
        is StartResult.ALREADY_EXISTS
    )
