"""Errors raised for a policy file that fails to load, parse or validate."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple


class PolicyIssue(NamedTuple):
    """One problem in a policy file, at a line counted from 1.

    Line 0 means the problem concerns the whole file, such as a file that
    cannot be read.
    """

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


class PolicyError(ValueError):
    """A policy file that cannot be used, with every problem found in it.

    ``str(error)`` is one ``FILE:LINE: reason`` line per issue, sorted by
    line, as compilers and linters print them.
    """

    def __init__(self, issues: Iterable[PolicyIssue]):
        self.issues: list[PolicyIssue] = sorted(
            issues, key=lambda issue: issue.line
        )
        super().__init__("\n".join(str(issue) for issue in self.issues))
