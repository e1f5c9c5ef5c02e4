"""The STANDARD state machine: one Task state (Process) from statemachines/, logged and traced.

The ASL file keeps ``${...}`` placeholders. Numbers (retry budgets, the task timeout) are rendered here
from the environment's config; ARNs stay placeholders and go through DefinitionSubstitutions. The text
is passed inline (DefinitionBody.from_string): from_file would upload it to S3, out of sight of tests
and linters.
"""

from __future__ import annotations

from typing import cast

from aws_cdk import Acknowledgment, Validations
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from . import constants as C
from .asl import STATEMACHINES_DIR, render_definition
from .config import EnvironmentConfig
from .function import log_retention, removal_policy


class Orchestration(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, processor: lambda_.IFunction):
        super().__init__(scope, construct_id)
        self.state_machine_name = f"{config.stack_name}-{C.STATE_MACHINE_SUFFIX}"
        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            # The vendedlogs prefix keeps Step Functions' log delivery under the resource policy size limit.
            log_group_name=f"/aws/vendedlogs/states/{self.state_machine_name}",
            retention=log_retention(config),
            removal_policy=removal_policy(config),
        )
        text = (STATEMACHINES_DIR / C.STATE_MACHINE_FILE).read_text()
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=self.state_machine_name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_string(render_definition(text, config)),
            definition_substitutions={"ProcessorFunctionArn": processor.function_arn},
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=self.log_group,
                level=sfn.LogLevel.ALL,
                # Execution data carries customer data (ani, dnis, externalContactId): keep it out of the logs.
                include_execution_data=False,
            ),
        )
        processor.grant_invoke(self.state_machine)
        Validations.of(self.state_machine.role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="Step Functions log delivery (logs:CreateLogDelivery, ...) and X-Ray (xray:PutTraceSegments, "
                "...) do not support resource-level permissions (Step Functions logging IAM docs).",
            ),
        )
        Validations.of(self.state_machine.role).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{_logical_id_placeholder(processor)}>:*]",
                reason="lambda:InvokeFunction on the processor's versions/aliases (the ARN with ':*'), granted by "
                "grant_invoke; scoped to this one function.",
            ),
        )

    def execution_arn_pattern(self) -> str:
        """ARN of any execution of this machine (for the error logger's DescribeExecution)."""
        from aws_cdk import ArnFormat, Stack

        return Stack.of(self).format_arn(
            service="states",
            resource="execution",
            resource_name=f"{self.state_machine_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )


def _logical_id_placeholder(fn: lambda_.IFunction) -> str:
    from aws_cdk import Stack

    cfn = cast(lambda_.CfnFunction, fn.node.default_child)
    return f"{Stack.of(fn).get_logical_id(cfn)}.Arn"
