"""Redact customer identifiers and credentials from anything that gets logged.

Genesys reference: ``ani``, ``dnis`` and ``externalContactId`` are customer
data; tokens and client secrets must never reach a log line.

Two nets: by key (the fields known to carry customer data, whatever their value), and by value (phone
numbers and e-mail addresses wherever they appear, whatever the key). The CloudWatch Logs data
protection policy on every log group (infra/data_protection.py) is the backstop behind both.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "***"

# Keys whose values are never logged, compared case-insensitively.
SENSITIVE_KEYS = frozenset(
    k.lower()
    for k in (
        "ani",
        "dnis",
        "externalContactId",
        "addressNormalized",
        "addressRaw",
        "addressDisplay",
        "callbackNumbers",
        "phoneNumber",
        "email",
        "access_token",
        "accessToken",
        "token",
        "client_secret",
        "clientSecret",
        "authorization",
        "password",
        "secret",
        "SecretString",
    )
)

# Values that look like customer addresses or bearer credentials, wherever they appear.
_SENSITIVE_VALUE = re.compile(
    r"(?i)(?:\b(?:tel|sip|sips):[^\s\"',}]+)|(?:\bbearer\s+[A-Za-z0-9._~+/=-]+)|(?:\bbasic\s+[A-Za-z0-9+/=]{8,})"
)
# Phone numbers and e-mail addresses by their shape, under any key (a `message`, a `note`, a cause):
# - an e-mail address;
# - an international number: + then 7 to 15 digits, up to two spaces, dots, dashes or brackets between;
# - a North American number written 555-123-4567, (555) 123-4567 or 555.123.4567.
# Not bare digit runs: epoch milliseconds (13 digits), durations and counts would be masked with them.
_EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
_INTERNATIONAL_PHONE = r"(?<![\w+])\+(?:[\s.()-]{0,2}\d){7,15}(?!\d)"
_NANP_PHONE = r"(?<![\w-])(?:\(\d{3}\)\s?|\d{3}[.-])\d{3}[.-]\d{4}(?![\w-])"
_CONTACT_VALUE = re.compile(f"{_EMAIL}|{_INTERNATIONAL_PHONE}|{_NANP_PHONE}")

# The same keys inside a string holding JSON (a Step Functions input, a Lambda cause), quotes
# possibly escaped once or more: '"externalContactId": "1245"' or '\\"ani\\": \\"tel:..\\"'.
_SENSITIVE_JSON_MEMBER = re.compile(
    r'(?i)(\\*"(?:' + "|".join(re.escape(k) for k in sorted(SENSITIVE_KEYS)) + r')\\*"\s*:\s*\\*")(.*?)(\\*")'
)


def _redact_text(text: str) -> str:
    text = _SENSITIVE_JSON_MEMBER.sub(lambda m: m.group(1) + REDACTED + m.group(3), text)
    text = _SENSITIVE_VALUE.sub(REDACTED, text)
    return _CONTACT_VALUE.sub(REDACTED, text)


def redact(value: Any) -> Any:
    """Return a copy of ``value`` with sensitive keys and values masked."""
    if isinstance(value, dict):
        return {
            k: (REDACTED if isinstance(k, str) and k.lower() in SENSITIVE_KEYS and v not in (None, "") else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _redact_text(value)
    return value
