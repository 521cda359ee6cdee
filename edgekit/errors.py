"""Expected failures. The CLI prints these as one line and exits non-zero; anything else is a bug."""

from __future__ import annotations


class EdgekitError(Exception):
    """Base for every failure a user can cause and fix (bad data, bad config, refused artifact)."""

    exit_code = 2


class DataError(EdgekitError):
    """Input data is missing, malformed or unusable."""


class ConfigError(EdgekitError):
    """A configuration file or flag is invalid; the message names the field and the file."""


class BundleError(EdgekitError):
    """A model bundle is incomplete, tampered with, unsigned or fails its self-test."""


class GateError(EdgekitError):
    """An artifact failed a release gate (parity, quality or latency) and was not written."""

    exit_code = 3

    def __init__(self, message: str, mode: str | None = None) -> None:
        super().__init__(message)
        self.mode = mode  # the variant (fp32, int8-dynamic, ...) the release gate refused, when it was one
