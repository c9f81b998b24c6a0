"""One root error for the project, small subclasses per concern."""

from __future__ import annotations


class LeadlineError(Exception):
    """Root of every error this project raises on purpose."""


class ConfigError(LeadlineError):
    """A setting is missing or malformed; the message names the setting."""

    def __init__(self, setting: str, reason: str) -> None:
        super().__init__(f"{setting}: {reason}")
        self.setting = setting
        self.reason = reason


class BrokerUnavailable(LeadlineError):
    """There is no usable connection to RabbitMQ right now."""


class PublishNotConfirmed(LeadlineError):
    """The broker did not confirm a publish: nacked, returned, timed out or dropped."""
