"""The one error type of the command's own checks."""

from __future__ import annotations

__all__ = ["CliError"]


class CliError(ValueError):
    """A user mistake the command reports on one line (exit code 1)."""
