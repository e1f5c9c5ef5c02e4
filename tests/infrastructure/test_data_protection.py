"""PII backstop: every log group masks and audits phone numbers and e-mail addresses."""

from __future__ import annotations

import json

from infra.data_protection import DATA_IDENTIFIERS


def log_groups(s):
    return {k: v["Properties"] for k, v in s.resources("AWS::Logs::LogGroup").items()}


def test_every_log_group_but_the_audit_one_has_the_data_protection_policy(shipped):
    audit_id, audit = shipped.one("AWS::Logs::LogGroup", "DataProtectionAudit")
    others = {k: v for k, v in log_groups(shipped).items() if k != audit_id}
    assert len(others) == 4  # three functions, the state machine
    assert "DataProtectionPolicy" not in audit["Properties"]
    for lid, group in others.items():
        policy = group["DataProtectionPolicy"]
        [audit_st] = [s for s in policy["Statement"] if "Audit" in s["Operation"]]
        [mask_st] = [s for s in policy["Statement"] if "Deidentify" in s["Operation"]]
        # By Ref, so that CloudFormation creates the audit group first.
        assert audit_st["Operation"]["Audit"]["FindingsDestination"]["CloudWatchLogs"]["LogGroup"] == {
            "Ref": audit_id
        }, lid
        for statement in (audit_st, mask_st):
            text = json.dumps(statement["DataIdentifier"])
            for identifier in ("EmailAddress", "PhoneNumber-US", "PhoneNumber-DE", "PhoneNumber-GB"):
                assert f"data-identifier/{identifier}" in text, (lid, identifier)
            assert len(statement["DataIdentifier"]) == len(DATA_IDENTIFIERS)


def test_the_audit_log_group_keeps_the_environment_retention(shipped):
    _, audit = shipped.one("AWS::Logs::LogGroup", "DataProtectionAudit")
    assert audit["Properties"]["RetentionInDays"] == shipped.config.log_retention_days
