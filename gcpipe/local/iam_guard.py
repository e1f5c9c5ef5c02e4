"""In a worker: every AWS API call is checked against the function role's policy before it is sent.

Installed by the worker bootstrap before the handler is imported, as a botocore handler registered in
every session the function creates (``worker.register_botocore_handler``):

- ``before-parameter-build``: keeps the call's API parameters (``call_resources`` reads them);
- ``before-call``: decides (``iam.RolePolicy.decide``); a denied call is answered here, without reaching
  the emulator, with AWS's error (HTTP 400, ``AccessDeniedException``, or ``AccessDenied`` for the query
  protocol services such as SQS) and AWS's message, which botocore raises as a ``ClientError`` as it would
  for the service's own answer. Every decision goes to the runtime (``api`` message) for the
  granted-but-unused report.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from . import worker
from .iam import RolePolicy, call_resources, denial_code, iam_action

_PARAMS_KEY = "gcpipe_iam_params"


def install(policy_file: str, function_name: str) -> None:
    import json

    policy = RolePolicy.from_json(json.loads(Path(policy_file).read_text()))

    def keep_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context[_PARAMS_KEY] = dict(params)

    def check(model: Any, context: dict[str, Any], **_: Any) -> Any:
        service = model.service_model
        action = iam_action(service.signing_name or service.endpoint_prefix, model.name)
        decision = policy.decide(action, call_resources(action, context.get(_PARAMS_KEY) or {}, policy))
        worker.send(
            "api",
            role=policy.role_name,
            allowed=decision.allowed,
            action=decision.action,
            resource=decision.resource,
            statement=decision.statement,
        )
        if decision.allowed:
            return None
        return _denied(denial_code(action), policy.denial_message(decision, function_name))

    worker.register_botocore_handler("before-parameter-build.*.*", keep_params)
    worker.register_botocore_handler("before-call.*.*", check)


def _denied(code: str, message: str) -> tuple[Any, dict[str, Any]]:
    from botocore.awsrequest import AWSResponse

    request_id = str(uuid.uuid4())
    http = AWSResponse("https://iam.local/denied", 400, {"x-amzn-requestid": request_id}, None)
    parsed = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"RequestId": request_id, "HTTPStatusCode": 400, "HTTPHeaders": {}, "RetryAttempts": 0},
    }
    return http, parsed
