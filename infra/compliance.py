"""cdk-nag at synth: the AWS Solutions pack runs as a policy validation plugin of the app.

cdk-nag 3.x registers packs through CDK's validation framework (``Validations.of(app).add_plugins``)
rather than ``Aspects.of(app).add``: an unacknowledged finding fails ``cdk synth`` with a report naming
the rule and the construct path. Acknowledgments stay in code, next to the resource, each with a reason
(``Validations.of(construct).acknowledge(Acknowledgment(id=..., reason=...))``).
"""

from __future__ import annotations

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks

NAG_FAILED = "ValidationFailed"  # the start of the error CDK raises from app.synth() on findings


def add_compliance_checks(app: App) -> None:
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
