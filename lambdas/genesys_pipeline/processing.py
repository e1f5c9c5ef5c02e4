"""The processor's logic: render the write-back from an event, write it to Genesys exactly once.

Input is the Step Functions Process task's payload (docs/contracts.md):
``{"event": GenesysEvent.to_execution_input(), "executionName", "executionArn", "executionStartTime", "retryCount"}``.

Write-back: ``PATCH .../participants/{participantId}/attributes`` with
``ProcessorSettings.attribute_map`` (attribute name -> template), and when
``external_tag`` is set, ``PUT .../conversations/{id}/tags``. Participant
attributes need a participant: an event without ``participantId`` is an
``InvalidEvent`` (unless the only write configured is the conversation-level tag).

Budget: the first attempt's requests were paid for by the dispatcher's admission; a retry
(``retryCount`` > 0) spends them from the environment's request budget as it goes, without
waiting on it (genesys_pipeline.budget explains why).

What to write is a ``WriteBackPolicy``: the templates above by default, or the
code hook ``WRITE_BACK_PLUGIN`` (genesys_pipeline/write_back.py), which may also
return None to skip the event (outcome ``skipped``).

Exactly once: Powertools idempotency (DynamoDB, key = the dedup key) wraps the
decision and the Genesys write, so a Step Functions retry after a Lambda timeout,
or a redrive, returns the stored result instead of deciding and writing again.
When an attempt dies after its write landed but before its record completed, the next
attempt writes again: every placeholder is therefore stable across attempts (``processedAt``
is the execution's start time), so the repeated write is identical to the first.

A transient fault of the idempotency table (throttling, 5xx, an unreachable endpoint) is
raised as ``AwsDependencyUnavailable``, which the state machine retries; a permanent one
(access denied, a missing table) keeps Powertools' error and fails at once.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

from . import write_back as plugins
from .aws_faults import dependency_unavailable
from .budget import RequestBudget, spend_best_effort
from .errors import InvalidEvent
from .events import NON_SENSITIVE_BODY_FIELDS
from .model import GenesysEvent
from .observability import logger, record_end_to_end_lag, record_outcome
from .outcomes import Outcome
from .redaction import SENSITIVE_KEYS
from .settings import ProcessorSettings, SettingsError

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

# Placeholders every event can fill (participantId and queueId may be absent at run time).
EVENT_PLACEHOLDERS = frozenset(
    {"conversationId", "participantId", "queueId", "topic", "eventTime", "dedupKey", "executionName", "processedAt"}
)
# eventBody fields templates may use: every scalar field the dispatcher keeps (its allowlist,
# events.NON_SENSITIVE_BODY_FIELDS), so one list decides what leaves the event. queueId is above.
KNOWN_EVENT_FIELDS = NON_SENSITIVE_BODY_FIELDS - EVENT_PLACEHOLDERS
IDEMPOTENCY_DEPENDENCY = "idempotency table"  # names the dependency in AwsDependencyUnavailable
# Few SDK attempts, said explicitly: a throttled or failing table then surfaces within seconds as
# AwsDependencyUnavailable and Step Functions owns the backoff (retries.awsDependency), rather
# than the SDK sleeping through the processor's timeout.
IDEMPOTENCY_SDK_MAX_ATTEMPTS = 3  # in all, the first call included
IDEMPOTENCY_CLIENT_SETTINGS = {
    "retries": {"mode": "standard", "total_max_attempts": IDEMPOTENCY_SDK_MAX_ATTEMPTS},
    "connect_timeout": 3,
    "read_timeout": 5,
}  # a botocore Config, built on first use
IDEMPOTENCY_KEY_PREFIX = "genesys-write-back"  # record id = "<prefix>#<md5(dedup key)>"; stable across function renames


class GenesysWriter(Protocol):
    """The slice of GenesysClient the processor needs (an in-memory fake is a drop-in)."""

    def patch_participant_attributes(
        self, conversation_id: str, participant_id: str, attributes: Mapping[str, str]
    ) -> None: ...

    def put_external_tag(self, conversation_id: str, external_tag: str) -> None: ...


# ---------------------------------------------------------------------------- templates


@dataclass(frozen=True)
class AttributeTemplate:
    """A template such as ``"{acdOutcome} at {processedAt}"``, parsed and checked once."""

    name: str  # the attribute (or "externalTag")
    text: str
    parts: tuple[tuple[str, str | None], ...]  # (literal text, placeholder or None)

    @classmethod
    def compile(cls, name: str, text: str, *, setting: str) -> "AttributeTemplate":
        where = f"{setting} {name!r}"
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise SettingsError(
                f"{where}: template {text!r} is malformed ({exc}); use {{placeholder}} and {{{{ }}}} for braces"
            ) from None
        parts = []
        for literal, placeholder, spec, conversion in parsed:
            if placeholder is not None:
                if spec or conversion:
                    raise SettingsError(f"{where}: {{{placeholder}}} may not carry a format spec or conversion")
                _check_placeholder(where, placeholder)
            parts.append((literal, placeholder))
        return cls(name, text, tuple(parts))

    @property
    def placeholders(self) -> frozenset[str]:
        return frozenset(p for _, p in self.parts if p is not None)

    def render(self, values: Mapping[str, Any]) -> str:
        out = []
        for literal, placeholder in self.parts:
            out.append(literal)
            if placeholder is not None:
                value = values.get(placeholder)
                if value is None or value == "":
                    raise InvalidEvent(
                        f"attribute {self.name!r} needs {placeholder} (detail.eventBody.{placeholder}), which this event lacks"
                    )
                out.append(_text(value))
        return "".join(out)


def _check_placeholder(where: str, placeholder: str) -> None:
    if placeholder == "" or placeholder.isdigit():
        raise SettingsError(f"{where}: positional placeholders like {{}} are not allowed; name a field")
    if placeholder.lower() in SENSITIVE_KEYS:
        raise SettingsError(f"{where}: {{{placeholder}}} is customer data; the pipeline never carries it")
    if placeholder not in EVENT_PLACEHOLDERS and placeholder not in KNOWN_EVENT_FIELDS:
        known = ", ".join(sorted(EVENT_PLACEHOLDERS | KNOWN_EVENT_FIELDS))
        raise SettingsError(f"{where}: unknown placeholder {{{placeholder}}}; known: {known}")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class WriteBackTemplates:
    attributes: tuple[AttributeTemplate, ...]
    external_tag: AttributeTemplate | None

    @classmethod
    def from_settings(cls, settings: ProcessorSettings) -> "WriteBackTemplates":
        """Checks every template at cold start, so a typo fails the first invocation with the bad key named."""
        attributes = []
        for name, text in settings.attribute_map.items():
            if not name.strip():
                raise SettingsError("ATTRIBUTE_MAP: attribute names must be non-empty")
            attributes.append(AttributeTemplate.compile(name, text, setting="ATTRIBUTE_MAP attribute"))
        tag = (
            AttributeTemplate.compile("externalTag", settings.external_tag, setting="EXTERNAL_TAG")
            if settings.external_tag
            else None
        )
        if not attributes and tag is None:
            raise SettingsError("ATTRIBUTE_MAP is empty and EXTERNAL_TAG is unset: the processor would write nothing")
        return cls(tuple(attributes), tag)

    def decide(self, event: GenesysEvent, *, execution_name: str, processed_at: str) -> "WriteBack":
        return self.render(event, execution_name=execution_name, processed_at=processed_at)

    def render(self, event: GenesysEvent, *, execution_name: str, processed_at: str) -> "WriteBack":
        if self.attributes and not event.participant_id:
            raise InvalidEvent("participant attributes need detail.eventBody.participantId; this event has none")
        values: dict[str, Any] = {
            **event.fields,
            "conversationId": event.conversation_id,
            "participantId": event.participant_id,
            "queueId": event.queue_id or event.fields.get("queueId"),
            "topic": event.topic,
            "eventTime": event.event_time,
            "dedupKey": event.dedup_key,
            "executionName": execution_name,
            "processedAt": processed_at,
        }
        return WriteBack(
            dedup_key=event.dedup_key,
            conversation_id=event.conversation_id,
            participant_id=event.participant_id,
            attributes={t.name: t.render(values) for t in self.attributes},
            external_tag=self.external_tag.render(values) if self.external_tag else None,
        )


@dataclass(frozen=True)
class WriteBack:
    dedup_key: str
    conversation_id: str
    participant_id: str | None
    attributes: dict[str, str]
    external_tag: str | None


class WriteBackPolicy(Protocol):
    """Decides what one event writes back; None means skip it (outcome skipped)."""

    def decide(self, event: GenesysEvent, *, execution_name: str, processed_at: str) -> WriteBack | None: ...


class PluginWriteBack:
    """WRITE_BACK_PLUGIN: the function is imported once (cold start), called per event with a WriteBackEvent."""

    def __init__(self, spec: plugins.PluginSpec):
        self.spec = spec
        self._plugin = plugins.load_plugin(spec)

    def decide(self, event: GenesysEvent, *, execution_name: str, processed_at: str) -> WriteBack | None:
        view = plugins.WriteBackEvent.of(event, execution_name=execution_name, processed_at=processed_at)
        request = plugins.call_plugin(self.spec, self._plugin, view)
        if request is None:
            return None
        if request.attributes and not event.participant_id:
            raise InvalidEvent("participant attributes need detail.eventBody.participantId; this event has none")
        return WriteBack(
            event.dedup_key, event.conversation_id, event.participant_id, dict(request.attributes), request.external_tag
        )


def write_back_policy(settings: ProcessorSettings) -> WriteBackPolicy:
    if settings.write_back_plugin:
        return PluginWriteBack(plugins.PluginSpec.parse(settings.write_back_plugin))
    return WriteBackTemplates.from_settings(settings)


# ---------------------------------------------------------------------------- the Process task


@dataclass(frozen=True)
class ProcessRequest:
    event: GenesysEvent
    execution_name: str
    execution_arn: str | None
    retry_count: int
    execution_start_time: datetime | None  # $$.Execution.StartTime: the same for every retry and redrive

    @classmethod
    def from_payload(cls, payload: Any) -> "ProcessRequest":
        if not isinstance(payload, dict):
            raise InvalidEvent("processor input must be a JSON object")
        if "event" not in payload:
            raise InvalidEvent("processor input has no event (expected the Process task payload)")
        event = GenesysEvent.from_execution_input(payload["event"])
        execution_name = payload.get("executionName") or event.dedup_key  # execution name = dedup key
        retry_count = payload.get("retryCount", 0)
        if not isinstance(execution_name, str):
            raise InvalidEvent("processor input field executionName must be a string")
        if isinstance(retry_count, bool) or not isinstance(retry_count, int) or retry_count < 0:
            raise InvalidEvent("processor input field retryCount must be a non-negative integer")
        return cls(
            event,
            execution_name,
            payload.get("executionArn"),
            retry_count,
            _start_time(payload.get("executionStartTime")),
        )

    def processed_at(self, now: Callable[[], datetime]) -> str:
        """The ``processedAt`` placeholder: the execution's start time, so that a repeated write is
        identical. Without it (an execution of a definition older than this field), the clock."""
        moment = self.execution_start_time or now()
        return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _start_time(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        # Step Functions writes ISO 8601 with a Z ("2026-11-23T12:00:00.123Z"); fromisoformat takes it on 3.11+.
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise InvalidEvent("processor input field executionStartTime must be an ISO 8601 time with an offset")
    return parsed


def _mark_duplicate(response: dict[str, Any], idempotent_data: DataRecord) -> dict[str, Any]:
    # Called by Powertools only when the result comes from the idempotency store, i.e. an
    # earlier attempt (see response["writtenBy"]) already wrote: this attempt wrote nothing.
    return {**response, "outcome": Outcome.DUPLICATE.value}


class Processor:
    def __init__(
        self,
        settings: ProcessorSettings,
        genesys: GenesysWriter,
        *,
        persistence_store: BasePersistenceLayer | None = None,
        budget: RequestBudget | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ):
        # Imported here, when the handler builds its Processor on the first invocation: not at module import,
        # which stays within the cold-import budget (bench.coldstart).
        from aws_lambda_powertools.utilities.idempotency import (
            DynamoDBPersistenceLayer,
            IdempotencyConfig,
            idempotent_function,
        )
        from botocore.config import Config

        self.policy = write_back_policy(settings)
        self._genesys = genesys
        self._budget = budget
        self._now = now
        self.idempotency = IdempotencyConfig(
            event_key_jmespath="dedupKey",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=settings.idempotency_ttl_seconds,
            response_hook=_mark_duplicate,
        )
        # Powertools defaults: partition key "id" (S), TTL attribute "expiration".
        store = persistence_store or DynamoDBPersistenceLayer(
            table_name=settings.idempotency_table, boto_config=Config(**IDEMPOTENCY_CLIENT_SETTINGS)
        )
        self.idempotency_store = store
        self._write_once = idempotent_function(
            data_keyword_argument="write",
            persistence_store=store,
            config=self.idempotency,
            key_prefix=IDEMPOTENCY_KEY_PREFIX,
        )(self._decide_and_write)

    def process(self, payload: Any, lambda_context: Any = None) -> dict[str, Any]:
        request = ProcessRequest.from_payload(payload)
        if lambda_context is not None:
            # An in-progress record then expires with this invocation, so a retry after a timeout is not blocked.
            self.idempotency.register_lambda_context(lambda_context)
        processed_at = request.processed_at(self._now)
        event = request.event
        # The decision runs inside the idempotent section: a retry after a landed write gets the stored
        # result without asking the policy (a plugin) again.
        write_request = {
            "dedupKey": event.dedup_key,
            "event": event.to_execution_input(),
            "writtenBy": {
                "executionName": request.execution_name,
                "executionArn": request.execution_arn,
                "retryCount": request.retry_count,
                "processedAt": processed_at,
            },
        }
        from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyPersistenceLayerError

        try:
            result: dict[str, Any] = self._write_once(write=write_request)
        except IdempotencyPersistenceLayerError as exc:
            # Powertools wraps every store failure (save in-progress, get, save success, delete) in this
            # one error, the botocore error as its cause. Only the cause says whether a retry can help.
            unavailable = dependency_unavailable(exc, IDEMPOTENCY_DEPENDENCY)
            if unavailable is None:
                raise
            raise unavailable from exc
        outcome = Outcome(result["outcome"])
        reason = None
        if outcome is Outcome.SKIPPED and isinstance(self.policy, PluginWriteBack):
            reason = f"write-back plugin {self.policy.spec} returned None"
        if outcome is Outcome.APPLIED:
            record_end_to_end_lag(datetime.fromisoformat(event.event_time), self._now())
        written_by = result.get("writtenBy")
        record_outcome(
            outcome,
            dedup_key=event.dedup_key,
            reason=reason,
            topic=event.topic,
            conversation_id=event.conversation_id,
            participant_id=event.participant_id,
            attributes=result["attributes"],
            written_by=written_by,  # the execution that wrote it: for a cached result, an earlier one
            # The execution that concluded it (this one): a local replay's line then supersedes the replayed
            # execution's failure in the ledger, as a redrive's last outcome does on AWS.
            execution_name=request.execution_name,
        )
        return result

    def _decide_and_write(self, write: dict[str, Any]) -> dict[str, Any]:
        event = GenesysEvent.from_execution_input(write["event"])
        written_by = write["writtenBy"]
        decided = self.policy.decide(
            event, execution_name=written_by["executionName"], processed_at=written_by["processedAt"]
        )
        if decided is None:
            return {
                "outcome": Outcome.SKIPPED.value,
                "dedupKey": event.dedup_key,
                "conversationId": event.conversation_id,
                "participantId": event.participant_id,
                "attributes": [],
                "externalTag": False,
                "writtenBy": written_by,
            }
        return self._write(
            {
                "dedupKey": decided.dedup_key,
                "conversationId": decided.conversation_id,
                "participantId": decided.participant_id,
                "attributes": decided.attributes,
                "externalTag": decided.external_tag,
                "writtenBy": written_by,
            }
        )

    def _write(self, write: dict[str, Any]) -> dict[str, Any]:
        if self._budget is not None and write["writtenBy"]["retryCount"] > 0:
            spend_best_effort(self._budget, int(bool(write["attributes"])) + int(write["externalTag"] is not None))
        if write["attributes"]:
            self._genesys.patch_participant_attributes(
                write["conversationId"], write["participantId"], write["attributes"]
            )
        if write["externalTag"] is not None:
            self._genesys.put_external_tag(write["conversationId"], write["externalTag"])
        logger.debug("Genesys write-back done", extra={"attributes": sorted(write["attributes"])})
        return {
            "outcome": Outcome.APPLIED.value,
            "dedupKey": write["dedupKey"],
            "conversationId": write["conversationId"],
            "participantId": write["participantId"],
            "attributes": sorted(write["attributes"]),
            "externalTag": write["externalTag"] is not None,
            "writtenBy": write["writtenBy"],
        }
