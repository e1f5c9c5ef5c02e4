"""Every patch of moto 5.2.5 the local runtime applies, in one list, each with the moto behaviour it corrects.

A patch replaces attributes of moto classes or modules (through ``_patching``, so that ``remove`` puts
moto back exactly as it was: tests that use plain ``mock_aws`` in the same process must not see our
behaviour). The replacements live in the adapter modules beside the rest of their service's gap
(``dynamodb``, ``eventbridge``, ``lambda_runtime``, ``moto_server``, ``sqs_poller``, ``sqs_queue``,
``stepfunctions``); this list is where they are applied. Remove a patch by deleting its entry (and then
the replacement it names). Each is covered by a test in tests/local/ that runs moto's real behaviour through it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from . import _patching, dynamodb, eventbridge, lambda_runtime, moto_server, sqs_poller, sqs_queue, stepfunctions


@dataclass(frozen=True)
class Replacement:
    owner: str  # "package.module:Class", or "package.module" for a module attribute
    attribute: str
    make: Callable[[Any], Any]  # the original attribute -> what replaces it

    def resolve_owner(self) -> Any:
        module, _, name = self.owner.partition(":")
        found = importlib.import_module(module)
        return getattr(found, name) if name else found


@dataclass(frozen=True)
class MotoPatch:
    corrects: str  # the moto behaviour this patch corrects
    replaces: tuple[Replacement, ...]


def _instead(new: Any) -> Callable[[Any], Any]:
    """A replacement that does not call the original."""
    return lambda original: new


PATCHES: tuple[MotoPatch, ...] = (
    MotoPatch(
        "DynamoDB: an item write checks its ConditionExpression and applies the update without a lock, so two "
        "writes conditional on the same version both succeed (DynamoDB applies one and refuses the other)",
        tuple(
            Replacement("moto.dynamodb.models:DynamoDBBackend", name, dynamodb.atomic)
            for name in dynamodb.ATOMIC_OPERATIONS
        ),
    ),
    MotoPatch(
        "Lambda: the Docker-less backend's Invoke only echoes its payload; the handler never runs",
        (Replacement("moto.awslambda_simple.models:LambdaSimpleBackend", "invoke", _instead(lambda_runtime.invoke)),),
    ),
    MotoPatch(
        "EventBridge: a bus name keeps only what follows its last '/', so a partner bus "
        "(aws.partner/genesys.com/...) does not exist for put_rule, put_targets or put_events",
        (
            Replacement(
                "moto.events.models:EventsBackend",
                "_normalize_event_bus_arn",
                _instead(eventbridge.normalize_event_bus_arn),
            ),
        ),
    ),
    MotoPatch(
        "EventBridge: a target without an InputTransformer gets moto's default template, which drops "
        "`account` and reorders the envelope",
        (Replacement("moto.events.models:EventTemplateParser", "parse", eventbridge.template_parse),),
    ),
    MotoPatch(
        "EventBridge: a rule with a Lambda target raises NotImplementedError",
        (Replacement("moto.events.models:Rule", "send_to_targets", eventbridge.send_to_targets),),
    ),
    MotoPatch(
        "EventBridge: PutPartnerEvents delivers to the default bus of the subscribed account and answers no "
        "entries (on AWS the event goes to the bus created from its event source, with an EventId)",
        (
            Replacement(
                "moto.events.models:EventsBackend", "put_partner_events", _instead(eventbridge.put_partner_events)
            ),
            Replacement(
                "moto.events.responses:EventsHandler",
                "put_partner_events",
                _instead(eventbridge.put_partner_events_response),
            ),
        ),
    ),
    MotoPatch(
        "EventBridge: TestEventPattern answers nothing",
        (
            Replacement(
                "moto.events.responses:EventsHandler",
                "test_event_pattern",
                _instead(eventbridge.test_event_pattern_response),
            ),
        ),
    ),
    MotoPatch(
        "SQS -> Lambda: moto's own event source mapping invokes once per sent message, with no batching, "
        "partial batch failures, visibility or maxReceiveCount (sqs_poller's pollers do that instead)",
        (
            Replacement(
                "moto.awslambda.models:LambdaBackend",
                "create_event_source_mapping",
                sqs_poller.create_event_source_mapping,
            ),
        ),
    ),
    MotoPatch(
        "Server mode: every request lists moto's package directory (listdir plus an isdir per entry, about "
        "1.4 ms) inside the one lock that picks the request's service",
        (Replacement("moto.backends", "list_of_moto_modules", moto_server.listed_once),),
    ),
    MotoPatch(
        "SQS: two concurrent ReceiveMessage calls can take the same message (visibility checked, then marked "
        "received, nothing between): it is handed out twice, and the first receiver's delete does not take",
        (
            Replacement("moto.sqs.models:SQSBackend", "receive_message", sqs_queue.atomic_receive),
            *(
                Replacement("moto.sqs.models:SQSBackend", name, sqs_queue.under_queue_lock)
                for name in ("delete_message", "change_message_visibility")
            ),
        ),
    ),
    MotoPatch(
        "SQS: every count of a queue's messages reads the clock per message, and SendMessage (through "
        "Queue.attributes) and ReceiveMessage (the retention check, per message returned) count the whole queue: "
        "quadratic with thousands of messages waiting (59 % of the emulator's GIL time in a 5,000-event run)",
        (
            *(
                Replacement("moto.sqs.models:Queue", count.__name__, _instead(property(count)))
                for count in sqs_queue.COUNTS
            ),
            Replacement(
                "moto.sqs.models:SQSBackend",
                "is_message_valid_based_on_retention_period",
                _instead(sqs_queue.message_within_retention),
            ),
        ),
    ),
    MotoPatch(
        "Step Functions: an ASL Retry sleeps its whole backoff in real time (scaled here by RETRY_CLOCK)",
        (
            Replacement(
                "moto.stepfunctions.parser.asl.component.common.retry.retrier_decl",
                "time",
                _instead(stepfunctions.RETRY_CLOCK),
            ),
        ),
    ),
    MotoPatch(
        "Step Functions: StopExecution does not end a Retry wait; the execution stops, and its ABORTED status "
        "change is emitted, only when the wait is over (RETRY_CLOCK.sleep ends early once it knows the execution)",
        (
            Replacement(
                "moto.stepfunctions.parser.asl.component.common.retry.retrier_decl:RetrierDecl",
                "_eval_body",
                stepfunctions.retrier_with_environment,
            ),
        ),
    ),
    MotoPatch(
        "Step Functions, EventBridge: every JSONPath (an ASL path, an input template's) is parsed anew, a ply "
        "parser built per call (about 2 ms): a large share of the local Step Functions' CPU under load",
        tuple(
            Replacement(owner, "parse", stepfunctions.cached_jsonpath_parse)
            for owner in (
                "jsonpath_ng.ext",
                "moto.stepfunctions.parser.asl.utils.json_path",
                "moto.stepfunctions.parser.asl.component.common.path.result_path",
            )
        ),
    ),
    MotoPatch(
        "Step Functions: a Lambda task builds a new boto3 client per invocation (about 7 ms of CPU each: 13 % of "
        "the emulator's GIL time in a 5,000-event run)",
        (
            Replacement(
                "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils",
                "boto_client_for",
                stepfunctions.reused_lambda_client,
            ),
        ),
    ),
    MotoPatch(
        "Step Functions: an execution is listed before it has a status (None until start()), so a ListExecutions "
        "in that window fails with AttributeError (on AWS it is RUNNING from creation)",
        (
            Replacement(
                "moto.stepfunctions.parser.backend.execution:Execution", "__init__", stepfunctions.execution_init
            ),
        ),
    ),
    MotoPatch(
        "Step Functions: no 'Execution Status Change' events reach the default bus (the error logger hangs off them)",
        (
            Replacement(
                "moto.stepfunctions.parser.backend.execution:Execution", "start", stepfunctions.execution_start
            ),
            Replacement(
                "moto.stepfunctions.parser.backend.execution:BaseExecutionWorkerCommunication",
                "terminated",
                stepfunctions.terminated,
            ),
        ),
    ),
)


def install() -> None:
    """Apply every patch (idempotent: an attribute already replaced is left as it is)."""
    for patch in PATCHES:
        for r in patch.replaces:
            owner = r.resolve_owner()
            if not _patching.is_patched(owner, r.attribute):
                _patching.replace(owner, r.attribute, r.make(_patching.original(owner, r.attribute)))


def remove() -> None:
    """Put moto back exactly as it was."""
    _patching.restore_all()


__all__ = ["PATCHES", "MotoPatch", "Replacement", "install", "remove"]
