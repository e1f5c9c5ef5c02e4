"""Which AWS SDK errors are transient: decided by botocore error code and status, along the wrapping chain."""

from __future__ import annotations

import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyPersistenceLayerError
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)

from genesys_pipeline.aws_faults import aws_fault, dependency_unavailable
from genesys_pipeline.errors import AwsDependencyUnavailable


def client_error(code: str, status: int, operation: str = "PutItem") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": f"message of {code}"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        operation,
    )


def wrapped_by_idempotency(exc: Exception) -> IdempotencyPersistenceLayerError:
    """As Powertools raises it: ``raise IdempotencyPersistenceLayerError(msg, exc) from exc``."""
    try:
        raise IdempotencyPersistenceLayerError("Failed to save in progress record to idempotency store", exc) from exc
    except IdempotencyPersistenceLayerError as wrapped:
        return wrapped


def wrapped_by_parameters(exc: Exception) -> GetParameterError:
    """As Powertools parameters raises it: ``raise GetParameterError(str(exc))`` inside its except (no ``from``)."""
    try:
        try:
            raise exc
        except Exception as inner:  # noqa: BLE001 - as Powertools catches it
            raise GetParameterError(str(inner))  # noqa: B904 - as Powertools raises it: no ``from``
    except GetParameterError as wrapped:
        return wrapped


def _id(exc: Exception) -> str:
    return exc.response["Error"]["Code"] if isinstance(exc, ClientError) else type(exc).__name__


TRANSIENT = [
    client_error("ProvisionedThroughputExceededException", 400),
    client_error("ThrottlingException", 400),
    client_error("RequestLimitExceeded", 400),
    client_error("InternalServerError", 500),
    client_error("ServiceUnavailable", 503),
    client_error("InternalServiceError", 500, "GetSecretValue"),  # Secrets Manager's 5xx code
    client_error("SomethingNew", 502),  # any 5xx, whatever its code
    EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"),
    ConnectTimeoutError(endpoint_url="https://secretsmanager.us-east-1.amazonaws.com"),
    ReadTimeoutError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"),
    ConnectionClosedError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"),
]
PERMANENT = [
    client_error("AccessDeniedException", 400),
    client_error("ResourceNotFoundException", 400),  # a missing table or secret
    client_error("ValidationException", 400),
    client_error("DecryptionFailure", 400, "GetSecretValue"),
    NoCredentialsError(),
    ParamValidationError(report="bad"),
]


@pytest.mark.parametrize("exc", TRANSIENT, ids=_id)
@pytest.mark.parametrize(
    "wrap", [lambda e: e, wrapped_by_idempotency, wrapped_by_parameters], ids=["bare", "idempotency", "parameters"]
)
def test_throttling_5xx_and_connection_errors_are_transient_however_wrapped(exc, wrap):
    error = dependency_unavailable(wrap(exc), "idempotency table")
    assert isinstance(error, AwsDependencyUnavailable)
    assert error.dependency == "idempotency table" and str(error).startswith("idempotency table: ")
    assert error.code in str(error)


@pytest.mark.parametrize("exc", PERMANENT, ids=_id)
@pytest.mark.parametrize(
    "wrap", [lambda e: e, wrapped_by_idempotency, wrapped_by_parameters], ids=["bare", "idempotency", "parameters"]
)
def test_access_denied_missing_resources_and_validation_errors_are_not(exc, wrap):
    assert dependency_unavailable(wrap(exc), "idempotency table") is None


def test_the_message_names_operation_code_and_status_but_not_the_services_message():
    error = dependency_unavailable(client_error("ThrottlingException", 400, "UpdateItem"), "idempotency table")
    assert str(error) == "idempotency table: UpdateItem ThrottlingException (HTTP 400)"
    assert "message of" not in str(error)


def test_the_code_decides_not_the_message_text():
    # A permanent error whose message happens to mention throttling stays permanent
    exc = ClientError(
        {
            "Error": {"Code": "AccessDeniedException", "Message": "ThrottlingException 503 mentioned"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        },
        "GetItem",
    )
    assert aws_fault(exc).transient is False


def test_no_botocore_error_on_the_chain_is_no_fault():
    assert aws_fault(ValueError("nope")) is None
    assert aws_fault(wrapped_by_idempotency(ValueError("serialization"))) is None
