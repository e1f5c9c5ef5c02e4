"""Environment variables, parsed once at cold start into typed settings.

This module is the contract between the Lambdas and whatever deploys them
(infra/ for AWS, gcpipe.local for the local stack): every variable a handler
reads is named here and nowhere else. A missing or invalid variable raises
``SettingsError`` naming it, so a bad deployment fails on its first invocation
with a clear message instead of mid-batch.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Mapping

# Genesys retries delivery for up to 4 days after an AWS outage
# (reference/genesys.md); the default max age must not drop those.
DEFAULT_MAX_EVENT_AGE_SECONDS = 5 * 24 * 3600

DEFAULT_ATTRIBUTE_MAP = {
    "aws_processed": "true",
    "aws_processed_at": "{processedAt}",
    "aws_pipeline_execution": "{executionName}",
}


class SettingsError(ValueError):
    pass


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SettingsError(f"environment variable {name} is required but not set")
    return value


def _csv(env: Mapping[str, str], name: str) -> frozenset[str]:
    return frozenset(v.strip() for v in env.get(name, "").split(",") if v.strip())


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"environment variable {name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"environment variable {name} must be >= {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"environment variable {name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise SettingsError(f"environment variable {name} must be > 0, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("true", "1", "yes"):
        return True
    if raw in ("false", "0", "no"):
        return False
    raise SettingsError(f"environment variable {name} must be true or false, got {raw!r}")


def _json_object(env: Mapping[str, str], name: str, default: dict[str, str]) -> dict[str, str]:
    raw = env.get(name, "").strip()
    if not raw:
        return dict(default)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"environment variable {name} must be a JSON object: {exc}") from None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise SettingsError(f"environment variable {name} must be a JSON object of string to string")
    return value


UNSET_ENVIRONMENT = "unset"


def metrics_environment(env: Mapping[str, str] | None = None) -> str:
    """ENVIRONMENT: the cdk.json environment name, the ``environment`` dimension of every metric.

    Read at import by observability (metrics exist before any settings); infra and the local stack set
    it on every function. Outside a deployment (unit tests) it is ``unset``, a series no alarm watches.
    """
    env = os.environ if env is None else env
    return env.get("ENVIRONMENT", "").strip() or UNSET_ENVIRONMENT


@dataclass(frozen=True)
class BudgetSettings:
    """The environment's Genesys request budget (genesys_pipeline.budget); absent = no budget."""

    table_name: str  # REQUEST_BUDGET_TABLE: unset means the environment has no budget (genesysRateLimit null)
    key: str  # REQUEST_BUDGET_KEY: the state item's id, default "genesys"
    requests_per_second: float  # REQUEST_BUDGET_RATE
    burst: int  # REQUEST_BUDGET_BURST
    pause_cache_seconds: float = (
        1.0  # REQUEST_BUDGET_PAUSE_CACHE_SECONDS: how stale a container's view of a 429 pause may be
    )
    # REQUEST_BUDGET_WINDOW_SECONDS: the window Genesys counts its limit over (per minute).
    window_seconds: float = 60.0
    # REQUEST_BUDGET_SEND_SPREAD_SECONDS: how much later than its slot a request may reach Genesys.
    send_spread_seconds: float = 3.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "BudgetSettings | None":
        env = os.environ if env is None else env
        table = env.get("REQUEST_BUDGET_TABLE", "").strip()
        if not table:
            return None
        rate = env.get("REQUEST_BUDGET_RATE", "").strip()
        if not rate:
            raise SettingsError("environment variable REQUEST_BUDGET_RATE is required when REQUEST_BUDGET_TABLE is set")
        settings = cls(
            table_name=table,
            key=env.get("REQUEST_BUDGET_KEY", "").strip() or "genesys",
            requests_per_second=_float(env, "REQUEST_BUDGET_RATE", 1.0),
            burst=_int(env, "REQUEST_BUDGET_BURST", 1, minimum=1),
            pause_cache_seconds=_float(env, "REQUEST_BUDGET_PAUSE_CACHE_SECONDS", 1.0),
            window_seconds=_float(env, "REQUEST_BUDGET_WINDOW_SECONDS", 60.0),
            send_spread_seconds=_float(env, "REQUEST_BUDGET_SEND_SPREAD_SECONDS", 3.0),
        )
        if settings.burst >= settings.requests_per_second * settings.window_seconds:
            raise SettingsError(
                f"environment variable REQUEST_BUDGET_BURST {settings.burst} fills the "
                f"{settings.window_seconds:g} s window at REQUEST_BUDGET_RATE "
                f"{settings.requests_per_second:g}; expected a smaller burst"
            )
        return settings


@dataclass(frozen=True)
class DispatcherSettings:
    state_machine_arn: str  # STATE_MACHINE_ARN
    dead_letter_queue_url: str  # DEAD_LETTER_QUEUE_URL: the main queue's DLQ
    org_id: str | None  # GENESYS_ORG_ID: when set, events from other orgs are dead-lettered
    topics: frozenset[str]  # ALLOWED_TOPICS: topic templates, "v2.detail.events.conversation.{id}.acd.end,..."
    queue_ids: frozenset[str]  # ALLOWED_QUEUE_IDS: empty means no queue filter
    max_event_age_seconds: int  # MAX_EVENT_AGE_SECONDS
    start_concurrency: int  # START_EXECUTION_CONCURRENCY: parallel StartExecution calls per batch
    budget: BudgetSettings | None = None  # REQUEST_BUDGET_*: admission against the Genesys request budget
    main_queue_url: str | None = None  # MAIN_QUEUE_URL: where deferred events wait (required with a budget)
    requests_per_event: int = 1  # GENESYS_REQUESTS_PER_EVENT: Genesys requests one event costs (1 PATCH, +1 with a tag)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "DispatcherSettings":
        env = os.environ if env is None else env
        topics = _csv(env, "ALLOWED_TOPICS")
        if not topics:
            raise SettingsError("environment variable ALLOWED_TOPICS is required but not set")
        return cls(
            state_machine_arn=_required(env, "STATE_MACHINE_ARN"),
            dead_letter_queue_url=_required(env, "DEAD_LETTER_QUEUE_URL"),
            org_id=env.get("GENESYS_ORG_ID", "").strip() or None,
            topics=topics,
            queue_ids=_csv(env, "ALLOWED_QUEUE_IDS"),
            max_event_age_seconds=_int(env, "MAX_EVENT_AGE_SECONDS", DEFAULT_MAX_EVENT_AGE_SECONDS, minimum=60),
            start_concurrency=_int(env, "START_EXECUTION_CONCURRENCY", 10, minimum=1),
            budget=(budget := BudgetSettings.from_env(env)),
            main_queue_url=_required(env, "MAIN_QUEUE_URL")
            if budget
            else (env.get("MAIN_QUEUE_URL", "").strip() or None),
            requests_per_event=_int(env, "GENESYS_REQUESTS_PER_EVENT", 1, minimum=1),
        )


@dataclass(frozen=True)
class GenesysSettings:
    domain: str  # GENESYS_DOMAIN, e.g. mypurecloud.com
    secret_name: str  # GENESYS_SECRET_NAME: Secrets Manager JSON {"client_id": ..., "client_secret": ...}
    api_base_url: str  # GENESYS_API_BASE_URL, default https://api.<domain> (the local simulator overrides it)
    login_base_url: str  # GENESYS_LOGIN_BASE_URL, default https://login.<domain>
    connect_timeout_seconds: float = 3.05  # GENESYS_CONNECT_TIMEOUT_SECONDS
    read_timeout_seconds: float = 10.0  # GENESYS_READ_TIMEOUT_SECONDS
    token_refresh_margin_seconds: int = 300  # TOKEN_REFRESH_MARGIN_SECONDS
    max_inline_retry_after_seconds: float = 3.0  # MAX_INLINE_RETRY_AFTER_SECONDS: longer waits go to Step Functions
    secret_max_age_seconds: int = 300  # SECRET_MAX_AGE_SECONDS: Powertools parameters cache

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "GenesysSettings":
        env = os.environ if env is None else env
        domain = _required(env, "GENESYS_DOMAIN")
        return cls(
            domain=domain,
            secret_name=_required(env, "GENESYS_SECRET_NAME"),
            api_base_url=(env.get("GENESYS_API_BASE_URL", "").strip() or f"https://api.{domain}").rstrip("/"),
            login_base_url=(env.get("GENESYS_LOGIN_BASE_URL", "").strip() or f"https://login.{domain}").rstrip("/"),
            connect_timeout_seconds=_float(env, "GENESYS_CONNECT_TIMEOUT_SECONDS", 3.05),
            read_timeout_seconds=_float(env, "GENESYS_READ_TIMEOUT_SECONDS", 10.0),
            token_refresh_margin_seconds=_int(env, "TOKEN_REFRESH_MARGIN_SECONDS", 300),
            max_inline_retry_after_seconds=_float(env, "MAX_INLINE_RETRY_AFTER_SECONDS", 3.0),
            secret_max_age_seconds=_int(env, "SECRET_MAX_AGE_SECONDS", 300),
        )


@dataclass(frozen=True)
class ProcessorSettings:
    genesys: GenesysSettings
    idempotency_table: str  # IDEMPOTENCY_TABLE
    attribute_map: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_ATTRIBUTE_MAP))  # ATTRIBUTE_MAP (JSON)
    external_tag: str | None = None  # EXTERNAL_TAG: optional template for PUT .../tags
    idempotency_ttl_seconds: int = 7 * 24 * 3600  # IDEMPOTENCY_TTL_SECONDS
    budget: BudgetSettings | None = None  # REQUEST_BUDGET_*: retries spend from it; 429s pause it
    # WRITE_BACK_PLUGIN: "module:function" in lambdas/extensions/ (cdk.json writeBack.plugin); when set, the
    # plugin decides what to write (genesys_pipeline/write_back.py) and ATTRIBUTE_MAP/EXTERNAL_TAG are not used.
    write_back_plugin: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "ProcessorSettings":
        env = os.environ if env is None else env
        return cls(
            genesys=GenesysSettings.from_env(env),
            idempotency_table=_required(env, "IDEMPOTENCY_TABLE"),
            attribute_map=_json_object(env, "ATTRIBUTE_MAP", DEFAULT_ATTRIBUTE_MAP),
            external_tag=env.get("EXTERNAL_TAG", "").strip() or None,
            idempotency_ttl_seconds=_int(env, "IDEMPOTENCY_TTL_SECONDS", 7 * 24 * 3600, minimum=3600),
            budget=BudgetSettings.from_env(env),
            write_back_plugin=env.get("WRITE_BACK_PLUGIN", "").strip() or None,
        )


@dataclass(frozen=True)
class ErrorLoggerSettings:
    genesys: GenesysSettings | None  # None when MARK_FAILED_CONVERSATIONS is false
    mark_failed_conversations: bool  # MARK_FAILED_CONVERSATIONS
    failure_status_attribute: str  # FAILURE_STATUS_ATTRIBUTE, default aws_processing_status
    budget: BudgetSettings | None = None  # REQUEST_BUDGET_*: failure marks spend from it

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "ErrorLoggerSettings":
        env = os.environ if env is None else env
        mark = _bool(env, "MARK_FAILED_CONVERSATIONS", True)
        return cls(
            genesys=GenesysSettings.from_env(env) if mark else None,
            mark_failed_conversations=mark,
            failure_status_attribute=env.get("FAILURE_STATUS_ATTRIBUTE", "").strip() or "aws_processing_status",
            budget=BudgetSettings.from_env(env) if mark else None,
        )
