"""The local IAM evaluation's strict guesses: what it cannot evaluate never lets a call through that AWS could
refuse, and an SQS mapping needs what CreateEventSourceMapping checks on the role."""

from __future__ import annotations

from gcpipe.local.iam import RolePolicy, Statement, event_source_denial

QUEUE = "arn:aws:sqs:us-east-1:123456789012:GenesysEvents-dev-events"


def _policy(*statements: Statement) -> RolePolicy:
    return RolePolicy(
        "dispatcher-role", "arn:aws:iam::123456789012:role/dispatcher-role", statements, "123456789012", "us-east-1"
    )


def _statement(index: int, effect: str, actions: tuple[str, ...], *, conditional: bool = False) -> Statement:
    return Statement(index, effect, actions, (), (QUEUE,), (), conditional, "policy")


def test_a_conditional_allow_allows_nothing_locally():
    policy = _policy(_statement(0, "Allow", ("sqs:SendMessage",), conditional=True))
    assert not policy.decide("sqs:SendMessage", [QUEUE]).allowed


def test_a_conditional_deny_denies_as_if_unconditional():
    # Given an allow, and a deny whose condition cannot be evaluated locally
    policy = _policy(
        _statement(0, "Allow", ("sqs:*",)),
        _statement(1, "Deny", ("sqs:SendMessage",), conditional=True),
    )
    # Then the deny wins (ignoring it would let through a call AWS may refuse); other actions stay allowed
    decision = policy.decide("sqs:SendMessage", [QUEUE])
    assert not decision.allowed and decision.statement == 1
    assert policy.decide("sqs:ReceiveMessage", [QUEUE]).allowed


def test_an_event_source_needs_receive_delete_and_get_queue_attributes_on_the_queue():
    full = _policy(_statement(0, "Allow", ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")))
    assert event_source_denial(full, QUEUE) is None
    no_delete = _policy(_statement(0, "Allow", ("sqs:ReceiveMessage", "sqs:GetQueueAttributes")))
    denial = event_source_denial(no_delete, QUEUE)
    assert denial is not None
    assert "does not have permissions to call DeleteMessage on SQS" in denial and QUEUE in denial
