"""Errors the CLI reports itself, with Docker's exit codes."""

from __future__ import annotations


class CLIError(Exception):
    """Printed as-is on stderr; the process exits with `code`."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class TemplateError(Exception):
    """A --format template could not be executed against the data (docker exits 1). Defined here, not
    in berth.cli.template, so that main can catch it without importing the template engine."""


class TemplateParseError(TemplateError):
    """The template text itself is malformed (docker exits 64)."""


def start_failure_code(message: str) -> int:
    """How docker maps a create/start failure to an exit code: 127 not found, 126 not runnable, else 125."""
    m = message.lower()
    if "executable file not found" in m or "no such file or directory" in m or "cannot find the file" in m:
        return 127
    if "permission denied" in m or "is a directory" in m or "exec format error" in m:
        return 126
    return 125
