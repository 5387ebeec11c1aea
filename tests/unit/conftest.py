"""Shared fixtures: invalid policy files and the line each problem is on, and a
UI authorization root that every user can search.

``parse_policy`` and ``cylc-hub policy check`` must report the same
``FILE:LINE: reason`` for each case, so both test modules take the cases
through the ``invalid_case`` fixture that ``pytest_generate_tests`` fills in.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import textwrap
from typing import NamedTuple

import pytest


class InvalidCase(NamedTuple):
    """Policy text with one problem: its line and words the reason must contain."""

    name: str
    text: str
    line: int
    words: tuple[str, ...]


def _case(name: str, text: str, line: int, *words: str) -> InvalidCase:
    return InvalidCase(name, textwrap.dedent(text).lstrip("\n"), line, words)


INVALID_CASES = [
    _case(
        "toml-syntax",
        """
        [[rules]]
        owners = = ["*"]
        """,
        2,
        "invalid TOML",
    ),
    _case(
        "toml-duplicate-key",
        """
        [[rules]]
        owners = ["*"]
        viewers = ["*"]
        owners = ["alice"]
        """,
        4,
        "invalid TOML",
        "Cannot overwrite",
    ),
    _case(
        "toml-unterminated-array",
        """
        [[rules]]
        owners = ["*",
        """,
        2,
        "invalid TOML",
    ),
    _case(
        "unknown-top-level-key",
        """
        # Top-level keys come before the first table header.
        colour = "red"

        [groups]
        ops = ["carol"]
        """,
        2,
        "unknown",
        "'colour'",
        "Valid keys are 'groups', 'rules' and 'settings'",
    ),
    _case(
        "unknown-top-level-table",
        """
        [[rule]]
        owners = ["*"]
        """,
        1,
        "unknown top-level key 'rule'",
        "Did you mean 'rules'?",
    ),
    _case(
        "unknown-key-in-rule",
        """
        [[rules]]
        owners = ["*"]
        viewers = ["*"]
        defaults = ["READ"]
        """,
        4,
        "unknown key 'defaults' in rule 1",
        "Did you mean 'default'?",
    ),
    _case(
        "unknown-permission-close",
        """
        [[rules]]
        owners = ["*"]
        viewers = ["*"]
        default = ["READ"]
        limit = ["READ", "trigerr"]
        """,
        5,
        "unknown permission 'trigerr' in 'limit'",
        "Did you mean 'trigger'?",
    ),
    _case(
        "unknown-permission-case",
        """
        [[rules]]
        owners = ["*"]
        viewers = ["*"]
        default = ["!control"]
        """,
        4,
        "unknown permission '!control' in 'default'",
        "Did you mean '!CONTROL'?",
    ),
    _case(
        "unknown-permission-far",
        """
        [[rules]]
        owners = ["*"]
        viewers = ["*"]
        default = ["xyzzy"]
        """,
        4,
        "unknown permission 'xyzzy'",
        "read, READ, CONTROL, ALL",
    ),
    _case(
        "permission-not-string",
        """
        [[rules]]
        owners = ["*"]
        viewers = ["*"]
        default = [1]
        """,
        4,
        "permission 1 in 'default' is not a string",
    ),
    _case(
        "permissions-not-list",
        """
        [[rules]]
        owners = ["*"]
        viewers = ["*"]
        default = "READ"
        """,
        4,
        "'default' must be a list",
        "'READ'",
    ),
    _case(
        "missing-owners",
        """
        [groups]
        ops = ["carol"]

        [[rules]]
        viewers = ["group:ops"]
        default = ["READ"]
        """,
        4,
        "rule 1 has no 'owners'",
    ),
    _case(
        "missing-viewers",
        """
        [[rules]]
        owners = ["*"]

        [[rules]]
        owners = ["*"]
        viewers = ["*"]
        default = ["READ"]
        """,
        1,
        "rule 1 has no 'viewers'",
    ),
    _case(
        "missing-viewers-second-rule",
        """
        [[rules]]
        owners = ["*"]
        viewers = ["*"]

        [[rules]]
        owners = ["*"]
        default = ["READ"]
        """,
        5,
        "rule 2 has no 'viewers'",
    ),
    _case(
        "empty-owners",
        """
        [[rules]]
        owners = []
        viewers = ["*"]
        """,
        2,
        "'owners' is empty",
    ),
    _case(
        "empty-viewers",
        """
        [[rules]]
        owners = ["*"]
        viewers = []
        """,
        3,
        "'viewers' is empty",
    ),
    _case(
        "selectors-not-list",
        """
        [[rules]]
        owners = "alice"
        viewers = ["*"]
        """,
        2,
        "'owners' must be a list of selectors",
        "'alice'",
    ),
    _case(
        "selector-not-string",
        """
        [[rules]]
        owners = ["*"]
        viewers = ["bob", 42]
        """,
        3,
        "selector 42 in 'viewers' is not a string",
    ),
    _case(
        "glob-unclosed-bracket",
        """
        [[rules]]
        owners = ["op-[ab"]
        viewers = ["*"]
        """,
        2,
        "invalid selector 'op-[ab' in 'owners'",
        "'[' is not closed",
    ),
    _case(
        "glob-stray-bracket",
        """
        [[rules]]
        owners = ["*"]
        viewers = ["op-a]"]
        """,
        3,
        "invalid selector 'op-a]' in 'viewers'",
        "']' has no matching '['",
    ),
    _case(
        "selector-empty-string",
        """
        [[rules]]
        owners = [""]
        viewers = ["*"]
        """,
        2,
        "invalid selector '' in 'owners'",
    ),
    _case(
        "selector-spaces",
        """
        [[rules]]
        owners = ["alice "]
        viewers = ["*"]
        """,
        2,
        "invalid selector 'alice ' in 'owners'",
        "spaces",
    ),
    _case(
        "selector-group-without-name",
        """
        [[rules]]
        owners = ["group:"]
        viewers = ["*"]
        """,
        2,
        "invalid selector 'group:' in 'owners'",
    ),
    _case(
        "selector-group-glob",
        """
        [groups]
        ops = ["carol"]

        [[rules]]
        owners = ["*"]
        viewers = ["group:op*"]
        """,
        6,
        "invalid selector 'group:op*'",
        "cannot be globs",
    ),
    _case(
        "undeclared-group",
        """
        [groups]
        ops = ["carol"]

        [[rules]]
        owners = ["*"]
        viewers = ["group:opz"]
        default = ["READ"]
        """,
        6,
        "names group 'opz', which [groups] does not declare",
        "Did you mean 'ops'?",
        "os_groups = true",
    ),
    _case(
        "undeclared-group-no-groups-table",
        """
        [[rules]]
        owners = ["group:staff"]
        viewers = ["*"]
        """,
        2,
        "names group 'staff'",
    ),
    _case(
        "default-wider-than-limit",
        """
        [[rules]]
        owners = ["*"]
        viewers = ["*"]
        default = ["READ", "pause"]
        limit = ["READ"]
        """,
        4,
        "'default' ['READ', 'pause'] is wider than 'limit' ['READ']",
        "does not allow 'pause'",
    ),
    _case(
        "default-wider-than-negated-limit",
        """
        [[rules]]
        owners = ["*"]
        viewers = ["*"]
        default = ["CONTROL"]
        limit = ["ALL", "!stop"]
        """,
        4,
        "does not allow 'stop'",
    ),
    _case(
        "group-member-not-string",
        """
        [groups]
        ops = ["carol", 7]
        """,
        2,
        "group 'ops' has member 7, which is not a string",
    ),
    _case(
        "group-not-list",
        """
        [groups]
        ops = ["carol"]
        dev = "alice"
        """,
        3,
        "group 'dev' must be a list of user names",
    ),
    _case(
        "groups-not-table",
        """
        groups = ["ops"]
        """,
        1,
        "'groups' must be a table",
    ),
    _case(
        "settings-unknown-key",
        """
        [settings]
        os_group = true
        """,
        2,
        "unknown key 'os_group' in [settings]",
        "Did you mean 'os_groups'?",
    ),
    _case(
        "settings-os-groups-not-bool",
        """
        [settings]
        os_groups = "yes"
        """,
        2,
        "'os_groups' in [settings] must be true or false, not 'yes'",
    ),
    _case(
        "rules-not-array",
        """
        [groups]
        ops = ["carol"]

        [rules]
        owners = ["*"]
        """,
        4,
        "'rules' must be an array of tables",
    ),
    _case(
        "rule-not-table",
        """
        rules = [1]
        """,
        1,
        "rule 1 must be a table",
    ),
    _case(
        "inline-rule-problem-at-rules-key",
        """
        # The inline form has no [[rules]] header to point at.
        rules = [{ owners = ["*"], viewers = [] }]

        [groups]
        ops = ["carol"]
        """,
        2,
        "'viewers' is empty",
    ),
    _case(
        "key-after-multiline-values",
        """
        [groups]
        odd = ['''
        [[rules]]
        limit = 1
        ''']

        [[rules]]
        owners = [
          "alice",
          "bob",
        ]
        viewers = ["*"]
        limit = ["READ", "stpo"]
        """,
        13,
        "unknown permission 'stpo'",
    ),
]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "invalid_case" in metafunc.fixturenames:
        metafunc.parametrize(
            "invalid_case",
            INVALID_CASES,
            ids=[case.name for case in INVALID_CASES],
        )


@pytest.fixture
def searchable_root():
    """A directory under /tmp that every user can search, as ui_authorization_root must be.

    pytest's ``tmp_path`` lies below a directory of mode 0700, which the
    spawners reject as a UI authorization root when they run as root.
    """
    root = tempfile.mkdtemp(prefix="cylc-hub-ui-authorization-test-")
    os.chmod(root, 0o755)
    yield root
    shutil.rmtree(root)
