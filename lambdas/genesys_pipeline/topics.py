"""The conversation topics the pipeline handles: their template prefix and what each one needs.

A module of its own because the outcome metrics' ``topic`` dimension needs the topic names, and
the error logger records outcomes without parsing events: importing the parser (events, model,
migrations, dedup) there would cost its cold start for nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

TOPIC_PREFIX = "v2.detail.events.conversation.{id}."


@dataclass(frozen=True)
class TopicSpec:
    short: str  # "acd.end"
    participant_level: bool  # needs eventBody.participantId
    requires_queue: bool = False  # needs eventBody.queueId

    @property
    def template(self) -> str:
        return TOPIC_PREFIX + self.short


# Conversation topics Genesys publishes to EventBridge (team Genesys reference). Every one
# describes a participant's step (attributes too: they are participant attributes, and the
# write-back needs the participant). The acd topics carry the routing fields, queueId first.
SUPPORTED_TOPICS: Mapping[str, TopicSpec] = {
    spec.template: spec
    for spec in (
        TopicSpec("acd.start", participant_level=True, requires_queue=True),
        TopicSpec("acd.end", participant_level=True, requires_queue=True),
        TopicSpec("acw", participant_level=True),
        TopicSpec("attributes", participant_level=True),
        TopicSpec("customer.start", participant_level=True),
        TopicSpec("customer.end", participant_level=True),
        TopicSpec("flow.start", participant_level=True),
        TopicSpec("flow.end", participant_level=True),
        TopicSpec("outbound", participant_level=True),
        TopicSpec("user.start", participant_level=True),
        TopicSpec("user.end", participant_level=True),
        TopicSpec("voicemail.start", participant_level=True),
        TopicSpec("voicemail.end", participant_level=True),
    )
}
