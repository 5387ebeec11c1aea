"""Selectors, site rules and owners' grants: the parts a decision combines."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from cylc_hub.policy.permissions import expand_permission, split_permissions

GROUP_PREFIX = "group:"
GLOB_CHARACTERS = frozenset("*?[")

ANY = "any"
USER = "user"
GROUP = "group"
GLOB = "glob"


def find_bracket_problem(pattern: str) -> str | None:
    """Return why the brackets of a shell-style glob are unbalanced, or None.

    ``fnmatch`` reads an unclosed ``[`` as a literal character, which in a
    selector is almost always a typing mistake, so the policy rejects it.
    The rules follow ``fnmatch``: ``[!`` negates a class, and a ``]`` right
    after ``[`` or ``[!`` is a member of the class.
    """
    index = 0
    while index < len(pattern):
        character = pattern[index]

        if character == "]":
            return "The ']' has no matching '[', so remove it or add a '['."

        if character == "[":
            end = index + 1
            if end < len(pattern) and pattern[end] == "!":
                end += 1
            if end < len(pattern) and pattern[end] == "]":
                end += 1
            close = pattern.find("]", end)
            if close < 0:
                return "The '[' is not closed, so add ']' or remove the '['."
            index = close

        index += 1
    return None


@dataclass(frozen=True)
class Selector:
    """A user name, ``group:NAME``, ``*`` or a shell-style glob such as ``op-*``."""

    text: str
    kind: str
    name: str
    _pattern: re.Pattern[str] | None = field(
        default=None, compare=False, repr=False
    )

    @classmethod
    def parse(cls, text: str) -> Selector:
        """Parse a selector, raising ValueError with the reason and the fix."""
        if not text:
            raise ValueError(
                "Use a user name, 'group:NAME', '*' or a glob such as 'op-*'."
            )
        if text != text.strip():
            raise ValueError("Remove the spaces before and after the name.")

        if text.startswith(GROUP_PREFIX):
            return cls._parse_group(text)
        if text == "*":
            return cls(text, ANY, text)
        if GLOB_CHARACTERS & set(text) or "]" in text:
            return cls._parse_glob(text)
        return cls(text, USER, text)

    @classmethod
    def _parse_group(cls, text: str) -> Selector:
        name = text[len(GROUP_PREFIX):]
        if not name or name != name.strip():
            raise ValueError("Write the group name right after 'group:'.")
        if GLOB_CHARACTERS & set(name):
            raise ValueError(
                "Group names are matched exactly and cannot be globs."
            )
        return cls(text, GROUP, name)

    @classmethod
    def _parse_glob(cls, text: str) -> Selector:
        problem = find_bracket_problem(text)
        if problem:
            raise ValueError(problem)
        pattern = re.compile(fnmatch.translate(text))
        return cls(text, GLOB, text, pattern)

    def matches(self, user: str, groups: frozenset[str]) -> bool:
        """Return whether the selector matches ``user``, who is in ``groups``."""
        if self.kind == ANY:
            return True
        if self.kind == USER:
            return user == self.name
        if self.kind == GROUP:
            return self.name in groups
        return self._pattern is not None and self._pattern.match(user) is not None

    def __str__(self) -> str:
        return self.text


def matches_any(
    selectors: Iterable[Selector], user: str, groups: frozenset[str]
) -> bool:
    """Return whether any selector matches ``user``."""
    return any(selector.matches(user, groups) for selector in selectors)


@dataclass(frozen=True)
class Rule:
    """One ``[[rules]]`` table of a policy file.

    ``number`` is the rule's position in the file counting from 1, and
    ``line`` is the line of its ``[[rules]]`` header. ``limit`` equals
    ``default`` when the file leaves it out, and ``limit_given`` records
    which case applies.
    """

    number: int
    line: int
    owners: tuple[Selector, ...]
    viewers: tuple[Selector, ...]
    default: tuple[str, ...] = ()
    limit: tuple[str, ...] = ()
    limit_given: bool = True
    default_allowed: frozenset[str] = field(init=False, repr=False)
    default_denied: frozenset[str] = field(init=False, repr=False)
    limit_allowed: frozenset[str] = field(init=False, repr=False)
    limit_denied: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Expanding once here keeps each decision to set operations.
        default_allowed, default_denied = split_permissions(self.default)
        limit_allowed, limit_denied = split_permissions(self.limit)
        object.__setattr__(self, "default_allowed", default_allowed)
        object.__setattr__(self, "default_denied", default_denied)
        object.__setattr__(self, "limit_allowed", limit_allowed)
        object.__setattr__(self, "limit_denied", limit_denied)

    def matches(
        self,
        owner: str,
        owner_groups: frozenset[str],
        viewer: str,
        viewer_groups: frozenset[str],
    ) -> bool:
        """Return whether the rule applies to ``viewer`` looking at ``owner``."""
        return matches_any(self.viewers, viewer, viewer_groups) and matches_any(
            self.owners, owner, owner_groups
        )

    def label(self) -> str:
        """Return a short name for messages, such as ``rule 2 (line 7)``."""
        return f"rule {self.number} (line {self.line})"

    def to_json(self) -> dict:
        """Return the rule as written in the file, for explanations."""
        return {
            "kind": "rule",
            "rule": self.number,
            "line": self.line,
            "owners": [selector.text for selector in self.owners],
            "viewers": [selector.text for selector in self.viewers],
            "default": list(self.default),
            "limit": list(self.limit),
            "limit_given": self.limit_given,
        }


@dataclass(frozen=True)
class Grant:
    """Permissions an owner gives to the viewers that ``viewer`` selects."""

    viewer: Selector
    permissions: tuple[str, ...]
    allowed: frozenset[str] = field(init=False, repr=False)
    denied: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        allowed, denied = split_permissions(self.permissions)
        object.__setattr__(self, "allowed", allowed)
        object.__setattr__(self, "denied", denied)

    @classmethod
    def parse(cls, selector: object, permissions: object) -> Grant:
        """Build a grant from a selector and a list of permission entries.

        Raises ValueError naming the first invalid value.
        """
        if not isinstance(selector, str):
            raise ValueError(f"grant selector {selector!r} is not a string")
        try:
            viewer = Selector.parse(selector)
        except ValueError as error:
            raise ValueError(f"invalid grant selector {selector!r}. {error}") from None

        if isinstance(permissions, str) or not isinstance(permissions, Iterable):
            raise ValueError(
                f"grant permissions {permissions!r} must be a list of names"
            )
        entries = tuple(permissions)
        for entry in entries:
            _check_grant_entry(entry)
        return cls(viewer, entries)

    def label(self) -> str:
        """Return a short name for messages, such as ``the grant to 'bob'``."""
        return f"the grant to {self.viewer.text!r}"

    def to_json(self) -> dict:
        """Return the grant for explanations."""
        return {
            "kind": "grant",
            "viewer": self.viewer.text,
            "permissions": list(self.permissions),
        }


def _check_grant_entry(entry: object) -> None:
    if not isinstance(entry, str):
        raise ValueError(f"grant permission {entry!r} is not a string")
    try:
        expand_permission(entry)
    except KeyError:
        raise ValueError(f"unknown grant permission {entry!r}") from None


def parse_grants(grants: Iterable[object] | None) -> tuple[Grant, ...]:
    """Turn ``(viewer_selector, permissions)`` pairs into grants.

    Items that already are ``Grant`` objects pass through. Raises ValueError
    for the first invalid pair.
    """
    if grants is None:
        return ()

    parsed = []
    for item in grants:
        if isinstance(item, Grant):
            parsed.append(item)
            continue
        try:
            selector, permissions = item
        except (TypeError, ValueError):
            raise ValueError(
                f"grant {item!r} must be a (viewer_selector, permissions) pair"
            ) from None
        parsed.append(Grant.parse(selector, permissions))
    return tuple(parsed)
