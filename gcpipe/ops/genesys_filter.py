"""``gcpipe genesys sync-filter``: keep the Genesys integration's topic filter equal to the rule's topics.

Genesys facts (copied from the team's Genesys reference):
* the "Amazon EventBridge Source" integration (type ``amazon-eventbridge-source``)
  has config property ``eventFilter``: a list of topic templates such as
  ``v2.detail.events.conversation.{id}.acd.end`` (``{id}`` is a wildcard);
* config is read and written with ``GET/PUT /api/v2/integrations/{id}/config/current``
  (body ``IntegrationConfiguration``: name, version, properties, advanced, notes,
  credentials); the PUT carries the ``version`` that was read, for optimistic
  concurrency: a concurrent edit makes it fail with 409;
* HTTP goes through the pipeline's one Genesys client (``genesys_pipeline.genesys.GenesysClient``:
  OAuth client credentials, the cached token, the error taxonomy, ``inin-correlation-id`` in
  every failure), with the **operator** OAuth client, not the runtime one.

Least privilege: the Lambdas' client (secret ``GenesysSecretName``) only writes conversations;
editing the integration needs ``integrations:integration:view`` and ``:edit``, which only the
operator client (secret ``GenesysOperatorSecretName``, from ``operatorSecretName`` in cdk.json,
or ``--operator-secret``) should hold. The runtime secret is never used here.

Topics the rule does not route are wasted deliveries (and cost), topics the
Genesys side does not send are silently missing events; so the filter is set
to exactly the rule's detail-type list. A topic of the ``attributes`` family is
refused: writing participant attributes emits it, and routing it back into the
processor is a feedback loop.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator, Mapping, Protocol
from urllib.parse import urlsplit

from genesys_pipeline.errors import GenesysBadCredentials, GenesysError, GenesysForbidden, GenesysRejected
from genesys_pipeline.genesys import ClientCredentials, GenesysClient
from genesys_pipeline.observability import logger
from genesys_pipeline.settings import GenesysSettings, SettingsError

from .errors import OperatorError
from .rule import load_rule
from .target import Target

FEEDBACK_TOPIC_SUFFIX = ".attributes"
OPERATOR_SECRET_OUTPUT = "GenesysOperatorSecretName"
# The Genesys permissions the operator client's role needs (Admin > Roles); the runtime client needs none of them.
OPERATOR_PERMISSIONS = ("integrations:integration:view", "integrations:integration:edit")


class ConcurrentEditError(OperatorError):
    """The integration's config changed between our read and our write (409 on version)."""


class IntegrationConfigApi(Protocol):
    """The slice of GenesysClient sync-filter needs."""

    def get_integration_config(self, integration_id: str) -> dict[str, Any]: ...

    def put_integration_config(self, integration_id: str, config: Mapping[str, Any]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class GenesysEndpoints:
    login_base_url: str
    api_base_url: str
    domain: str


def resolve_endpoints(target: Target, *, base_url: str | None = None, domain: str | None = None) -> GenesysEndpoints:
    """--genesys-base-url (or the local state file's simulator URL) serves both login and api paths;
    --genesys-domain gives login.<domain>/api.<domain>; otherwise the processor Lambda's own settings."""
    base_url = base_url or target.genesys_base_url
    if base_url:
        return GenesysEndpoints(base_url.rstrip("/"), base_url.rstrip("/"), urlsplit(base_url).hostname or "localhost")
    if domain:
        return GenesysEndpoints(f"https://login.{domain}", f"https://api.{domain}", domain)
    function = target.outputs.get("ProcessorFunctionName")
    if not function:
        raise OperatorError("no Genesys endpoint: pass --genesys-domain or --genesys-base-url")
    variables = (
        target.client("lambda")
        .get_function_configuration(FunctionName=function)
        .get("Environment", {})
        .get("Variables", {})
    )
    try:
        settings = GenesysSettings.from_env(variables)
    except SettingsError as exc:
        raise OperatorError(f"processor {function}: {exc}; pass --genesys-domain") from None
    return GenesysEndpoints(settings.login_base_url, settings.api_base_url, settings.domain)


def operator_secret_name(target: Target, override: str | None = None) -> str:
    if override:
        return override
    name = target.outputs.get(OPERATOR_SECRET_OUTPUT)
    if not name:
        raise OperatorError(
            f"stack {target.stack_name} has no output {OPERATOR_SECRET_OUTPUT}: set operatorSecretName in cdk.json and "
            "deploy, or pass --operator-secret NAME (an OAuth client with "
            f"{' and '.join(OPERATOR_PERMISSIONS)}; the Lambdas' own client is deliberately not used)"
        )
    return name


def load_credentials(target: Target, secret_name: str) -> ClientCredentials:
    """An OAuth client from Secrets Manager (JSON {"client_id", "client_secret"})."""
    try:
        raw = target.client("secretsmanager").get_secret_value(SecretId=secret_name).get("SecretString") or ""
    except target.client("secretsmanager").exceptions.ResourceNotFoundException:
        raise OperatorError(
            f"secret {secret_name} does not exist: create it with the operator client's "
            "credentials (README, 'Genesys OAuth clients')"
        ) from None
    try:
        data = json.loads(raw)
        return ClientCredentials(client_id=data["client_id"], client_secret=data["client_secret"])
    except (json.JSONDecodeError, KeyError, TypeError):
        raise OperatorError(f"secret {secret_name} must be JSON with client_id and client_secret") from None


def operator_client(
    target: Target, *, secret_name: str | None = None, base_url: str | None = None, domain: str | None = None
) -> GenesysClient:
    name = operator_secret_name(target, secret_name)
    endpoints = resolve_endpoints(target, base_url=base_url, domain=domain)
    settings = GenesysSettings(
        domain=endpoints.domain,
        secret_name=name,
        api_base_url=endpoints.api_base_url,
        login_base_url=endpoints.login_base_url,
    )
    return GenesysClient(settings, load_credentials(target, name))


@contextmanager
def _operator_errors(integration_id: str, secret_name: str | None) -> Iterator[None]:
    """GenesysClient's named errors -> one operator line each (its own log lines are for Lambdas: kept quiet)."""
    level = logger.log_level
    logger.setLevel("CRITICAL")
    secret = f"secret {secret_name}" if secret_name else "the operator secret"
    try:
        yield
    except GenesysBadCredentials as exc:
        raise OperatorError(
            f"Genesys refused the operator OAuth client ({exc}): were the credentials rotated? Update {secret}"
        ) from None
    except GenesysForbidden as exc:
        raise OperatorError(
            f"the operator OAuth client may not do this ({exc}); give its role {' and '.join(OPERATOR_PERMISSIONS)}"
        ) from None
    except GenesysRejected as exc:
        if exc.status == 404:
            raise OperatorError(f"Genesys integration {integration_id} not found ({exc})") from None
        if exc.status == 409:
            raise ConcurrentEditError(
                f"integration {integration_id} was changed by someone else since it was read; nothing was written. "
                "Re-run `gcpipe genesys sync-filter --apply` to diff against the new version"
            ) from None
        raise OperatorError(f"integration {integration_id}: {exc}") from None
    except GenesysError as exc:
        raise OperatorError(f"integration {integration_id}: {exc}") from None
    finally:
        logger.setLevel(level)


@dataclass
class FilterDiff:
    integration_id: str
    version: Any
    current: list[str]
    expected: list[str]
    to_add: list[str] = field(default_factory=list)
    to_remove: list[str] = field(default_factory=list)
    applied: bool = False
    new_version: Any = None

    @property
    def in_sync(self) -> bool:
        return not self.to_add and not self.to_remove

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "in_sync": self.in_sync}


def _topics(value: Any) -> list[str]:
    # The reference documents a list; tolerate a comma-separated string as well.
    if isinstance(value, str):
        return [t.strip() for t in value.split(",") if t.strip()]
    if isinstance(value, list):
        return [t for t in value if isinstance(t, str)]
    return []


def diff_filter(config: dict[str, Any], expected: list[str], integration_id: str) -> FilterDiff:
    current = _topics((config.get("properties") or {}).get("eventFilter"))
    return FilterDiff(
        integration_id=integration_id,
        version=config.get("version"),
        current=current,
        expected=list(expected),
        to_add=[t for t in expected if t not in current],
        to_remove=[t for t in current if t not in expected],
    )


def sync_filter(
    target: Target,
    integration_id: str,
    *,
    apply: bool,
    client: IntegrationConfigApi | None = None,
    secret_name: str | None = None,
    base_url: str | None = None,
    domain: str | None = None,
) -> FilterDiff:
    rule = load_rule(target)
    expected = rule.topics
    if not expected:
        raise OperatorError(f"rule {rule.name} has no detail-type list in its event pattern; nothing to sync")
    loops = [t for t in expected if t.endswith(FEEDBACK_TOPIC_SUFFIX)]
    if loops:
        raise OperatorError(
            f"refusing: rule {rule.name} routes {', '.join(loops)}, which write-backs emit (feedback loop)"
        )
    owned = client is None
    if client is None:
        secret_name = operator_secret_name(target, secret_name)
        client = operator_client(target, secret_name=secret_name, base_url=base_url, domain=domain)
    try:
        with _operator_errors(integration_id, secret_name):
            config = client.get_integration_config(integration_id)
            diff = diff_filter(config, expected, integration_id)
            if apply and not diff.in_sync:
                properties = dict(config.get("properties") or {})
                was_string = isinstance(properties.get("eventFilter"), str)
                properties["eventFilter"] = ",".join(expected) if was_string else list(expected)
                body = {**config, "properties": properties, "version": config.get("version")}
                written = client.put_integration_config(integration_id, body)
                diff.applied = True
                diff.new_version = written.get("version")
    finally:
        if owned and isinstance(client, GenesysClient):
            client.close()
    return diff
