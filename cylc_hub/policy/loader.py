"""Read a TOML policy file, validate it, and build a ``Policy``.

Validation collects every problem it finds, each with the line of the
offending table or key, and raises one ``PolicyError`` that lists them all.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from collections.abc import Mapping
from typing import Any

from cylc_hub.policy.errors import PolicyError, PolicyIssue
from cylc_hub.policy.lines import LineIndex
from cylc_hub.policy.model import Policy
from cylc_hub.policy.permissions import (
    VALID_SUMMARY,
    is_permission_entry,
    resolve_permissions,
    suggest_permission,
)
from cylc_hub.policy.rules import GROUP, Rule, Selector

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on Python 3.10
    import tomli as tomllib

TOP_LEVEL_KEYS = ("groups", "rules", "settings")
SETTINGS_KEYS = ("os_groups", "jupyterhub_groups")
RULE_KEYS = ("owners", "viewers", "default", "limit")

TOML_POSITION = re.compile(r"\s*\(at line (\d+), column \d+\)$|\s*\(at end of document\)$")

#: How many permission names a "default wider than limit" message lists.
MAX_LISTED = 5


# A site policy lists rules, groups and names; anything larger is a mistake,
# and parsing it would hold up every spawn and reload.
MAX_POLICY_BYTES = 5_000_000

UTF8_BOM = b"\xef\xbb\xbf"


def load_policy(path: str | os.PathLike[str]) -> Policy:
    """Read and validate the policy file at ``path``.

    A file that cannot be read raises PolicyError at line 0, and a file that
    is not UTF-8 raises it at the line of the first invalid byte.
    """
    source = os.fspath(path)
    return decode_policy(read_policy_file(source), source)


def read_policy_file(path: str | os.PathLike[str]) -> bytes:
    """Return the bytes of the policy file, up to one byte past the size limit.

    Raises PolicyError at line 0 when the file cannot be read.
    """
    source = os.fspath(path)
    try:
        with open(source, "rb") as stream:
            return stream.read(MAX_POLICY_BYTES + 1)
    except OSError as error:
        reason = error.strerror or str(error)
        raise PolicyError([
            PolicyIssue(source, 0, f"cannot read the policy file: {reason}")
        ]) from None


def decode_policy(raw: bytes, source: str) -> Policy:
    """Validate the bytes of a policy file read from ``source``.

    Raises PolicyError for a file over the size limit, for invalid UTF-8 at
    the line of the first invalid byte, and for every problem of the policy.
    """
    if len(raw) > MAX_POLICY_BYTES:
        raise PolicyError([
            PolicyIssue(
                source,
                0,
                f"the policy file is larger than {MAX_POLICY_BYTES // 1_000_000} MB. "
                "Use groups and globs in place of long lists of names.",
            )
        ])

    try:
        text = raw.removeprefix(UTF8_BOM).decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[:error.start].count(b"\n") + 1
        raise PolicyError([
            PolicyIssue(source, line, "invalid UTF-8. Save the file as UTF-8.")
        ]) from None

    return parse_policy(text, source)


def parse_policy(text: str, source: str = "<string>") -> Policy:
    """Parse and validate policy TOML text, naming ``source`` in errors.

    Raises PolicyError listing every problem found.
    """
    data = _parse_toml(text, source)
    return _Validator(source, LineIndex(text)).build(data)


def _parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except RecursionError:
        # tomllib recurses once per nested array or inline table.
        raise PolicyError([
            PolicyIssue(source, 1, "invalid TOML: arrays or tables are nested too deeply")
        ]) from None
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        position = TOML_POSITION.search(message)

        if position and position.group(1):
            line = int(position.group(1))
        else:
            line = max(1, len(text.splitlines()))
        if position:
            message = message[:position.start()]

        raise PolicyError([
            PolicyIssue(source, line, f"invalid TOML: {message}")
        ]) from None


def _suggest(name: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def _describe_valid_keys(keys: tuple[str, ...]) -> str:
    quoted = [repr(key) for key in keys]
    if len(quoted) == 1:
        return f"The only valid key is {quoted[0]}."
    return f"Valid keys are {', '.join(quoted[:-1])} and {quoted[-1]}."


class _Validator:
    """Collects the problems of one policy file while building its parts."""

    def __init__(self, source: str, lines: LineIndex):
        self.source = source
        self.lines = lines
        self.issues: list[PolicyIssue] = []

    def report(self, line: int | None, reason: str) -> None:
        self.issues.append(PolicyIssue(self.source, line or 1, reason))

    def build(self, data: dict[str, Any]) -> Policy:
        self._check_top_level(data)
        settings = self._read_settings(data.get("settings", {}))
        groups = self._read_groups(data.get("groups", {}))
        declared = set(groups) | self._declared_names(data.get("groups"))
        # Groups from the host or the hub need no declaration in the file.
        outside_groups = settings["os_groups"] or settings["jupyterhub_groups"]
        rules = self._read_rules(data.get("rules", []), declared, outside_groups)

        if self.issues:
            raise PolicyError(self.issues)
        return Policy(
            rules,
            groups,
            source=self.source,
            os_groups=settings["os_groups"],
            jupyterhub_groups=settings["jupyterhub_groups"],
        )

    def _check_top_level(self, data: dict[str, Any]) -> None:
        for key in data:
            if key not in TOP_LEVEL_KEYS:
                self.report(
                    self.lines.top_line(key),
                    f"unknown top-level key {key!r}.{_suggest(key, TOP_LEVEL_KEYS)} "
                    f"{_describe_valid_keys(TOP_LEVEL_KEYS)}",
                )

    # [settings]

    def _read_settings(self, settings: object) -> dict[str, bool]:
        flags = dict.fromkeys(SETTINGS_KEYS, False)
        line = self.lines.top_line("settings")
        if not isinstance(settings, dict):
            self.report(line, "'settings' must be a table, written as [settings].")
            return flags

        for key in settings:
            if key not in SETTINGS_KEYS:
                self.report(
                    self.lines.key_line(("settings", -1), key) or line,
                    f"unknown key {key!r} in [settings].{_suggest(key, SETTINGS_KEYS)} "
                    f"{_describe_valid_keys(SETTINGS_KEYS)}",
                )

        for key in SETTINGS_KEYS:
            value = settings.get(key, False)
            if isinstance(value, bool):
                flags[key] = value
            else:
                self.report(
                    self.lines.key_line(("settings", -1), key) or line,
                    f"{key!r} in [settings] must be true or false, not {value!r}.",
                )
        return flags

    # [groups]

    @staticmethod
    def _declared_names(groups: object) -> set[str]:
        # Names of invalid groups still count as declared, so one broken
        # group does not also make every rule that uses it an error.
        return set(groups) if isinstance(groups, dict) else set()

    def _read_groups(self, groups: object) -> dict[str, frozenset[str]]:
        if not isinstance(groups, dict):
            self.report(
                self.lines.top_line("groups"),
                "'groups' must be a table of NAME = [\"user\", ...], written under [groups].",
            )
            return {}

        valid = {}
        for name, members in groups.items():
            line = self.lines.key_line(("groups", -1), name) or self.lines.top_line("groups")
            if self._check_members(name, members, line):
                valid[name] = frozenset(members)
        return valid

    def _check_members(self, name: str, members: object, line: int | None) -> bool:
        if not isinstance(members, list):
            self.report(
                line,
                f"group {name!r} must be a list of user names, not {members!r}.",
            )
            return False

        valid = True
        for member in members:
            if not isinstance(member, str):
                self.report(
                    line,
                    f"group {name!r} has member {member!r}, which is not a "
                    "string. Write user names in quotes.",
                )
                valid = False
        return valid

    # [[rules]]

    def _read_rules(self, rules: object, declared: set[str], os_groups: bool) -> list[Rule]:
        if not isinstance(rules, list):
            self.report(
                self.lines.top_line("rules"),
                "'rules' must be an array of tables, written as [[rules]] headers.",
            )
            return []

        built = []
        for index, entry in enumerate(rules):
            reader = _RuleReader(self, index, declared, os_groups)
            rule = reader.read(entry)
            if rule is not None:
                built.append(rule)
        return built


class _RuleReader:
    """Validates and builds the rule at one position of the ``rules`` array."""

    def __init__(
        self,
        validator: _Validator,
        index: int,
        declared: set[str],
        os_groups: bool,
    ):
        self.validator = validator
        self.index = index
        self.number = index + 1
        self.declared = declared
        self.os_groups = os_groups

        lines = validator.lines
        self.line = lines.rule_line(index) or lines.top_line("rules") or 1

    def report(self, key: str | None, reason: str) -> None:
        line = None
        if key is not None:
            line = self.validator.lines.rule_key_line(self.index, key)
        self.validator.report(line or self.line, reason)

    def read(self, entry: object) -> Rule | None:
        if not isinstance(entry, dict):
            self.report(
                None,
                f"rule {self.number} must be a table, not {entry!r}. Write each rule "
                "under a [[rules]] header.",
            )
            return None

        self._check_keys(entry)
        owners = self._read_selectors(entry, "owners")
        viewers = self._read_selectors(entry, "viewers")
        default = self._read_permissions(entry, "default")
        limit = self._read_permissions(entry, "limit") if "limit" in entry else default

        if "limit" in entry and default is not None and limit is not None:
            self._check_default_within_limit(default, limit)
        if None in (owners, viewers, default, limit):
            return None

        return Rule(
            number=self.number,
            line=self.line,
            owners=owners,
            viewers=viewers,
            default=default,
            limit=limit,
            limit_given="limit" in entry,
        )

    def _check_keys(self, entry: Mapping[str, object]) -> None:
        for key in entry:
            if key not in RULE_KEYS:
                self.report(
                    key,
                    f"unknown key {key!r} in rule {self.number}.{_suggest(key, RULE_KEYS)} "
                    f"{_describe_valid_keys(RULE_KEYS)}",
                )

    def _read_selectors(
        self, entry: Mapping[str, object], key: str
    ) -> tuple[Selector, ...] | None:
        if key not in entry:
            self.report(
                None,
                f"rule {self.number} has no {key!r}. Add {key} = [...], "
                "for example [\"*\"] for everyone.",
            )
            return None

        values = entry[key]
        if not isinstance(values, list):
            self.report(
                key,
                f"{key!r} must be a list of selectors such as [\"alice\", "
                f"\"group:ops\"], not {values!r}.",
            )
            return None
        if not values:
            self.report(
                key,
                f"{key!r} is empty. List at least one selector, or \"*\" for everyone.",
            )
            return None

        selectors = [self._read_selector(key, value) for value in values]
        if None in selectors:
            return None
        return tuple(selectors)

    def _read_selector(self, key: str, value: object) -> Selector | None:
        if not isinstance(value, str):
            self.report(
                key,
                f"selector {value!r} in {key!r} is not a string. Use a user "
                "name, \"group:NAME\", \"*\" or a glob such as \"op-*\".",
            )
            return None

        try:
            selector = Selector.parse(value)
        except ValueError as error:
            self.report(key, f"invalid selector {value!r} in {key!r}. {error}")
            return None

        if selector.kind == GROUP and not self.os_groups:
            if selector.name not in self.declared:
                self._report_undeclared_group(key, selector)
                return None
        return selector

    def _report_undeclared_group(self, key: str, selector: Selector) -> None:
        declared = sorted(self.declared)
        self.report(
            key,
            f"selector {selector.text!r} in {key!r} names group "
            f"{selector.name!r}, which [groups] does not declare."
            f"{_suggest(selector.name, declared)} Declare it under [groups], "
            "or set os_groups = true (the host's groups) or jupyterhub_groups = true "
            "(the hub's groups) under [settings].",
        )

    def _read_permissions(
        self, entry: Mapping[str, object], key: str
    ) -> tuple[str, ...] | None:
        values = entry.get(key, [])
        if not isinstance(values, list):
            self.report(
                key,
                f"{key!r} must be a list of permissions such as [\"READ\"], "
                f"not {values!r}.",
            )
            return None

        valid = True
        for value in values:
            if not is_permission_entry(value):
                self._report_permission(key, value)
                valid = False
        return tuple(values) if valid else None

    def _report_permission(self, key: str, value: object) -> None:
        if not isinstance(value, str):
            self.report(
                key,
                f"permission {value!r} in {key!r} is not a string. "
                f"Use {VALID_SUMMARY}.",
            )
            return

        suggestion = suggest_permission(value)
        if suggestion:
            hint = f"Did you mean {suggestion!r}?"
        else:
            hint = f"Use {VALID_SUMMARY}."
        self.report(key, f"unknown permission {value!r} in {key!r}. {hint}")

    def _check_default_within_limit(
        self, default: tuple[str, ...], limit: tuple[str, ...]
    ) -> None:
        beyond = sorted(resolve_permissions(default) - resolve_permissions(limit))
        if not beyond:
            return

        listed = ", ".join(repr(name) for name in beyond[:MAX_LISTED])
        if len(beyond) > MAX_LISTED:
            listed += f" and {len(beyond) - MAX_LISTED} more"
        self.report(
            "default",
            f"'default' {list(default)!r} is wider than 'limit' {list(limit)!r}, "
            f"because the limit does not allow {listed}. Add them to 'limit' "
            "or remove them from 'default'.",
        )
