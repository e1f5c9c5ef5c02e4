"""The OAuth client's id and secret, from Secrets Manager through Powertools parameters.

The secret is JSON ``{"client_id": ..., "client_secret": ...}``. Powertools caches
it for ``max_age`` seconds, so a rotated secret is picked up without a cold start.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..aws_faults import aws_fault, dependency_unavailable
from ..errors import GenesysBadCredentials

REQUIRED_KEYS = ("client_id", "client_secret")
SECRETS_DEPENDENCY = "Secrets Manager"


@dataclass(frozen=True)
class ClientCredentials:
    client_id: str
    client_secret: str = field(repr=False)  # never in a repr, so never in a log line or a traceback


def load_client_credentials(secret_name: str, *, max_age: int, force_fetch: bool = False) -> ClientCredentials:
    # Imported on the first token fetch, not at module import: Powertools parameters loads every
    # provider (SSM, AppConfig, DynamoDB, Secrets Manager) and boto3 with them.
    from aws_lambda_powertools.utilities import parameters

    try:
        data = parameters.get_secret(secret_name, transform="json", max_age=max_age, force_fetch=force_fetch)
    except parameters.exceptions.GetParameterError as exc:
        # Powertools keeps the botocore error only as __context__; classify by its code.
        fault = aws_fault(exc)
        if fault is not None and fault.code == "ResourceNotFoundException":
            # A missing secret is a deployment fault: not retried.
            raise GenesysBadCredentials(f"secret {secret_name} does not exist") from None
        unavailable = dependency_unavailable(exc, SECRETS_DEPENDENCY)
        if unavailable is not None:
            raise unavailable from exc  # throttling, 5xx, an unreachable endpoint: retried
        raise  # access denied, a KMS decryption failure ...: fails at once
    except parameters.exceptions.TransformParameterError:
        # The transform error quotes nothing of the value, but say plainly what is wrong.
        raise GenesysBadCredentials(
            f'secret {secret_name} is not JSON; expected {{"client_id": ..., "client_secret": ...}}'
        ) from None
    if not isinstance(data, dict):
        raise GenesysBadCredentials(f"secret {secret_name} must be a JSON object with keys client_id and client_secret")
    for key in REQUIRED_KEYS:
        if not isinstance(data.get(key), str) or not data[key]:
            raise GenesysBadCredentials(f"secret {secret_name} has no {key} (a non-empty string is required)")
    return ClientCredentials(client_id=data["client_id"], client_secret=data["client_secret"])
