"""Resource names, defaults and AWS/Genesys facts used by the constructs, in one place.

Facts copied from the project's shared references (reference/genesys.md, docs/architecture.md)
so that nothing reads ../shared at build time; each says where it comes from.
"""

from __future__ import annotations

import re

# GenesysEvents-<env>: defined where the operator CLI (which ships without infra/) finds the stack by it.
from gcpipe.names import STACK_PREFIX as STACK_PREFIX

DEFAULT_ENVIRONMENT = "dev"  # `cdk synth` without -c env=...
CONTEXT_ENVIRONMENTS = "environments"  # cdk.json context key holding the named environments
CONTEXT_ENV = "env"  # -c env=<name>

# Powertools: service and namespace (genesys_pipeline/observability.py, docs/contracts.md).
SERVICE_NAME = "genesys-event-pipeline"
METRICS_NAMESPACE = "GenesysEventPipeline"

# Lambda code: one asset at lambdas/ (docs/contracts.md), handler paths unique across it.
DISPATCHER_HANDLER = "dispatcher.handler.lambda_handler"
PROCESSOR_HANDLER = "processor.handler.lambda_handler"
ERROR_LOGGER_HANDLER = "error_logger.handler.lambda_handler"
# Lambda runtime, and the Python the venv, the tests and the local run use (Makefile PYTHON, .python-version):
# the code is tested on the version it runs on. The bundler fetches cp312 wheels to match. AWS Lambda runtimes
# page: python3.12 is deprecated on 2028-10-31 (create blocked 2028-11-30, update 2029-01-10); python3.11 on
# 2027-06-30, within a year of 2026-12-01, hence not 3.11.
PYTHON_VERSION = "3.12"
PYTHON_RUNTIME_DEPRECATION = "2028-10-31"
ASSET_EXCLUDES = [
    "tests",
    "tests/**",
    "**/__pycache__",
    "**/__pycache__/**",
    "*.pyc",
    "**/*.pyc",
    ".pytest_cache",
    "**/.pytest_cache/**",
    "*.egg-info",
    "**/*.egg-info/**",
    ".mypy_cache",
    "**/.mypy_cache/**",
    ".DS_Store",
    "**/.DS_Store",
]
# Removed from the bundle after pip: the Lambda Python runtime provides them (AWS Lambda runtimes docs).
RUNTIME_PROVIDED_PACKAGES = [
    "boto3",
    "boto3-*.dist-info",
    "botocore",
    "botocore-*.dist-info",
    "s3transfer",
    "s3transfer-*.dist-info",
    "bin",
]
# pip --platform per Lambda architecture (manylinux2014 is what Lambda's Amazon Linux 2023 accepts).
PIP_PLATFORMS = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}

# Function sizing. The queue's visibility timeout is derived from DISPATCHER_TIMEOUT_SECONDS
# (architecture.md: >= 6x the dispatcher timeout, so a slow batch is not handed out twice).
DISPATCHER_TIMEOUT_SECONDS = 60
DISPATCHER_MEMORY_MB = 256
VISIBILITY_TIMEOUT_FACTOR = 6
PROCESSOR_TIMEOUT_SECONDS = 30
PROCESSOR_MEMORY_MB = 256
# The Process task gives up a little after the processor's own timeout (States.Timeout then).
PROCESS_TASK_TIMEOUT_MARGIN_SECONDS = 15
ERROR_LOGGER_TIMEOUT_SECONDS = 30
ERROR_LOGGER_MEMORY_MB = 256
ERROR_LOGGER_ASYNC_RETRY_ATTEMPTS = 2

# Queues
DLQ_RETENTION_DAYS = 14  # the SQS maximum
MAIN_QUEUE_RETENTION_DAYS = 4  # SQS default; Genesys itself retries for 4 days (reference/genesys.md)

# Lambda environment defaults passed to every function talking to Genesys (settings.py names).
TOKEN_REFRESH_MARGIN_SECONDS = 300
MAX_INLINE_RETRY_AFTER_SECONDS = 3
SECRET_MAX_AGE_SECONDS = 300
IDEMPOTENCY_TTL_SECONDS = 7 * 24 * 3600
FAILURE_STATUS_ATTRIBUTE = "aws_processing_status"

# DynamoDB idempotency table: Powertools' DynamoDBPersistenceLayer defaults.
IDEMPOTENCY_PARTITION_KEY = "id"
IDEMPOTENCY_TTL_ATTRIBUTE = "expiration"

# State machine
STATE_MACHINE_FILE = "process-event.asl.json"
STATE_MACHINE_SUFFIX = "process-event"  # name: GenesysEvents-<env>-process-event
ARCHIVE_SUFFIX = "events"  # name: GenesysEvents-<env>-events (EventBridge archive names <= 48 chars)
DASHBOARD_SUFFIX = "pipeline"
STATUS_CHANGE_DETAIL_TYPE = "Step Functions Execution Status Change"
FAILED_EXECUTION_STATUSES = ["FAILED", "TIMED_OUT", "ABORTED"]
# Lambda service errors the Process task retries (AWS "Handle Lambda service exceptions").
# Powertools idempotency: a concurrent attempt of the same event still holds the in-progress record
# (it expires with that invocation's timeout, PROCESSOR_TIMEOUT_SECONDS): retried with a short budget.
IDEMPOTENCY_IN_PROGRESS_ERROR = "IdempotencyAlreadyInProgressError"
LAMBDA_SERVICE_ERRORS = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]

# Genesys request budget (infra/request_budget.py, docs/request-budget.md).
BUDGET_TABLE_PARTITION_KEY = "id"  # lambdas/genesys_pipeline/budget.py DynamoDBBudgetStore
BUDGET_ITEM_KEY = "genesys"  # REQUEST_BUDGET_KEY: one item per environment (one table per stack)
BUDGET_PAUSE_CACHE_SECONDS = 1  # how stale a container's view of a 429 pause may be
BUDGET_MIN_REQUESTS_PER_SECOND = 0.1
BUDGET_MAX_REQUESTS_PER_SECOND = 1000
# A processor invocation's duration assumed when checking reserved concurrency against the rate:
# 62 ms warm measured locally plus Genesys latency (bench.cost), rounded up generously.
BUDGET_PROCESSOR_SECONDS_PER_EVENT = 1.0
# The longest Retry-After the rate-limited retry budget must outlast on average.
BUDGET_MAX_RETRY_AFTER_SECONDS = 60
# REQUEST_BUDGET_WINDOW_SECONDS: Genesys states its limits per minute ("300 requests per minute per
# token"); admission keeps every such window of requests within requestsPerSecond x 60.
BUDGET_LIMIT_WINDOW_SECONDS = 60
# REQUEST_BUDGET_SEND_SPREAD_SECONDS = the dispatcher's maxBatchingWindowSeconds + this: how much later
# than its slot a request may reach Genesys (SQS rounds DelaySeconds up to whole seconds: up to 1 s; the
# start through StartExecution, Step Functions and Lambda: up to 1 s). Measured locally with a 1 s
# batching window: 0.2 to 2.2 s after the slot (bench.throughput).
BUDGET_SEND_SPREAD_BASE_SECONDS = 2

# Alarms
OLDEST_MESSAGE_AGE_ALARM_SECONDS = 15 * 60
PROCESSOR_ERRORS_ALARM_THRESHOLD = 10  # per 5 min: retried 429/5xx are Lambda errors too; failures alarm on executions
ALARM_PERIOD_MINUTES = 5

# --- Genesys facts (reference/genesys.md) ---------------------------------------------
# A partner event source name, as AWS validates it.
PARTNER_SOURCE_PATTERN = re.compile(r"aws\.partner(/[\.\-_A-Za-z0-9]+){2,}")
# The Genesys form: aws.partner/genesys.com/cloud/<orgId>/<eventSourceSuffix>, suffix 1-64 of [A-Za-z0-9._-].
GENESYS_SOURCE_PREFIX = "aws.partner/genesys.com/cloud/"
GENESYS_SOURCE_PATTERN = re.compile(
    r"aws\.partner/genesys\.com/cloud/(?P<org>[^/]+)/(?P<suffix>[\.\-_A-Za-z0-9]{1,64})"
)
TOPIC_TEMPLATE_PATTERN = re.compile(r"v2(\.(\{id\}|[A-Za-z0-9_\-]+))+")
CONVERSATION_TOPIC_PREFIX = "v2.detail.events.conversation.{id}."
# Conversation topics the dispatcher parses (lambdas/genesys_pipeline/events.py SUPPORTED_TOPICS; a test
# keeps this copy equal to it): any other topic would only be dead-lettered, so synth refuses it.
SUPPORTED_TOPIC_SUFFIXES = (
    "acd.start",
    "acd.end",
    "acw",
    "attributes",
    "customer.start",
    "customer.end",
    "flow.start",
    "flow.end",
    "outbound",
    "user.start",
    "user.end",
    "voicemail.start",
    "voicemail.end",
)
# Write-back template placeholders (lambdas/genesys_pipeline/processing.py; a test keeps these equal).
# Every event fills these ({participantId}/{queueId} may be absent on some topics):
TEMPLATE_EVENT_PLACEHOLDERS = (
    "conversationId",
    "participantId",
    "queueId",
    "topic",
    "eventTime",
    "dedupKey",
    "executionName",
    "processedAt",
)
# eventBody fields the processor may template from (KNOWN_EVENT_FIELDS there): every scalar field the
# dispatcher keeps (events.NON_SENSITIVE_BODY_FIELDS) other than queueId, which is above.
TEMPLATE_BODY_FIELDS = (
    "mediaType",
    "provider",
    "direction",
    "sessionId",
    "divisionId",
    "acdOutcome",
    "answeredUserId",
    "disconnectType",
    "routingPriority",
    "connectedDurationMs",
    "flowType",
    "interactingDurationMs",
    "userId",
    "wrapupCode",
    "wrapupDurationMs",
    "flowId",
    "flowVersion",
    "exitReason",
    "transferType",
    "outboundCampaignId",
    "outboundContactListId",
    "voicemailDurationMs",
    "alertingDurationMs",
)
# Body fields only some topics carry (reference/genesys.md: acd.end carries the routing outcome fields; the
# customer.end sample carries interactingDurationMs). A template using one fails, at run time, every event of
# any other topic (the processor raises InvalidEvent), so synth requires every configured topic to carry it.
TEMPLATE_FIELDS_ONLY_ON = {
    "acdOutcome": ("acd.end",),
    "answeredUserId": ("acd.end",),
    "disconnectType": ("acd.end",),
    "connectedDurationMs": ("acd.end",),
    "interactingDurationMs": ("customer.end",),
    # Inferred from the topic names (no sample in the reference): wrap-up is acw's, flow fields the flow
    # topics', campaign fields outbound's, voicemail durations voicemail.end's.
    "wrapupCode": ("acw",),
    "wrapupDurationMs": ("acw",),
    "flowId": ("flow.start", "flow.end"),
    "flowVersion": ("flow.start", "flow.end"),
    "exitReason": ("flow.end",),
    "transferType": ("flow.end",),
    "outboundCampaignId": ("outbound",),
    "outboundContactListId": ("outbound",),
    "voicemailDurationMs": ("voicemail.end",),
}
# Topics whose eventBody carries queueId (acd.start / acd.end carry the routing fields).
QUEUE_SCOPED_TOPIC_SUFFIXES = ("acd.start", "acd.end")
# Writing participant attributes emits ...conversation.{id}.attributes: routing it back to the
# processor would loop forever (reference/genesys.md, "Warning").
FEEDBACK_LOOP_TOPIC_SUFFIXES = ("attributes",)
# AWS region -> Genesys Cloud domain (reference/genesys.md, OAuth section).
GENESYS_DOMAINS_BY_REGION = {
    "us-east-1": "mypurecloud.com",
    "us-east-2": "use2.us-gov-pure.cloud",
    "us-west-2": "usw2.pure.cloud",
    "ca-central-1": "cac1.pure.cloud",
    "sa-east-1": "sae1.pure.cloud",
    "eu-west-1": "mypurecloud.ie",
    "eu-west-2": "euw2.pure.cloud",
    "eu-central-1": "mypurecloud.de",
    "eu-central-2": "euc2.pure.cloud",
    "me-central-1": "mec1.pure.cloud",
    "ap-south-1": "aps1.pure.cloud",
    "ap-southeast-2": "mypurecloud.com.au",
    "ap-northeast-1": "mypurecloud.jp",
    "ap-northeast-2": "apne2.pure.cloud",
    "ap-northeast-3": "apne3.pure.cloud",
}

# CloudWatch Logs data protection (infra/data_protection.py): policy name <stack>-<suffix>.
DATA_PROTECTION_POLICY_SUFFIX = "pii"
