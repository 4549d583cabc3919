"""User-facing errors: bad input is reported in one clear line and exits with code 2."""

from __future__ import annotations

EXIT_USER_ERROR = 2


class UserError(Exception):
    """An error caused by the user's input (config, data, arguments), never a bug of ours.

    The CLI prints ``str(err)`` without a traceback and exits with ``EXIT_USER_ERROR``.
    Messages should name the file, line or key at fault.
    """

    exit_code = EXIT_USER_ERROR


class ConfigError(UserError):
    """A config file problem; ``problems`` holds one line per fault (file:line: key: reason)."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))
