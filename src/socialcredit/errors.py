"""Errors meant for users: one plain sentence, with the file and line where there is one."""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """Bad input or usage. The CLI prints it as one sentence and exits with code 2."""

    def __init__(self, message: str, *, path: str | Path | None = None, line: int | None = None):
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        super().__init__(self.sentence())

    def sentence(self) -> str:
        where = ""
        if self.path is not None:
            where = f"{self.path}, line {self.line}: " if self.line else f"{self.path}: "
        return f"{where}{self.message}"


class RunError(Exception):
    """A failure that is not the user's input (exit code 1)."""


class Interrupted(Exception):
    """The user stopped a command (Ctrl-C). The CLI prints the sentence (what was left and
    how to go on) and exits with code 130, as shells expect of an interrupted command."""
