"""Announcements of retrain decisions and rollouts: to an SNS topic, or to the log when no topic is set."""

from __future__ import annotations

import logging
from typing import Any

from .aws import aws_errors

log = logging.getLogger(__name__)


class SnsNotifier:
    def __init__(self, sns: Any, topic_arn: str):
        self.sns, self.topic = sns, topic_arn

    def publish(self, subject: str, message: dict[str, Any]) -> None:
        import json

        with aws_errors(f"publishing to {self.topic}"):
            self.sns.publish(TopicArn=self.topic, Subject=subject[:100], Message=json.dumps(message, default=str))


class NullNotifier:
    def publish(self, subject: str, message: dict[str, Any]) -> None:
        log.info("announcement (no topic configured): %s", subject)
