"""The write-back extension point: a code hook that decides what the processor writes.

``writeBack.plugin: "module:function"`` in cdk.json names a function in a module of the
asset folder ``lambdas/extensions/`` (env var ``WRITE_BACK_PLUGIN``). The processor
imports it once per container (cold start) and calls it inside the Process task with a
``WriteBackEvent``; it returns a ``WriteBackRequest`` (the attributes and tag to write)
or ``None`` to skip the event (outcome ``skipped``, metric ``EventsSkipped``).

The contract, and why:
* the plugin sees only what the dispatcher keeps (identity, routing fields and the
  allowlisted body fields of ``events.NON_SENSITIVE_BODY_FIELDS``), filtered again here:
  ``ani``, ``dnis``, ``externalContactId`` never reach plugin code;
* it runs inside the idempotent section, so a retry after a landed write returns the
  stored result without calling the plugin again: exactly-once holds whatever it returns;
* an exception it raises (a bug) becomes ``WriteBackPluginError``, which the state machine
  does not retry: the execution fails at Process and is redrivable once the plugin is fixed.
  Named pipeline errors it raises (``InvalidEvent``, ``GenesysUnavailable``...) keep their
  name, so they keep their retry policy.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

from .errors import GenesysError, InvalidEvent, WriteBackPluginError
from .events import NON_SENSITIVE_BODY_FIELDS
from .model import GenesysEvent
from .settings import SettingsError

EXTENSIONS_PACKAGE = "extensions"  # lambdas/extensions/: inside the Lambda asset, so it ships with the code


@dataclass(frozen=True)
class WriteBackEvent:
    """What a plugin may see of an event: no customer identifiers."""

    conversation_id: str
    participant_id: str | None
    queue_id: str | None
    topic: str  # template, e.g. v2.detail.events.conversation.{id}.acd.end
    event_time: str  # ISO 8601 UTC
    dedup_key: str
    execution_name: str
    processed_at: str  # ISO 8601 UTC
    fields: Mapping[str, Any] = field(default_factory=dict)  # allowlisted scalar body fields (read-only)

    @property
    def topic_suffix(self) -> str:
        """``acd.end`` for ``v2.detail.events.conversation.{id}.acd.end``."""
        return self.topic.split("{id}.", 1)[-1]

    @classmethod
    def of(cls, event: GenesysEvent, *, execution_name: str, processed_at: str) -> "WriteBackEvent":
        return cls(
            conversation_id=event.conversation_id,
            participant_id=event.participant_id,
            queue_id=event.queue_id or event.fields.get("queueId"),
            topic=event.topic,
            event_time=event.event_time,
            dedup_key=event.dedup_key,
            execution_name=execution_name,
            processed_at=processed_at,
            # Filtered again: the execution input is the dispatcher's, but a hand-started execution may carry anything.
            fields=MappingProxyType({k: v for k, v in event.fields.items() if k in NON_SENSITIVE_BODY_FIELDS}),
        )


@dataclass(frozen=True)
class WriteBackRequest:
    """What to write: participant attributes (string to string) and/or the conversation's external tag."""

    attributes: Mapping[str, str] = field(default_factory=dict)
    external_tag: str | None = None


WriteBackPlugin = Callable[[WriteBackEvent], "WriteBackRequest | None"]


@dataclass(frozen=True)
class PluginSpec:
    module: str  # relative to lambdas/extensions/
    function: str

    @classmethod
    def parse(cls, text: str) -> "PluginSpec":
        module, sep, function = text.strip().partition(":")
        if not sep or not module or not function or not all(p.isidentifier() for p in (*module.split("."), function)):
            raise SettingsError(
                f"WRITE_BACK_PLUGIN: {text!r} is not 'module:function'; expected e.g. "
                "'acd_summary:write_back' for lambdas/extensions/acd_summary.py"
            )
        return cls(module, function)

    def __str__(self) -> str:
        return f"{self.module}:{self.function}"


def load_plugin(spec: PluginSpec) -> WriteBackPlugin:
    """Import the plugin at cold start: a bad path fails the first invocation with one line naming it."""
    name = f"{EXTENSIONS_PACKAGE}.{spec.module}"
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name in (EXTENSIONS_PACKAGE, name):
            raise SettingsError(
                f"WRITE_BACK_PLUGIN {spec}: no module lambdas/{EXTENSIONS_PACKAGE}/"
                f"{spec.module.replace('.', '/')}.py in the code asset; add it or fix writeBack.plugin "
                "in cdk.json"
            ) from None
        raise SettingsError(
            f"WRITE_BACK_PLUGIN {spec}: importing {name} failed: {exc}; add the missing module "
            "to lambdas/requirements.txt or lambdas/extensions/"
        ) from None
    except Exception as exc:  # noqa: BLE001 - any import-time bug, named once
        raise SettingsError(
            f"WRITE_BACK_PLUGIN {spec}: importing {name} raised {type(exc).__name__}: {exc}; fix the module"
        ) from None
    function: Callable[[WriteBackEvent], WriteBackRequest | None] | None = getattr(module, spec.function, None)
    if not callable(function):
        raise SettingsError(
            f"WRITE_BACK_PLUGIN {spec}: {name} defines no function {spec.function!r}; "
            "define it or fix writeBack.plugin in cdk.json"
        )
    return function


def checked_request(spec: PluginSpec, result: Any) -> WriteBackRequest | None:
    """The plugin's return value, or a WriteBackPluginError that says what was wrong and where."""
    where = f"write-back plugin {spec} (lambdas/{EXTENSIONS_PACKAGE}/{spec.module.replace('.', '/')}.py)"
    if result is None:
        return None
    if not isinstance(result, WriteBackRequest):
        raise WriteBackPluginError(
            f"{where} returned {type(result).__name__}; expected WriteBackRequest "
            "(genesys_pipeline.write_back) or None to skip"
        )
    attributes = result.attributes
    if not isinstance(attributes, Mapping) or not all(
        isinstance(k, str) and k.strip() and isinstance(v, str) for k, v in attributes.items()
    ):
        raise WriteBackPluginError(f"{where} returned attributes that are not a mapping of non-empty str to str")
    if result.external_tag is not None and (not isinstance(result.external_tag, str) or not result.external_tag):
        raise WriteBackPluginError(f"{where} returned an external_tag that is not a non-empty str")
    if not attributes and result.external_tag is None:
        raise WriteBackPluginError(f"{where} returned a WriteBackRequest with nothing to write; return None to skip")
    return WriteBackRequest(dict(attributes), result.external_tag)


def call_plugin(spec: PluginSpec, plugin: WriteBackPlugin, event: WriteBackEvent) -> WriteBackRequest | None:
    try:
        result = plugin(event)
    except (InvalidEvent, GenesysError):
        raise  # named errors keep their retry policy
    except Exception as exc:  # a plugin bug: fail at Process, redrivable once fixed
        raise WriteBackPluginError(f"write-back plugin {spec} raised {type(exc).__name__}: {exc}") from exc
    return checked_request(spec, result)
