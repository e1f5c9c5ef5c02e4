"""``gcpipe genesys sync-filter``: keep the Genesys integration's topic filter equal to the rule's topics.

Genesys facts (copied from the team's Genesys reference):
* the "Amazon EventBridge Source" integration (type ``amazon-eventbridge-source``)
  has config property ``eventFilter``: a list of topic templates such as
  ``v2.detail.events.conversation.{id}.acd.end`` (``{id}`` is a wildcard);
* config is read and written with ``GET/PUT /api/v2/integrations/{id}/config/current``
  (body ``IntegrationConfiguration``: name, version, properties, advanced, notes,
  credentials); the PUT carries the ``version`` that was read, for optimistic
  concurrency: a concurrent edit makes it fail with 409;
* OAuth client credentials: ``POST https://login.<domain>/oauth/token`` with
  ``Authorization: Basic base64(id:secret)`` and ``grant_type=client_credentials``;
  API calls go to ``https://api.<domain>`` with ``Bearer``; every response has an
  ``inin-correlation-id`` header, which Genesys support asks for.

Topics the rule does not route are wasted deliveries (and cost), topics the
Genesys side does not send are silently missing events; so the filter is set
to exactly the rule's detail-type list. A topic of the ``attributes`` family is
refused: writing participant attributes emits it, and routing it back into the
processor is a feedback loop.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import requests

from genesys_pipeline.settings import GenesysSettings, SettingsError

from .errors import OperatorError
from .rule import load_rule
from .target import Target

TIMEOUT = (3.05, 15.0)
FEEDBACK_TOPIC_SUFFIX = ".attributes"


class ConcurrentEditError(OperatorError):
    """The integration's config changed between our read and our write (409 on version)."""


@dataclass(frozen=True)
class GenesysEndpoints:
    login_base_url: str
    api_base_url: str


def resolve_endpoints(target: Target, *, base_url: str | None = None, domain: str | None = None) -> GenesysEndpoints:
    """--genesys-base-url (or the local state file's simulator URL) serves both login and api paths;
    --genesys-domain gives login.<domain>/api.<domain>; otherwise the processor Lambda's own settings."""
    base_url = base_url or target.genesys_base_url
    if base_url:
        return GenesysEndpoints(base_url.rstrip("/"), base_url.rstrip("/"))
    if domain:
        return GenesysEndpoints(f"https://login.{domain}", f"https://api.{domain}")
    function = target.outputs.get("ProcessorFunctionName")
    if not function:
        raise OperatorError("no Genesys endpoint: pass --genesys-domain or --genesys-base-url")
    variables = target.client("lambda").get_function_configuration(FunctionName=function).get("Environment", {}).get("Variables", {})
    try:
        settings = GenesysSettings.from_env(variables)
    except SettingsError as exc:
        raise OperatorError(f"processor {function}: {exc}; pass --genesys-domain") from None
    return GenesysEndpoints(settings.login_base_url, settings.api_base_url)


def load_credentials(target: Target) -> tuple[str, str]:
    """The environment's OAuth client from Secrets Manager (JSON {"client_id", "client_secret"})."""
    name = target.output("GenesysSecretName")
    raw = target.client("secretsmanager").get_secret_value(SecretId=name).get("SecretString") or ""
    try:
        data = json.loads(raw)
        return data["client_id"], data["client_secret"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise OperatorError(f"secret {name} must be JSON with client_id and client_secret") from None


class IntegrationConfigClient:
    def __init__(self, endpoints: GenesysEndpoints, client_id: str, client_secret: str, session: requests.Session | None = None):
        self.endpoints = endpoints
        self._auth = (client_id, client_secret)
        self._session = session or requests.Session()
        self._token: str | None = None

    @staticmethod
    def _describe(response: requests.Response) -> str:
        cid = response.headers.get("inin-correlation-id")
        try:
            message = response.json().get("message") or response.text
        except ValueError:
            message = response.text
        return f"HTTP {response.status_code}: {str(message)[:200]}" + (f" (inin-correlation-id {cid})" if cid else "")

    def token(self) -> str:
        if self._token is None:
            response = self._session.post(
                f"{self.endpoints.login_base_url}/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=self._auth,  # HTTP Basic base64(client_id:client_secret)
                timeout=TIMEOUT,
            )
            if response.status_code in (400, 401, 403):
                raise OperatorError(
                    f"Genesys refused the OAuth client ({self._describe(response)}): were the credentials rotated? "
                    "Update the environment's Genesys secret"
                )
            if not response.ok:
                raise OperatorError(f"Genesys token endpoint failed: {self._describe(response)}")
            self._token = response.json()["access_token"]
        return self._token

    def _url(self, integration_id: str) -> str:
        return f"{self.endpoints.api_base_url}/api/v2/integrations/{integration_id}/config/current"

    def get_config(self, integration_id: str) -> dict[str, Any]:
        response = self._session.get(self._url(integration_id), headers={"Authorization": f"Bearer {self.token()}"}, timeout=TIMEOUT)
        if response.status_code == 404:
            raise OperatorError(f"Genesys integration {integration_id} not found ({self._describe(response)})")
        if not response.ok:
            raise OperatorError(f"reading integration {integration_id} config failed: {self._describe(response)}")
        return response.json()

    def put_config(self, integration_id: str, config: dict[str, Any]) -> dict[str, Any]:
        response = self._session.put(
            self._url(integration_id), json=config, headers={"Authorization": f"Bearer {self.token()}"}, timeout=TIMEOUT
        )
        if response.status_code == 409:
            raise ConcurrentEditError(
                f"integration {integration_id} was changed by someone else since it was read (version {config.get('version')}); "
                "nothing was written. Re-run `gcpipe genesys sync-filter --apply` to diff against the new version"
            )
        if not response.ok:
            raise OperatorError(f"writing integration {integration_id} config failed: {self._describe(response)}")
        return response.json() if response.content else {}


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
    client: IntegrationConfigClient | None = None,
    base_url: str | None = None,
    domain: str | None = None,
) -> FilterDiff:
    rule = load_rule(target)
    expected = rule.topics
    if not expected:
        raise OperatorError(f"rule {rule.name} has no detail-type list in its event pattern; nothing to sync")
    loops = [t for t in expected if t.endswith(FEEDBACK_TOPIC_SUFFIX)]
    if loops:
        raise OperatorError(f"refusing: rule {rule.name} routes {', '.join(loops)}, which write-backs emit (feedback loop)")
    if client is None:
        client_id, client_secret = load_credentials(target)
        client = IntegrationConfigClient(resolve_endpoints(target, base_url=base_url, domain=domain), client_id, client_secret)
    config = client.get_config(integration_id)
    diff = diff_filter(config, expected, integration_id)
    if apply and not diff.in_sync:
        properties = dict(config.get("properties") or {})
        was_string = isinstance(properties.get("eventFilter"), str)
        properties["eventFilter"] = ",".join(expected) if was_string else list(expected)
        body = {**config, "properties": properties, "version": config.get("version")}
        written = client.put_config(integration_id, body)
        diff.applied = True
        diff.new_version = written.get("version")
    return diff
