"""Create the local stack from the synthesized CloudFormation template, resource by resource.

Why not moto's CloudFormation (tried first, on a CDK template of this stack's
shape, moto 5.2.5): CreateStack fails on the generated archive name (moto
builds ``<stack>-<logicalId>-<suffix>``, over EventBridge's 48-character
limit), a failed resource leaves the stack CREATE_IN_PROGRESS with half its
resources and even ListStackResources failing, and an
``AWS::StepFunctions::StateMachine`` is created in the non-executing Step
Functions backend whatever ``execute_state_machine`` says. So the deployer does
what CloudFormation does for the resource types this stack uses: it orders the
resources by their references, resolves the intrinsics (template.py) and calls
each service's create API with the template's own properties, through boto3,
so it works the same in-process and against the loopback server.

What is exercised locally is therefore exactly what ``cdk deploy`` ships: the
rule's pattern and targets, the queues' attributes and redrive policy, the
state machine's definition (with its DefinitionSubstitutions), the functions'
handlers, runtime settings and environments, the event source mapping.

The local overrides, and nothing else:
- ``GENESYS_API_BASE_URL`` / ``GENESYS_LOGIN_BASE_URL`` of every function that
  talks to Genesys (its environment has ``GENESYS_DOMAIN``) point at the
  simulator;
- the secret the template names (``GENESYS_SECRET_NAME``; created by the
  template or referenced by name) holds the simulator's client credentials;
- the partner event source is created first, as Genesys does when a customer
  sets up the integration;
- file assets are zipped from cdk.out and put in the bootstrap bucket named by
  the template, as ``cdk deploy`` publishes them; the local runtime runs
  the code from the asset directory itself.

Types provisioned: IAM Role/Policy, SQS Queue/QueuePolicy, Events
EventBus/Rule/Archive, Lambda Function/EventSourceMapping, StepFunctions
StateMachine, DynamoDB Table, SecretsManager Secret, Logs LogGroup, SNS Topic,
CloudWatch Alarm/Dashboard, KMS Key. Recorded but not provisioned (no local
effect): Lambda Permission, SNS Subscription, CDK Metadata, custom resources;
``skipped`` lists them.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .template import CloudAssembly, Resolver, TemplateError, references

LOG = logging.getLogger(__name__)

NOT_PROVISIONED = {"AWS::Lambda::Permission", "AWS::SNS::Subscription", "AWS::CDK::Metadata"}

# CloudFormation's name limits, for generated physical names
NAME_LIMITS = {
    "AWS::SQS::Queue": 80,
    "AWS::Lambda::Function": 64,
    "AWS::Events::Rule": 64,
    "AWS::Events::Archive": 48,
    "AWS::StepFunctions::StateMachine": 80,
    "AWS::IAM::Role": 64,
    "AWS::DynamoDB::Table": 255,
    "AWS::SNS::Topic": 256,
    "AWS::Logs::LogGroup": 512,
    "AWS::CloudWatch::Alarm": 255,
    "AWS::CloudWatch::Dashboard": 255,
    "AWS::SecretsManager::Secret": 512,
}


@dataclass(frozen=True)
class GenesysEndpoint:
    """Where the local functions find Genesys: the simulator, and its client credentials."""

    base_url: str
    client_id: str
    client_secret: str


@dataclass
class Provisioned:
    logical_id: str
    type: str
    ref: Any
    attributes: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass
class DeployedStack:
    stack_name: str
    resources: dict[str, Provisioned]
    outputs: dict[str, str]
    skipped: dict[str, str]  # logical id -> type, not provisioned

    def of_type(self, resource_type: str) -> list[Provisioned]:
        return [r for r in self.resources.values() if r.type == resource_type]


def physical_name(stack_name: str, logical_id: str, resource_type: str) -> str:
    """A CloudFormation-like generated name: <stack>-<logicalId>-<suffix>, within the type's limit."""
    limit = NAME_LIMITS.get(resource_type, 64)
    suffix = hashlib.sha256(f"{stack_name}/{logical_id}".encode()).hexdigest()[:12].upper()
    head = f"{stack_name}-{logical_id}"[: limit - len(suffix) - 1].rstrip("-")
    return f"{head}-{suffix}"


def _zip_dir(path: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        if path.is_file():
            zf.write(path, path.name)
        else:
            for file in sorted(path.rglob("*")):
                if file.is_file() and "__pycache__" not in file.parts:
                    zf.write(file, file.relative_to(path).as_posix())
    return buf.getvalue()


class TemplateDeployer:
    def __init__(
        self,
        session: Any,
        assembly: CloudAssembly,
        *,
        account_id: str,
        region: str,
        genesys: GenesysEndpoint | None,
        parameters: dict[str, Any] | None = None,
        register_code_dir: Callable[[str, Path], None] | None = None,
        endpoint_url: str | None = None,
    ):
        self.session = session
        self.assembly = assembly
        self.account_id = account_id
        self.region = region
        self.genesys = genesys
        self._register_code_dir = register_code_dir
        self._endpoint_url = endpoint_url
        self._clients: dict[str, Any] = {}
        self.resources: dict[str, Provisioned] = {}
        self.skipped: dict[str, str] = {}
        template = assembly.template
        params = {}
        for name, spec in (template.get("Parameters") or {}).items():
            params[name] = (parameters or {}).get(name, spec.get("Default"))
        self.resolver = Resolver(
            stack_name=assembly.stack_name,
            account_id=account_id,
            region=region,
            parameters=params,
            conditions=template.get("Conditions") or {},
            ref=self._ref,
            get_att=self._get_att,
        )

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(
                service, region_name=self.region, endpoint_url=self._endpoint_url
            )
        return self._clients[service]

    # -- intrinsics -----------------------------------------------------------------------
    def _ref(self, logical_id: str) -> Any:
        if logical_id in self.resources:
            return self.resources[logical_id].ref
        if logical_id in self.skipped:
            return f"local-not-provisioned-{logical_id}"
        raise TemplateError(f"Ref to {logical_id}, which is not provisioned yet (or does not exist)")

    def _get_att(self, logical_id: str, attribute: str) -> Any:
        if logical_id in self.skipped:
            return f"local-not-provisioned-{logical_id}.{attribute}"
        res = self.resources.get(logical_id)
        if res is None:
            raise TemplateError(f"Fn::GetAtt {logical_id}.{attribute}: {logical_id} is not provisioned")
        if attribute not in res.attributes:
            raise TemplateError(f"Fn::GetAtt {logical_id}.{attribute}: attribute not known locally for {res.type}")
        return res.attributes[attribute]

    # -- order ----------------------------------------------------------------------------
    def _ordered(self) -> list[str]:
        resources = self.assembly.template.get("Resources", {})
        deps: dict[str, set[str]] = {}
        for lid, res in resources.items():
            d = references(res.get("Properties") or {})
            depends = res.get("DependsOn") or []
            d |= set([depends] if isinstance(depends, str) else depends)
            deps[lid] = {x for x in d if x in resources}
        ordered: list[str] = []
        done: set[str] = set()

        def visit(lid: str, stack: tuple[str, ...]) -> None:
            if lid in done:
                return
            if lid in stack:
                raise TemplateError(f"circular dependency: {' -> '.join(stack + (lid,))}")
            for d in sorted(deps[lid]):
                visit(d, stack + (lid,))
            done.add(lid)
            ordered.append(lid)

        for lid in resources:
            visit(lid, ())
        return ordered

    # -- deploy ---------------------------------------------------------------------------
    def deploy(self) -> DeployedStack:
        template = self.assembly.template
        self._publish_assets()
        for lid in self._ordered():
            res = template["Resources"][lid]
            rtype = res["Type"]
            cond = res.get("Condition")
            if cond and not self.resolver.condition(cond):
                continue
            handler = getattr(self, "_create_" + rtype.replace("::", "_").replace("AWS_", "", 1), None)
            if handler is None or rtype in NOT_PROVISIONED:
                self.skipped[lid] = rtype
                continue
            props = self.resolver.resolve(res.get("Properties") or {}, lid)
            try:
                provisioned = handler(lid, props)
            except Exception as exc:
                raise TemplateError(f"could not create {lid} ({rtype}): {exc}") from exc
            provisioned.properties = props
            self.resources[lid] = provisioned
        outputs: dict[str, str] = {}
        for key, out in (template.get("Outputs") or {}).items():
            cond = out.get("Condition")
            if cond and not self.resolver.condition(cond):
                continue
            outputs[key] = str(self.resolver.resolve(out["Value"], f"Outputs.{key}"))
        return DeployedStack(self.assembly.stack_name, self.resources, outputs, self.skipped)

    def _publish_assets(self) -> None:
        """Put each zip asset the template's functions use in the bucket the template names."""
        s3 = self.client("s3")
        buckets: set[str] = set()
        for lid, res in self.assembly.template.get("Resources", {}).items():
            if res["Type"] != "AWS::Lambda::Function":
                continue
            code = self.resolver.resolve((res.get("Properties") or {}).get("Code") or {}, f"{lid}.Code")
            bucket, key = code.get("S3Bucket"), code.get("S3Key")
            if not bucket or not key:
                continue
            source = self.assembly.asset_sources.get(key)
            if source is None:
                raise TemplateError(f"{lid}: no asset in {self.assembly.directory} for s3://{bucket}/{key}")
            if bucket not in buckets:
                try:
                    s3.create_bucket(Bucket=bucket)
                except s3.exceptions.BucketAlreadyOwnedByYou:
                    pass
                buckets.add(bucket)
            s3.put_object(Bucket=bucket, Key=key, Body=_zip_dir(source))

    def _name(self, props: dict[str, Any], key: str, lid: str, rtype: str) -> str:
        return props.get(key) or physical_name(self.assembly.stack_name, lid, rtype)

    def _arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account_id}:{resource}"

    # -- resource types -------------------------------------------------------------------
    def _create_IAM_Role(self, lid: str, p: dict[str, Any]) -> Provisioned:
        name = self._name(p, "RoleName", lid, "AWS::IAM::Role")
        iam = self.client("iam")
        role = iam.create_role(
            RoleName=name, Path=p.get("Path", "/"), AssumeRolePolicyDocument=json.dumps(p["AssumeRolePolicyDocument"])
        )["Role"]
        for arn in p.get("ManagedPolicyArns", []):
            try:
                iam.attach_role_policy(RoleName=name, PolicyArn=arn)
            except Exception:  # noqa: BLE001 - AWS managed policies are not loaded in moto; no local effect
                pass
        for pol in p.get("Policies", []):
            iam.put_role_policy(
                RoleName=name, PolicyName=pol["PolicyName"], PolicyDocument=json.dumps(pol["PolicyDocument"])
            )
        return Provisioned(lid, "AWS::IAM::Role", name, {"Arn": role["Arn"], "RoleId": role["RoleId"]})

    def _create_IAM_Policy(self, lid: str, p: dict[str, Any]) -> Provisioned:
        for role in p.get("Roles", []):
            self.client("iam").put_role_policy(
                RoleName=role, PolicyName=p["PolicyName"], PolicyDocument=json.dumps(p["PolicyDocument"])
            )
        return Provisioned(lid, "AWS::IAM::Policy", p["PolicyName"])

    def _create_KMS_Key(self, lid: str, p: dict[str, Any]) -> Provisioned:
        key = self.client("kms").create_key(Description=p.get("Description", lid))["KeyMetadata"]
        return Provisioned(lid, "AWS::KMS::Key", key["KeyId"], {"Arn": key["Arn"], "KeyId": key["KeyId"]})

    def _create_SQS_Queue(self, lid: str, p: dict[str, Any]) -> Provisioned:
        name = p.get("QueueName") or physical_name(self.assembly.stack_name, lid, "AWS::SQS::Queue")
        if p.get("FifoQueue") and not name.endswith(".fifo"):
            name = name[:75] + ".fifo"
        attrs: dict[str, str] = {}
        for key in (
            "VisibilityTimeout",
            "MessageRetentionPeriod",
            "DelaySeconds",
            "MaximumMessageSize",
            "ReceiveMessageWaitTimeSeconds",
            "KmsMasterKeyId",
            "KmsDataKeyReusePeriodSeconds",
            "SqsManagedSseEnabled",
            "FifoQueue",
            "ContentBasedDeduplication",
            "DeduplicationScope",
            "FifoThroughputLimit",
        ):
            if key in p:
                value = p[key]
                attrs[key] = str(value).lower() if isinstance(value, bool) else str(value)
        for key in ("RedrivePolicy", "RedriveAllowPolicy"):
            if key in p:
                attrs[key] = json.dumps(p[key]) if not isinstance(p[key], str) else p[key]
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return Provisioned(lid, "AWS::SQS::Queue", url, {"Arn": arn, "QueueName": name, "QueueUrl": url})

    def _create_SQS_QueuePolicy(self, lid: str, p: dict[str, Any]) -> Provisioned:
        for url in p.get("Queues", []):
            self.client("sqs").set_queue_attributes(
                QueueUrl=url, Attributes={"Policy": json.dumps(p["PolicyDocument"])}
            )
        return Provisioned(lid, "AWS::SQS::QueuePolicy", lid)

    def _create_Events_EventBus(self, lid: str, p: dict[str, Any]) -> Provisioned:
        events = self.client("events")
        source = p.get("EventSourceName")
        name = p.get("Name") or source
        kwargs: dict[str, Any] = {"Name": name}
        if source:
            # What the partner (Genesys) does when the customer sets up the integration.
            events.create_partner_event_source(Name=source, Account=self.account_id)
            kwargs["EventSourceName"] = source
        for key in ("Description", "KmsKeyIdentifier", "DeadLetterConfig"):
            if p.get(key):
                kwargs[key] = p[key]
        arn = events.create_event_bus(**kwargs)["EventBusArn"]
        return Provisioned(lid, "AWS::Events::EventBus", name, {"Arn": arn, "Name": name})

    def _create_Events_Archive(self, lid: str, p: dict[str, Any]) -> Provisioned:
        name = self._name(p, "ArchiveName", lid, "AWS::Events::Archive")
        kwargs: dict[str, Any] = {"ArchiveName": name, "EventSourceArn": p["SourceArn"]}
        if "EventPattern" in p:
            kwargs["EventPattern"] = (
                json.dumps(p["EventPattern"]) if not isinstance(p["EventPattern"], str) else p["EventPattern"]
            )
        if "RetentionDays" in p:
            kwargs["RetentionDays"] = int(p["RetentionDays"])
        if p.get("Description"):
            kwargs["Description"] = p["Description"]
        arn = self.client("events").create_archive(**kwargs)["ArchiveArn"]
        return Provisioned(lid, "AWS::Events::Archive", name, {"Arn": arn, "ArchiveName": name})

    def _create_Events_Rule(self, lid: str, p: dict[str, Any]) -> Provisioned:
        events = self.client("events")
        name = self._name(p, "Name", lid, "AWS::Events::Rule")
        bus = p.get("EventBusName", "default")
        kwargs: dict[str, Any] = {"Name": name, "EventBusName": bus, "State": p.get("State", "ENABLED")}
        if "EventPattern" in p:
            kwargs["EventPattern"] = (
                json.dumps(p["EventPattern"]) if not isinstance(p["EventPattern"], str) else p["EventPattern"]
            )
        for key in ("ScheduleExpression", "Description", "RoleArn"):
            if p.get(key):
                kwargs[key] = p[key]
        arn = events.put_rule(**kwargs)["RuleArn"]
        targets = []
        for t in p.get("Targets", []):
            target = {
                k: v
                for k, v in t.items()
                if k
                in (
                    "Id",
                    "Arn",
                    "Input",
                    "InputPath",
                    "InputTransformer",
                    "RoleArn",
                    "DeadLetterConfig",
                    "RetryPolicy",
                    "SqsParameters",
                )
            }
            targets.append(target)
        if targets:
            events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
        return Provisioned(lid, "AWS::Events::Rule", name, {"Arn": arn})

    def _create_Lambda_Function(self, lid: str, p: dict[str, Any]) -> Provisioned:
        lam = self.client("lambda")
        name = self._name(p, "FunctionName", lid, "AWS::Lambda::Function")
        variables = dict((p.get("Environment") or {}).get("Variables") or {})
        if self.genesys and "GENESYS_DOMAIN" in variables:
            # The one local override: Genesys is the simulator.
            variables["GENESYS_API_BASE_URL"] = self.genesys.base_url
            variables["GENESYS_LOGIN_BASE_URL"] = self.genesys.base_url
        kwargs: dict[str, Any] = {
            "FunctionName": name,
            "Role": p["Role"],
            "Code": {
                k: v
                for k, v in p["Code"].items()
                if k in ("S3Bucket", "S3Key", "S3ObjectVersion", "ZipFile", "ImageUri")
            },
            "Environment": {"Variables": {k: str(v) for k, v in variables.items()}},
        }
        if isinstance(kwargs["Code"].get("ZipFile"), str):
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as zf:
                zf.writestr("index.py", kwargs["Code"]["ZipFile"])
            kwargs["Code"]["ZipFile"] = buf.getvalue()
        for key in (
            "Runtime",
            "Handler",
            "Timeout",
            "MemorySize",
            "Description",
            "Architectures",
            "TracingConfig",
            "EphemeralStorage",
            "PackageType",
            "LoggingConfig",
            "DeadLetterConfig",
            "KMSKeyArn",
        ):
            if key in p:
                kwargs[key] = p[key]
        fn = lam.create_function(**kwargs)
        if "ReservedConcurrentExecutions" in p:
            lam.put_function_concurrency(
                FunctionName=name, ReservedConcurrentExecutions=int(p["ReservedConcurrentExecutions"])
            )
        key = p["Code"].get("S3Key")
        source = self.assembly.asset_sources.get(key) if key else None
        if source is not None and self._register_code_dir:
            self._register_code_dir(name, source)
        return Provisioned(lid, "AWS::Lambda::Function", name, {"Arn": fn["FunctionArn"]})

    def _create_Lambda_EventSourceMapping(self, lid: str, p: dict[str, Any]) -> Provisioned:
        kwargs = {
            k: v
            for k, v in p.items()
            if k
            in (
                "EventSourceArn",
                "FunctionName",
                "BatchSize",
                "MaximumBatchingWindowInSeconds",
                "FunctionResponseTypes",
                "ScalingConfig",
                "Enabled",
                "FilterCriteria",
                "StartingPosition",
            )
        }
        uuid = self.client("lambda").create_event_source_mapping(**kwargs)["UUID"]
        return Provisioned(lid, "AWS::Lambda::EventSourceMapping", uuid, {"Id": uuid})

    def _create_StepFunctions_StateMachine(self, lid: str, p: dict[str, Any]) -> Provisioned:
        definition = p.get("DefinitionString")
        if definition is None:
            definition = json.dumps(p.get("Definition") or {})
        for key, value in (p.get("DefinitionSubstitutions") or {}).items():
            definition = definition.replace("${" + key + "}", str(value))
        name = self._name(p, "StateMachineName", lid, "AWS::StepFunctions::StateMachine")
        kwargs: dict[str, Any] = {
            "name": name,
            "definition": definition,
            "roleArn": p["RoleArn"],
            "type": p.get("StateMachineType", "STANDARD"),
        }
        if p.get("TracingConfiguration"):
            kwargs["tracingConfiguration"] = {"enabled": bool(p["TracingConfiguration"].get("Enabled"))}
        arn = self.client("stepfunctions").create_state_machine(**kwargs)["stateMachineArn"]
        return Provisioned(lid, "AWS::StepFunctions::StateMachine", arn, {"Arn": arn, "Name": name})

    def _create_DynamoDB_Table(self, lid: str, p: dict[str, Any]) -> Provisioned:
        ddb = self.client("dynamodb")
        name = self._name(p, "TableName", lid, "AWS::DynamoDB::Table")
        kwargs: dict[str, Any] = {
            "TableName": name,
            "KeySchema": p["KeySchema"],
            "AttributeDefinitions": p["AttributeDefinitions"],
            "BillingMode": p.get("BillingMode", "PROVISIONED"),
        }
        if kwargs["BillingMode"] == "PROVISIONED":
            kwargs["ProvisionedThroughput"] = p.get("ProvisionedThroughput") or {
                "ReadCapacityUnits": 5,
                "WriteCapacityUnits": 5,
            }
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes", "StreamSpecification"):
            if key in p:
                kwargs[key] = p[key]
        table = ddb.create_table(**kwargs)["TableDescription"]
        ttl = p.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            ddb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]}
            )
        return Provisioned(
            lid, "AWS::DynamoDB::Table", name, {"Arn": table["TableArn"], "StreamArn": table.get("LatestStreamArn", "")}
        )

    def _create_SecretsManager_Secret(self, lid: str, p: dict[str, Any]) -> Provisioned:
        name = self._name(p, "Name", lid, "AWS::SecretsManager::Secret")
        value = p.get("SecretString")
        if value is None:
            value = json.dumps({"generated": hashlib.sha256(name.encode()).hexdigest()})
        if self.genesys and name in self._genesys_secret_names():
            value = json.dumps({"client_id": self.genesys.client_id, "client_secret": self.genesys.client_secret})
        arn = self.client("secretsmanager").create_secret(Name=name, SecretString=value)["ARN"]
        return Provisioned(lid, "AWS::SecretsManager::Secret", arn, {"Id": arn})

    def _genesys_secret_names(self) -> set[str]:
        names = set()
        for res in self.assembly.template.get("Resources", {}).values():
            if res["Type"] == "AWS::Lambda::Function":
                v = (
                    ((res.get("Properties") or {}).get("Environment") or {})
                    .get("Variables", {})
                    .get("GENESYS_SECRET_NAME")
                )
                if isinstance(v, str):
                    names.add(v)
        return names

    def _create_Logs_LogGroup(self, lid: str, p: dict[str, Any]) -> Provisioned:
        name = self._name(p, "LogGroupName", lid, "AWS::Logs::LogGroup")
        logs = self.client("logs")
        logs.create_log_group(logGroupName=name)
        if p.get("RetentionInDays"):
            logs.put_retention_policy(logGroupName=name, retentionInDays=int(p["RetentionInDays"]))
        return Provisioned(lid, "AWS::Logs::LogGroup", name, {"Arn": self._arn("logs", f"log-group:{name}:*")})

    def _create_SNS_Topic(self, lid: str, p: dict[str, Any]) -> Provisioned:
        name = self._name(p, "TopicName", lid, "AWS::SNS::Topic")
        arn = self.client("sns").create_topic(Name=name)["TopicArn"]
        return Provisioned(lid, "AWS::SNS::Topic", arn, {"TopicArn": arn, "TopicName": name})

    def _create_CloudWatch_Dashboard(self, lid: str, p: dict[str, Any]) -> Provisioned:
        name = self._name(p, "DashboardName", lid, "AWS::CloudWatch::Dashboard")
        self.client("cloudwatch").put_dashboard(DashboardName=name, DashboardBody=p.get("DashboardBody", "{}"))
        return Provisioned(lid, "AWS::CloudWatch::Dashboard", name)

    def _create_CloudWatch_Alarm(self, lid: str, p: dict[str, Any]) -> Provisioned:
        name = self._name(p, "AlarmName", lid, "AWS::CloudWatch::Alarm")
        kwargs = {
            k: v
            for k, v in p.items()
            if k
            in (
                "AlarmDescription",
                "ActionsEnabled",
                "AlarmActions",
                "OKActions",
                "InsufficientDataActions",
                "MetricName",
                "Namespace",
                "Statistic",
                "ExtendedStatistic",
                "Dimensions",
                "Period",
                "Unit",
                "EvaluationPeriods",
                "DatapointsToAlarm",
                "Threshold",
                "ComparisonOperator",
                "TreatMissingData",
                "Metrics",
            )
        }
        for key in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
            if key in kwargs:
                kwargs[key] = int(kwargs[key])
        if "Threshold" in kwargs:
            kwargs["Threshold"] = float(kwargs["Threshold"])
        self.client("cloudwatch").put_metric_alarm(AlarmName=name, **kwargs)
        return Provisioned(lid, "AWS::CloudWatch::Alarm", name, {"Arn": self._arn("cloudwatch", f"alarm:{name}")})


def ensure_secret(
    session: Any, region: str, name: str, genesys: GenesysEndpoint, endpoint_url: str | None = None
) -> None:
    """Create (or overwrite) the secret ``name`` with the simulator's client credentials."""
    sm = session.client("secretsmanager", region_name=region, endpoint_url=endpoint_url)
    value = json.dumps({"client_id": genesys.client_id, "client_secret": genesys.client_secret})
    try:
        sm.create_secret(Name=name, SecretString=value)
    except sm.exceptions.ResourceExistsException:
        sm.put_secret_value(SecretId=name, SecretString=value)


__all__ = ["DeployedStack", "GenesysEndpoint", "TemplateDeployer", "ensure_secret", "physical_name"]
