"""Permission names, groups, negation and suggestions for typing mistakes."""

from __future__ import annotations

import pytest

from cylc_hub.policy import ALL_PERMISSIONS, MUTATIONS, PERMISSION_GROUPS, resolve_permissions
from cylc_hub.policy.permissions import expand_permission, suggest_permission


def test_mutations_match_cylc_uiserver():
    authorise = pytest.importorskip("cylc.uiserver.authorise")

    cylc_all = set(authorise.get_list_of_mutations())
    cylc_control = set(authorise.get_list_of_mutations(control=True))

    assert MUTATIONS == cylc_all - {"read"}
    assert ALL_PERMISSIONS == cylc_all
    assert PERMISSION_GROUPS["CONTROL"] == cylc_control


def test_mutations_are_snake_case():
    for name in MUTATIONS:
        assert name == name.lower()
        assert "-" not in name


def test_all_permissions_add_read():
    assert ALL_PERMISSIONS == MUTATIONS | {"read"}
    assert len(MUTATIONS) == 21


def test_groups_expand():
    assert PERMISSION_GROUPS["READ"] == {"read"}
    assert PERMISSION_GROUPS["ALL"] == ALL_PERMISSIONS
    assert "read" not in PERMISSION_GROUPS["CONTROL"]
    assert "broadcast" not in PERMISSION_GROUPS["CONTROL"]
    assert "trigger" in PERMISSION_GROUPS["CONTROL"]


@pytest.mark.parametrize(
    ("entry", "negated", "names"),
    [
        ("read", False, {"read"}),
        ("READ", False, {"read"}),
        ("pause", False, {"pause"}),
        ("!stop", True, {"stop"}),
        ("!READ", True, {"read"}),
        ("!CONTROL", True, MUTATIONS - {"broadcast"}),
        ("!ALL", True, ALL_PERMISSIONS),
    ],
)
def test_expand_permission(entry, negated, names):
    assert expand_permission(entry) == (negated, frozenset(names))


@pytest.mark.parametrize("entry", ["", "!", "!!read", "Read", "control", "all", "pause ", "mutate"])
def test_expand_rejects_unknown(entry):
    with pytest.raises(KeyError):
        expand_permission(entry)


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ([], set()),
        (["READ"], {"read"}),
        (["ALL", "!broadcast"], ALL_PERMISSIONS - {"broadcast"}),
        (["!broadcast", "ALL"], ALL_PERMISSIONS - {"broadcast"}),
        (["CONTROL", "!CONTROL", "READ"], {"read"}),
        (["!read"], set()),
        (["READ", "!ALL", "pause"], set()),
    ],
)
def test_resolve_negation_wins(entries, expected):
    assert resolve_permissions(entries) == expected


@pytest.mark.parametrize(
    ("entry", "suggestion"),
    [
        ("Read", "read"),
        ("control", "CONTROL"),
        ("!control", "!CONTROL"),
        ("all", "ALL"),
        ("Pause", "pause"),
        ("trigerr", "trigger"),
        ("brodcast", "broadcast"),
        ("!stpo", "!stop"),
        ("xyzzy", None),
    ],
)
def test_suggest_permission(entry, suggestion):
    assert suggest_permission(entry) == suggestion
