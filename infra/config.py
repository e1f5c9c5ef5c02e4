"""Per-environment configuration: cdk.json context -> typed, validated dataclasses.

cdk.json holds ``context.environments.<name>``; ``-c env=<name>`` picks one (``dev`` by default).
Every check fails with one ``ConfigError`` line naming the key and what is allowed, e.g.

    cdk.json context environments.prod.queueIds[1]: 'abc' is not a UUID; expected 8-4-4-4-12 hex digits

Unknown keys are errors too (a typo must not silently fall back to a default).

An environment states only what differs: ``defaults(name)`` below holds every key with a sensible
default, ``"extends": "<env>"`` starts from another environment, and objects merge key by key
(lists and the keys in ``REPLACED_WHOLE`` are replaced; ``"unset": ["alarmEmail"]`` drops an inherited
value or a default). The Genesys
region (``genesysRegion`` or ``genesysDomain``) is independent of the AWS ``region``: the Genesys
EventBridge integration names the AWS region itself (``awsAccountRegion``).
"""

from __future__ import annotations

import ast
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, NoReturn, overload
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import constants as C

UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
ACCOUNT_RE = re.compile(r"\d{12}")
REGION_RE = re.compile(r"[a-z]{2}(-gov)?-[a-z]+-\d")
DOMAIN_RE = re.compile(r"(?=.{4,253}$)([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}")
EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
SNS_TOPIC_ARN_RE = re.compile(r"arn:aws[a-z-]*:sns:[a-z]{2}(-gov)?-[a-z]+-\d:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?")
CLOCK_RE = re.compile(r"([01]\d|2[0-3]):[0-5]\d")
DAYS_RE = re.compile(
    r"(MON|TUE|WED|THU|FRI|SAT|SUN)(-(MON|TUE|WED|THU|FRI|SAT|SUN))?"
    r"(,(MON|TUE|WED|THU|FRI|SAT|SUN)(-(MON|TUE|WED|THU|FRI|SAT|SUN))?)*"
)
SECRET_NAME_RE = re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}")
# Write-back plugins live in the Lambda asset (lambdas/ is the code root), so they ship with the functions.
EXTENSIONS_DIR = Path(__file__).resolve().parents[1] / "lambdas" / "extensions"
PLUGIN_SPEC_RE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")
ENV_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,20}")
# CloudWatch Logs accepts only these retention values.
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)


class ConfigError(ValueError):
    """One line: where in cdk.json, what is wrong, what is allowed."""


@dataclass(frozen=True)
class RetryBudget:
    """One ASL Retry block's numbers (JitterStrategy FULL, except the in-progress retrier's: NONE)."""

    interval_seconds: int
    max_attempts: int
    backoff_rate: float
    max_delay_seconds: int


@dataclass(frozen=True)
class Retries:
    rate_limited: RetryBudget  # GenesysRateLimited (429)
    unavailable: RetryBudget  # GenesysUnavailable (5xx, 408, timeouts)
    aws_dependency: (
        RetryBudget  # AwsDependencyUnavailable (idempotency table / Secrets Manager throttling, 5xx, unreachable)
    )
    in_progress: RetryBudget  # IdempotencyAlreadyInProgressError (a concurrent attempt of the same event)
    lambda_service: RetryBudget  # Lambda.ServiceException, ...
    max_receive_count: int  # SQS redrive to the DLQ after this many receives


@dataclass(frozen=True)
class Dispatcher:
    batch_size: int
    max_batching_window_seconds: int
    max_concurrency: int  # ESM ScalingConfig.MaximumConcurrency
    start_execution_concurrency: int  # START_EXECUTION_CONCURRENCY


@dataclass(frozen=True)
class RuleTarget:
    """EventBridge's delivery retry policy for the rule -> main queue target."""

    maximum_event_age_seconds: int
    maximum_retry_attempts: int


@dataclass(frozen=True)
class GenesysRateLimit:
    """The environment's Genesys request budget (docs/request-budget.md); None in config = no budget."""

    requests_per_second: float
    burst: int  # requests that may go at once from an idle budget
    alarm_share_429: float  # alarm when 429s exceed this share of Genesys requests


@dataclass(frozen=True)
class ActiveHours:
    """When the site expects events: the silence alarm notifies only then (infra/alarms.py)."""

    timezone: str  # IANA name, e.g. Europe/Berlin (EventBridge Scheduler follows its daylight saving)
    start: str  # "HH:MM", local time
    end: str  # "HH:MM", local time, after start
    days: str  # cron day-of-week: "MON-FRI", "MON-SAT", "*" = every day

    @property
    def start_minutes(self) -> int:
        return _minutes_of(self.start)

    @property
    def end_minutes(self) -> int:
        return _minutes_of(self.end)


@dataclass(frozen=True)
class SilenceAlarm:
    minutes: int  # no EventsReceived for this long -> ALARM (missing data breaches)
    active_hours: ActiveHours | None  # None = always watched


def _minutes_of(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


@dataclass(frozen=True)
class EnvironmentConfig:
    name: str
    account: str | None
    region: str | None
    genesys_org_id: str
    genesys_domain: str  # login.<domain> / api.<domain>
    genesys_region: str | None  # the org's Genesys Cloud region (AWS-style name) when given as genesysRegion
    event_bus_mode: str  # "create" (from the partner event source) or "import" (existing bus by name)
    event_bus_name: str  # = the partner event source name
    topics: tuple[str, ...]
    queue_ids: tuple[str, ...]
    secret_name: str
    attribute_map: dict[str, str]
    external_tag: str | None
    mark_failed_conversations: bool
    lambda_architecture: str  # arm64 | x86_64
    processor_reserved_concurrency: int
    dispatcher: Dispatcher
    retries: Retries
    rule_target: RuleTarget
    max_event_age_seconds: int
    archive_retention_days: int  # 0 = keep forever
    log_retention_days: int
    log_level: str
    alarm_email: str | None  # a topic the stack creates, subscribed by e-mail
    alarm_topic_arn: str | None  # an existing topic (on-call, Chatbot, PagerDuty) every alarm also notifies
    silence_alarm: SilenceAlarm | None
    lag_alarm_p99_seconds: int  # p99 of EndToEndLagMs over ALARM_PERIOD_MINUTES above this -> ALARM
    retain_data: bool  # removalPolicy "retain": tables, log groups, queues, archive survive a stack delete
    point_in_time_recovery: bool
    tags: dict[str, str] = field(default_factory=dict)
    genesys_rate_limit: GenesysRateLimit | None = None
    write_back_plugin: str | None = None  # writeBack.plugin: "module:function" in lambdas/extensions/
    operator_secret_name: str | None = None  # operatorSecretName: the operator's Genesys OAuth client (sync-filter)

    @property
    def genesys_requests_per_event(self) -> int:
        """Genesys requests one event costs: the attribute PATCH, and the tag PUT when configured (a write-back
        plugin may return a tag for any event, so it is counted at its most)."""
        return 1 + (1 if self.external_tag or self.write_back_plugin else 0)

    @property
    def stack_name(self) -> str:
        return f"{C.STACK_PREFIX}{self.name}"

    @property
    def source_prefix(self) -> str:
        """The `source` every event of this org carries (reference/genesys.md)."""
        return f"{C.GENESYS_SOURCE_PREFIX}{self.genesys_org_id}/"

    @property
    def queue_scoped_topics(self) -> tuple[str, ...]:
        return tuple(t for t in self.topics if topic_suffix(t) in C.QUEUE_SCOPED_TOPIC_SUFFIXES)

    @property
    def unscoped_topics(self) -> tuple[str, ...]:
        return tuple(t for t in self.topics if topic_suffix(t) not in C.QUEUE_SCOPED_TOPIC_SUFFIXES)


def topic_suffix(template: str) -> str:
    """'v2.detail.events.conversation.{id}.acd.end' -> 'acd.end'."""
    return template.split("{id}.", 1)[1] if "{id}." in template else template


def rule_event_pattern(config: EnvironmentConfig) -> dict[str, Any]:
    """The partner-bus rule's pattern: this org's source; queue-scoped topics only for the configured
    queues (when any are configured); other topics unfiltered. One rule, `$or` when both groups exist."""
    source = [{"prefix": config.source_prefix}]
    scoped, unscoped = list(config.queue_scoped_topics), list(config.unscoped_topics)
    if not config.queue_ids or not scoped:
        return {"source": source, "detail-type": list(config.topics)}
    scoped_branch = {"detail-type": scoped, "detail": {"eventBody": {"queueId": list(config.queue_ids)}}}
    if not unscoped:
        return {"source": source, **scoped_branch}
    return {"source": source, "$or": [scoped_branch, {"detail-type": unscoped}]}


# --- defaults and extends ----------------------------------------------------------------------

# Keys whose object value replaces the inherited one instead of merging into it: a write-back map or a
# schedule is one decision, not a set of independent keys.
REPLACED_WHOLE = frozenset({"attributeMap", "activeHours"})


def defaults(name: str) -> dict[str, Any]:
    """Every key with a sensible default. An environment (or the one it extends) overrides any of them.

    Required, with no default: genesysOrgId, genesysRegion or genesysDomain, eventBus.name, topics.
    """
    return {
        "secretName": f"genesys/{name}/oauth-client",
        "eventBus": {"mode": "create"},
        "queueIds": [],  # every queue
        "attributeMap": {
            "aws_processed": "true",
            "aws_processed_at": "{processedAt}",
            "aws_pipeline_execution": "{executionName}",
        },
        "markFailedConversations": True,
        "lambdaArchitecture": "arm64",
        "processorReservedConcurrency": 5,
        "dispatcher": {
            "batchSize": 10,
            "maxBatchingWindowSeconds": 1,
            "maxConcurrency": 2,
            "startExecutionConcurrency": 10,
        },
        "retries": {
            "rateLimited": {"intervalSeconds": 5, "maxAttempts": 10, "backoffRate": 2.0, "maxDelaySeconds": 300},
            "unavailable": {"intervalSeconds": 2, "maxAttempts": 6, "backoffRate": 2.0, "maxDelaySeconds": 120},
            "awsDependency": {"intervalSeconds": 1, "maxAttempts": 6, "backoffRate": 2.0, "maxDelaySeconds": 30},
            "idempotencyInProgress": {
                "intervalSeconds": 2,
                "maxAttempts": 6,
                "backoffRate": 2.0,
                "maxDelaySeconds": 30,
            },
            "lambdaService": {"intervalSeconds": 1, "maxAttempts": 6, "backoffRate": 2.0, "maxDelaySeconds": 60},
            "maxReceiveCount": 5,
        },
        # EventBridge's own maximums: retry delivery to the queue for a day.
        "ruleTarget": {"maximumEventAgeSeconds": 86400, "maximumRetryAttempts": 185},
        # Genesys retries delivery for 4 days (reference/genesys.md): keep a day's margin.
        "maxEventAgeSeconds": 5 * 24 * 3600,
        "archiveRetentionDays": 7,
        "logRetentionDays": 14,
        "logLevel": "INFO",
        "silenceAlarm": {"minutes": 30},
        "lagAlarmP99Seconds": 900,
        # Safe by default: data survives a stack delete and the table can be restored.
        "removalPolicy": "retain",
        "pointInTimeRecovery": True,
        "tags": {"Environment": name},
    }


def merged(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` on top of ``base``: objects merge key by key, anything else (and REPLACED_WHOLE) replaces."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key not in REPLACED_WHOLE:
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def resolved(name: str, environments: Mapping[str, Any]) -> dict[str, Any]:
    """Environment ``name`` merged over the chain it extends (without the code defaults)."""
    chain = [name]
    while True:
        raw = environments[chain[-1]]
        path = f"cdk.json context {C.CONTEXT_ENVIRONMENTS}.{chain[-1]}"
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected an object, got {_show(raw)}")
        parent = raw.get("extends")
        if parent is None:
            break
        if not isinstance(parent, str) or parent not in environments:
            raise ConfigError(
                f"{path}.extends: {_show(parent)} is not an environment; expected one of "
                f"{', '.join(sorted(k for k in environments if k != chain[-1]))}"
            )
        if parent in chain:
            raise ConfigError(
                f"{path}.extends: {' -> '.join([*chain, parent])} is a cycle; expected a chain "
                "that ends at an environment without extends"
            )
        chain.append(parent)
    result: dict[str, Any] = {}
    for env in reversed(chain):
        raw = environments[env]
        result = merged(result, {k: v for k, v in raw.items() if k not in ("extends", "unset")})
        unset = raw.get("unset", [])
        if not isinstance(unset, list) or not all(isinstance(k, str) for k in unset):
            raise ConfigError(
                f"cdk.json context {C.CONTEXT_ENVIRONMENTS}.{env}.unset: {_show(unset)} is not a list "
                'of key names; expected e.g. ["alarmEmail"]'
            )
        for key in unset:
            # None = not set, for inherited values and code defaults alike (cdk.json's null cannot do this:
            # CDK hands context to the app without its null members).
            result[key] = None
    return result


# --- reading -----------------------------------------------------------------------------------


class _Node:
    """A mapping from cdk.json with its path, for precise error lines."""

    def __init__(self, value: Any, path: str):
        self.path = path
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected an object, got {_show(value)}")
        self.value = value
        self.seen: set[str] = set()

    def fail(self, key: str, message: str) -> NoReturn:
        raise ConfigError(f"{self.path}.{key}: {message}")

    def raw(self, key: str, expected: str, *, optional: bool = False) -> Any:
        self.seen.add(key)
        if key not in self.value or self.value[key] is None:
            if optional:
                return None
            self.fail(key, f"missing; expected {expected}")
        return self.value[key]

    @overload
    def string(
        self, key: str, expected: str, pattern: re.Pattern[str] | None = None, *, optional: Literal[False] = False
    ) -> str: ...

    @overload
    def string(
        self, key: str, expected: str, pattern: re.Pattern[str] | None = None, *, optional: bool
    ) -> str | None: ...

    def string(
        self, key: str, expected: str, pattern: re.Pattern[str] | None = None, *, optional: bool = False
    ) -> str | None:
        value = self.raw(key, expected, optional=optional)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail(key, f"{_show(value)} is not {expected}")
        if pattern is not None and not pattern.fullmatch(value):
            self.fail(key, f"{_show(value)} is not {expected}")
        return value

    def choice(self, key: str, allowed: tuple[str, ...]) -> str:
        value = self.raw(key, "one of " + ", ".join(allowed))
        if value not in allowed:
            self.fail(key, f"{_show(value)} is not allowed; expected one of {', '.join(allowed)}")
        return value

    def integer(self, key: str, low: int, high: int, *, allowed: tuple[int, ...] | None = None) -> int:
        expected = f"an integer from {low} to {high}"
        value = self.raw(key, expected)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"{_show(value)} is not {expected}")
        if not low <= value <= high:
            self.fail(key, f"{value} is out of range; expected {expected}")
        if allowed is not None and value not in allowed:
            self.fail(key, f"{value} is not allowed; expected one of {', '.join(map(str, allowed))}")
        return value

    def number(self, key: str, low: float, high: float) -> float:
        expected = f"a number from {low} to {high}"
        value = self.raw(key, expected)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(key, f"{_show(value)} is not {expected}")
        if not low <= value <= high:
            self.fail(key, f"{value} is out of range; expected {expected}")
        return float(value)

    def boolean(self, key: str) -> bool:
        value = self.raw(key, "true or false")
        if not isinstance(value, bool):
            self.fail(key, f"{_show(value)} is not true or false")
        return value

    def child(self, key: str, expected: str) -> "_Node":
        value = self.raw(key, expected)
        return _Node(value, f"{self.path}.{key}")

    def string_list(
        self, key: str, expected: str, pattern: re.Pattern[str], *, allow_empty: bool, item_expected: str
    ) -> tuple[str, ...]:
        value = self.raw(key, expected)
        if not isinstance(value, list):
            self.fail(key, f"{_show(value)} is not {expected}")
        if not value and not allow_empty:
            self.fail(key, f"is empty; expected {expected}")
        seen: set[str] = set()
        for i, item in enumerate(value):
            if not isinstance(item, str) or not pattern.fullmatch(item):
                self.fail(f"{key}[{i}]", f"{_show(item)} is not {item_expected}")
            if item.lower() in seen:
                self.fail(f"{key}[{i}]", f"{_show(item)} is listed twice; expected each once")
            seen.add(item.lower())
        return tuple(value)

    def done(self) -> None:
        unknown = sorted(set(self.value) - self.seen)
        if unknown:
            self.fail(unknown[0], f"unknown key; allowed keys: {', '.join(sorted(self.seen))}")


def _show(value: Any) -> str:
    return repr(value) if not isinstance(value, (dict, list)) else json.dumps(value)[:60]


def _retry_budget(node: _Node, key: str) -> RetryBudget:
    r = node.child(key, "an object with intervalSeconds, maxAttempts, backoffRate, maxDelaySeconds")
    budget = RetryBudget(
        interval_seconds=r.integer("intervalSeconds", 1, 3600),
        max_attempts=r.integer("maxAttempts", 0, 99),
        backoff_rate=r.number("backoffRate", 1.0, 10.0),
        max_delay_seconds=r.integer("maxDelaySeconds", 1, 31622400),
    )
    if budget.max_delay_seconds < budget.interval_seconds:
        r.fail(
            "maxDelaySeconds",
            f"{budget.max_delay_seconds} is below intervalSeconds "
            f"{budget.interval_seconds}; expected >= intervalSeconds",
        )
    r.done()
    return budget


def _topic_problem(topic: str) -> str | None:
    if UUID_RE.search(topic):
        return (
            "holds a concrete id; expected a topic template with {id}, e.g. v2.detail.events.conversation.{id}.acd.end"
        )
    return None


def _template_problem(template: str, topics: tuple[str, ...]) -> str | None:
    """The processor checks its templates at cold start; synth checks them first, against the topics too."""
    import string

    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        return f"{template!r} is malformed ({exc}); expected {{placeholder}} and {{{{ }}}} for literal braces"
    known = (*C.TEMPLATE_EVENT_PLACEHOLDERS, *C.TEMPLATE_BODY_FIELDS)
    for field_name in fields:
        if field_name not in known:
            return f"{{{field_name}}} in {template!r} is not allowed; expected one of {', '.join(known)}"
        carriers = C.TEMPLATE_FIELDS_ONLY_ON.get(field_name)
        if carriers:
            lacking = [t for t in topics if topic_suffix(t) not in carriers]
            if lacking:
                return (
                    f"{{{field_name}}} is carried only by {', '.join(carriers)} events, but topics include "
                    f"{lacking[0]!r}; expected placeholders every configured topic carries"
                )
    return None


def _write_back_plugin(n: _Node) -> str | None:
    """writeBack.plugin: "module:function", a module in the asset folder lambdas/extensions/ defining the function.

    Checked from the source (ast), not imported: synth must not run plugin code."""
    w = n.raw("writeBack", 'an object such as {"plugin": "acd_summary:write_back"}', optional=True)
    if w is None:
        return None
    node = _Node(w, f"{n.path}.writeBack")
    spec = node.string(
        "plugin", "'module:function' naming a function of a module in lambdas/extensions/", PLUGIN_SPEC_RE
    )
    node.done()
    module, function = spec.split(":")
    folder = EXTENSIONS_DIR
    rel = f"lambdas/extensions/{module.replace('.', '/')}.py"
    path = folder.joinpath(*module.split(".")).with_suffix(".py")
    if not path.is_file():
        node.fail(
            "plugin",
            f"{spec!r}: no module {rel} in the Lambda asset; add it, or name a module of "
            "lambdas/extensions/ (e.g. 'acd_summary:write_back')",
        )
    try:
        tree = ast.parse(path.read_text(), filename=str(path))
    except SyntaxError as exc:
        node.fail("plugin", f"{spec!r}: {rel} does not parse (line {exc.lineno}: {exc.msg}); fix the module")
    defined = {d.name for d in tree.body if isinstance(d, (ast.FunctionDef, ast.AsyncFunctionDef))}
    if function not in defined:
        node.fail(
            "plugin",
            f"{spec!r}: {rel} defines no top-level function "
            f"{function!r} (it has: {', '.join(sorted(defined)) or 'none'}); define it or fix the name",
        )
    return spec


def _operator_secret_name(n: _Node, runtime_secret: str) -> str | None:
    """operatorSecretName: the operator OAuth client (integrations:integration:view/edit), separate from the runtime's."""
    name = n.string(
        "operatorSecretName", "a Secrets Manager secret name (letters, digits, /_+=.@-)", SECRET_NAME_RE, optional=True
    )
    if name is not None and name == runtime_secret:
        n.fail(
            "operatorSecretName",
            f"{name!r} is secretName, the Lambdas' client; expected the secret of a separate "
            "operator OAuth client (least privilege: the runtime client must not edit integrations)",
        )
    return name


def _genesys_region_and_domain(n: _Node) -> tuple[str | None, str]:
    """The org's Genesys Cloud region, by name or by domain; any AWS region may receive its events."""
    regions = ", ".join(sorted(C.GENESYS_DOMAINS_BY_REGION))
    region = n.string("genesysRegion", f"a Genesys Cloud region, one of {regions}", optional=True)
    domain = n.string("genesysDomain", "a Genesys Cloud domain such as mypurecloud.com", DOMAIN_RE, optional=True)
    if region is not None and region not in C.GENESYS_DOMAINS_BY_REGION:
        n.fail(
            "genesysRegion",
            f"{region!r} is not a Genesys Cloud region; expected one of {regions} "
            "(or set genesysDomain for a region not listed)",
        )
    if region is not None and domain is not None and domain != C.GENESYS_DOMAINS_BY_REGION[region]:
        n.fail(
            "genesysDomain",
            f"{domain!r} is not the domain of genesysRegion {region!r}; expected "
            f"{C.GENESYS_DOMAINS_BY_REGION[region]!r} (or set only one of the two)",
        )
    if domain:
        return region, domain
    if region is None:
        n.fail(
            "genesysRegion",
            "missing; expected the org's Genesys Cloud region (genesysRegion, e.g. us-east-1) "
            "or its domain (genesysDomain, e.g. mypurecloud.com)",
        )
    return region, C.GENESYS_DOMAINS_BY_REGION[region]


def _silence_alarm(n: _Node) -> SilenceAlarm | None:
    if n.raw("silenceAlarm", "an object with minutes (and optional activeHours), or null", optional=True) is None:
        return None
    s = n.child("silenceAlarm", "an object with minutes (and optional activeHours), or null")
    # Whole alarm periods; at most a day (CloudWatch evaluates at most 24 h of periods).
    minutes = s.integer("minutes", C.ALARM_PERIOD_MINUTES, 1440)
    if minutes % C.ALARM_PERIOD_MINUTES:
        s.fail(
            "minutes",
            f"{minutes} is not a multiple of {C.ALARM_PERIOD_MINUTES}; expected whole "
            f"{C.ALARM_PERIOD_MINUTES}-minute alarm periods",
        )
    hours = None
    if s.raw("activeHours", "an object with timezone, start, end (and optional days)", optional=True) is not None:
        h = s.child("activeHours", "an object with timezone, start, end (and optional days)")
        tz = h.string("timezone", "an IANA time zone such as Europe/Berlin")
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            h.fail("timezone", f"{tz!r} is not an IANA time zone; expected a name such as Europe/Berlin or UTC")
        start = h.string("start", "a local time HH:MM such as 08:00", CLOCK_RE)
        end = h.string("end", "a local time HH:MM such as 20:00", CLOCK_RE)
        days = h.raw("days", "cron days of week such as MON-FRI", optional=True) or "*"
        if days != "*" and not (isinstance(days, str) and DAYS_RE.fullmatch(days)):
            h.fail(
                "days",
                f"{_show(days)} is not allowed; expected cron days of week such as MON-FRI, "
                "MON-SAT or MON,WED,FRI ('*' or leave it out for every day)",
            )
        hours = ActiveHours(timezone=tz, start=start, end=end, days=days)
        if hours.end_minutes - hours.start_minutes <= minutes:
            h.fail(
                "end",
                f"{end!r} is not more than silenceAlarm.minutes ({minutes}) after start {start!r}; "
                "expected a window longer than the silence it watches for (same day, end after start)",
            )
        h.done()
    s.done()
    return SilenceAlarm(minutes=minutes, active_hours=hours)


def parse_environment(name: str, raw: Any) -> EnvironmentConfig:
    """One environment, already merged with what it extends; code defaults fill the rest."""
    if not isinstance(raw, dict):
        raise ConfigError(f"cdk.json context {C.CONTEXT_ENVIRONMENTS}.{name}: expected an object, got {_show(raw)}")
    n = _Node(merged(defaults(name), raw), f"cdk.json context {C.CONTEXT_ENVIRONMENTS}.{name}")
    n.seen.update(("extends", "unset"))  # resolved by load()
    account = n.string("account", "a 12-digit AWS account id", ACCOUNT_RE, optional=True)
    region = n.string("region", "an AWS region such as us-east-1", REGION_RE, optional=True)
    if account and not region:
        n.fail("region", "missing; expected an AWS region when account is set")
    org_id = n.string(
        "genesysOrgId", "a UUID (the Genesys Cloud organization id); expected 8-4-4-4-12 hex digits", UUID_RE
    )
    genesys_region, domain = _genesys_region_and_domain(n)

    bus = n.child("eventBus", "an object with mode and name")
    bus_mode = bus.choice("mode", ("create", "import"))
    bus_name = bus.string(
        "name", "a partner event source name matching aws\\.partner(/[\\.\\-_A-Za-z0-9]+){2,}", C.PARTNER_SOURCE_PATTERN
    )
    match = C.GENESYS_SOURCE_PATTERN.fullmatch(bus_name)
    if not match:
        bus.fail(
            "name",
            f"{bus_name!r} is not a Genesys partner source; expected "
            f"aws.partner/genesys.com/cloud/<orgId>/<suffix of 1-64 [A-Za-z0-9._-]>",
        )
    if match.group("org") != org_id:
        bus.fail("name", f"{bus_name!r} names org {match.group('org')!r}; expected genesysOrgId {org_id!r}")
    bus.done()

    topics = n.string_list(
        "topics",
        "a non-empty list of topic templates",
        C.TOPIC_TEMPLATE_PATTERN,
        allow_empty=False,
        item_expected="a topic template such as v2.detail.events.conversation.{id}.acd.end",
    )
    for i, topic in enumerate(topics):
        if problem := _topic_problem(topic):
            n.fail(f"topics[{i}]", f"{topic!r} {problem}")
        if not topic.startswith(C.CONVERSATION_TOPIC_PREFIX) or topic_suffix(topic) not in C.SUPPORTED_TOPIC_SUFFIXES:
            n.fail(
                f"topics[{i}]",
                f"{topic!r} is not a conversation topic the dispatcher handles; expected "
                f"{C.CONVERSATION_TOPIC_PREFIX}<one of {', '.join(C.SUPPORTED_TOPIC_SUFFIXES)}>",
            )
        if topic_suffix(topic) in C.FEEDBACK_LOOP_TOPIC_SUFFIXES:
            n.fail(
                f"topics[{i}]",
                f"{topic!r} would route the processor's own attribute writes back into it "
                "(feedback loop); expected conversation topics other than .attributes, "
                "e.g. ...{id}.acd.end, ...{id}.customer.end",
            )
    queue_ids = n.string_list(
        "queueIds",
        "a list of Genesys queue UUIDs ([] = every queue)",
        UUID_RE,
        allow_empty=True,
        item_expected="a UUID; expected 8-4-4-4-12 hex digits",
    )
    secret_name = n.raw("secretName", "a Secrets Manager secret name (letters, digits, /_+=.@-)")
    if isinstance(secret_name, str) and secret_name.startswith("arn:"):
        n.fail("secretName", f"{secret_name!r} is an ARN; expected the secret's name (the stack references it by name)")
    secret_name = n.string("secretName", "a Secrets Manager secret name (letters, digits, /_+=.@-)", SECRET_NAME_RE)

    attribute_map_raw = n.raw("attributeMap", "an object of participant attribute name to value template")
    if not isinstance(attribute_map_raw, dict) or not attribute_map_raw:
        n.fail("attributeMap", f"{_show(attribute_map_raw)} is not a non-empty object of string to string")
    for k, v in attribute_map_raw.items():
        if not isinstance(v, str) or not k.strip():
            n.fail(
                f"attributeMap.{k}",
                f"{_show(v)} is not a string; expected a value template such as '{{executionName}}'",
            )
    external_tag = n.string("externalTag", "a non-empty string (external tag template)", optional=True)
    for key, template in [
        *((f"attributeMap.{k}", v) for k, v in attribute_map_raw.items()),
        *([("externalTag", external_tag)] if external_tag else []),
    ]:
        if problem := _template_problem(template, topics):
            n.fail(key, problem)
    mark_failed = n.boolean("markFailedConversations")
    architecture = n.choice("lambdaArchitecture", tuple(C.PIP_PLATFORMS))
    reserved = n.integer("processorReservedConcurrency", 1, 1000)

    d = n.child(
        "dispatcher", "an object with batchSize, maxBatchingWindowSeconds, maxConcurrency, startExecutionConcurrency"
    )
    dispatcher = Dispatcher(
        batch_size=d.integer("batchSize", 1, 10000),
        max_batching_window_seconds=d.integer("maxBatchingWindowSeconds", 0, 300),
        # SQS event source mappings: MaximumConcurrency 2..1000 (AWS Lambda docs).
        max_concurrency=d.integer("maxConcurrency", 2, 1000),
        start_execution_concurrency=d.integer("startExecutionConcurrency", 1, 100),
    )
    if dispatcher.batch_size > 10 and dispatcher.max_batching_window_seconds == 0:
        d.fail(
            "maxBatchingWindowSeconds",
            "is 0 with batchSize > 10; expected >= 1 (SQS requires a batching window for batches over 10)",
        )
    d.done()

    r = n.child(
        "retries",
        "an object with rateLimited, unavailable, awsDependency, idempotencyInProgress, lambdaService, maxReceiveCount",
    )
    retries = Retries(
        rate_limited=_retry_budget(r, "rateLimited"),
        unavailable=_retry_budget(r, "unavailable"),
        aws_dependency=_retry_budget(r, "awsDependency"),
        in_progress=_retry_budget(r, "idempotencyInProgress"),
        lambda_service=_retry_budget(r, "lambdaService"),
        max_receive_count=r.integer("maxReceiveCount", 1, 1000),
    )
    # An in-progress record outlives a dead attempt until that attempt's deadline (Powertools sets it from the
    # Lambda context): the in-progress retrier waits without jitter, so its whole wait must outlast the timeout.
    waits = retry_span_seconds(retries.in_progress)
    if waits <= C.PROCESSOR_TIMEOUT_SECONDS:
        r.fail(
            "idempotencyInProgress",
            f"waits {waits:g} s in all, not over the processor's "
            f"{C.PROCESSOR_TIMEOUT_SECONDS} s timeout (an attempt that died holds the "
            "event's in-progress record that long); expected more maxAttempts or a "
            "longer intervalSeconds",
        )
    r.done()

    t = n.child("ruleTarget", "an object with maximumEventAgeSeconds, maximumRetryAttempts")
    # EventBridge RetryPolicy limits: 60..86400 s, 0..185 attempts.
    rule_target = RuleTarget(
        maximum_event_age_seconds=t.integer("maximumEventAgeSeconds", 60, 86400),
        maximum_retry_attempts=t.integer("maximumRetryAttempts", 0, 185),
    )
    t.done()

    max_age = n.integer("maxEventAgeSeconds", 60, 365 * 24 * 3600)
    archive_days = n.integer("archiveRetentionDays", 0, 3650)
    log_days = n.integer("logRetentionDays", 1, 3653, allowed=LOG_RETENTION_DAYS)
    log_level = n.choice("logLevel", ("DEBUG", "INFO", "WARNING", "ERROR"))
    alarm_email = n.string("alarmEmail", "an e-mail address", EMAIL_RE, optional=True)
    alarm_topic_arn = n.string(
        "alarmTopicArn", "an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)", SNS_TOPIC_ARN_RE, optional=True
    )
    silence = _silence_alarm(n)
    lag_p99 = n.integer("lagAlarmP99Seconds", 1, 7 * 24 * 3600)
    removal = n.choice("removalPolicy", ("retain", "destroy"))
    pitr = n.boolean("pointInTimeRecovery")
    write_back_plugin = _write_back_plugin(n)
    # A write-back plugin may return a tag for any event: count it at its most (as genesys_requests_per_event does).
    rate_limit = _genesys_rate_limit(
        n, reserved=reserved, retries=retries, requests_per_event=1 + (1 if external_tag or write_back_plugin else 0)
    )
    tags_raw = n.raw("tags", "an object of tag name to value", optional=True) or {}
    if not isinstance(tags_raw, dict) or not all(isinstance(v, str) for v in tags_raw.values()):
        n.fail("tags", f"{_show(tags_raw)} is not an object of string to string")
    operator_secret = _operator_secret_name(n, secret_name)
    n.done()
    return EnvironmentConfig(
        name=name,
        account=account,
        region=region,
        genesys_org_id=org_id,
        genesys_domain=domain,
        genesys_region=genesys_region,
        event_bus_mode=bus_mode,
        event_bus_name=bus_name,
        topics=topics,
        queue_ids=queue_ids,
        secret_name=secret_name,
        attribute_map=dict(attribute_map_raw),
        external_tag=external_tag,
        mark_failed_conversations=mark_failed,
        lambda_architecture=architecture,
        processor_reserved_concurrency=reserved,
        dispatcher=dispatcher,
        retries=retries,
        rule_target=rule_target,
        max_event_age_seconds=max_age,
        archive_retention_days=archive_days,
        log_retention_days=log_days,
        log_level=log_level,
        alarm_email=alarm_email,
        alarm_topic_arn=alarm_topic_arn,
        silence_alarm=silence,
        lag_alarm_p99_seconds=lag_p99,
        retain_data=removal == "retain",
        point_in_time_recovery=pitr,
        tags=dict(tags_raw),
        genesys_rate_limit=rate_limit,
        write_back_plugin=write_back_plugin,
        operator_secret_name=operator_secret,
    )


RATE_LIMIT_KEY = "genesysRateLimit"
RATE_LIMIT_EXPECTED = (
    '{"requestsPerSecond": <number>, "burst": <integer>, "alarmShare429": <0..1>}, or null for '
    "no budget (not recommended)"
)


def _genesys_rate_limit(
    n: _Node, *, reserved: int, retries: Retries, requests_per_event: int
) -> GenesysRateLimit | None:
    """``genesysRateLimit``; ``null`` runs without a budget. The CDK drops null context values before the app
    sees them (jsii), so a missing key reads as null too; a misspelt key still fails as unknown."""
    if n.raw(RATE_LIMIT_KEY, RATE_LIMIT_EXPECTED, optional=True) is None:
        return None
    g = n.child(RATE_LIMIT_KEY, RATE_LIMIT_EXPECTED)
    # Genesys: 300 requests/min per token; org.app.user.rate.per.minute 3000 (reference/genesys.md).
    limit = GenesysRateLimit(
        requests_per_second=g.number(
            "requestsPerSecond", C.BUDGET_MIN_REQUESTS_PER_SECOND, C.BUDGET_MAX_REQUESTS_PER_SECOND
        ),
        burst=g.integer("burst", 1, 1000),
        alarm_share_429=g.number("alarmShare429", 0.0, 1.0),
    )
    g.done()
    # Traps (docs/request-budget.md): the budget must never turn into Lambda throttles or spent
    # Step Functions retry budgets.
    # Admission keeps requestsPerSecond x 60 s minus the burst for each minute of requests
    # (genesys_pipeline.budget.admission_rate): a burst of half of that would halve the rate.
    window = limit.requests_per_second * C.BUDGET_LIMIT_WINDOW_SECONDS
    if limit.burst > window / 2:
        g.fail(
            "burst",
            f"{limit.burst} is over half of the {window:g} requests a {C.BUDGET_LIMIT_WINDOW_SECONDS} s "
            f"Genesys window holds at requestsPerSecond {limit.requests_per_second:g} (admission "
            f"keeps the burst out of every window); expected burst <= {math.floor(window / 2)}",
        )
    events_at_once = math.ceil(limit.burst / requests_per_event)
    if events_at_once > reserved:
        g.fail(
            "burst",
            f"{limit.burst} lets {events_at_once} executions start at once, over "
            f"processorReservedConcurrency {reserved} (they would be throttled); expected burst <= "
            f"{reserved * requests_per_event}",
        )
    concurrent = limit.requests_per_second / requests_per_event * C.BUDGET_PROCESSOR_SECONDS_PER_EVENT
    if concurrent > reserved:
        g.fail(
            "requestsPerSecond",
            f"{limit.requests_per_second:g} keeps about {concurrent:g} processors busy at "
            f"{C.BUDGET_PROCESSOR_SECONDS_PER_EVENT:g} s each, over "
            f"processorReservedConcurrency {reserved}; expected requestsPerSecond <= "
            f"{reserved * requests_per_event / C.BUDGET_PROCESSOR_SECONDS_PER_EVENT:g} "
            "or a higher processorReservedConcurrency",
        )
    span = expected_retry_span_seconds(retries.rate_limited)
    if span < C.BUDGET_MAX_RETRY_AFTER_SECONDS:
        n.fail(
            "retries.rateLimited",
            f"waits about {span:g} s in all (full jitter), under the "
            f"{C.BUDGET_MAX_RETRY_AFTER_SECONDS} s a Genesys pause may last; expected "
            "more maxAttempts or a longer interval with genesysRateLimit set",
        )
    return limit


def retry_span_seconds(budget: RetryBudget) -> float:
    """The total wait of an ASL Retry block without jitter (JitterStrategy NONE)."""
    return sum(
        min(budget.max_delay_seconds, budget.interval_seconds * budget.backoff_rate**k)
        for k in range(budget.max_attempts)
    )


def expected_retry_span_seconds(budget: RetryBudget) -> float:
    """The mean total wait of an ASL Retry block with JitterStrategy FULL (each wait uniform in [0, delay])."""
    return retry_span_seconds(budget) / 2


def load(context: Callable[[str], Any], env_name: str | None = None) -> EnvironmentConfig:
    """Pick and parse one environment. ``context`` is ``node.try_get_context``."""
    environments = context(C.CONTEXT_ENVIRONMENTS)
    if not isinstance(environments, Mapping) or not environments:
        raise ConfigError(
            f"cdk.json context {C.CONTEXT_ENVIRONMENTS}: missing; expected an object of named "
            "environments (dev, prod, ...)"
        )
    name = env_name or context(C.CONTEXT_ENV) or C.DEFAULT_ENVIRONMENT
    if not isinstance(name, str) or name not in environments:
        raise ConfigError(
            f"-c {C.CONTEXT_ENV}={name}: unknown environment; expected one of "
            f"{', '.join(sorted(environments))} (cdk.json context {C.CONTEXT_ENVIRONMENTS})"
        )
    if not ENV_NAME_RE.fullmatch(name):
        raise ConfigError(
            f"cdk.json context {C.CONTEXT_ENVIRONMENTS}.{name}: bad environment name; expected a "
            "letter then up to 20 letters, digits or '-'"
        )
    return parse_environment(name, resolved(name, environments))


def environment_names(context: Callable[[str], Any]) -> list[str]:
    environments = context(C.CONTEXT_ENVIRONMENTS) or {}
    return sorted(environments)
