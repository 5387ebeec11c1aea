"""Properties of decisions over small random policies, users and groups."""

from __future__ import annotations

import fnmatch
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from cylc_hub.policy import ALL_PERMISSIONS, parse_policy
from cylc_hub.policy.permissions import resolve_permissions, split_permissions

USERS = ["ann", "ben", "cat", "op-1", "op-2"]
# "zoe" is in no group and matches only "*" and the globs that fit her name.
EVERYONE = USERS + ["zoe"]
GROUP_NAMES = ["g1", "g2"]
SELECTORS = USERS + ["*", "op-*", "?a?", "[ab]*", "[!o]*", "group:g1", "group:g2"]
ENTRIES = [
    "read",
    "READ",
    "CONTROL",
    "ALL",
    "pause",
    "stop",
    "broadcast",
    "trigger",
    "!read",
    "!READ",
    "!CONTROL",
    "!ALL",
    "!pause",
    "!stop",
    "!broadcast",
]

selector_lists = st.lists(st.sampled_from(SELECTORS), min_size=1, max_size=3)
entry_lists = st.lists(st.sampled_from(ENTRIES), max_size=4)

rule_specs = st.lists(
    st.fixed_dictionaries({
        "owners": selector_lists,
        "viewers": selector_lists,
        "default": entry_lists,
        "limit": st.none() | entry_lists,
    }),
    max_size=5,
)
group_specs = st.fixed_dictionaries({
    name: st.lists(st.sampled_from(USERS), max_size=3, unique=True)
    for name in GROUP_NAMES
})
grant_specs = st.lists(
    st.tuples(st.sampled_from(SELECTORS), st.lists(st.sampled_from(ENTRIES), max_size=3)),
    max_size=3,
)


def make_valid(rule: dict) -> dict:
    """Drop a limit narrower than the default, which the loader rejects."""
    limit = rule["limit"]
    if limit is not None and not resolve_permissions(rule["default"]) <= resolve_permissions(limit):
        return {**rule, "limit": None}
    return rule


def render(groups: dict, rules: list[dict]) -> str:
    """Write a policy as TOML. JSON strings and arrays of strings are valid TOML."""
    lines = ["[groups]"]
    for name, members in groups.items():
        lines.append(f"{name} = {json.dumps(members)}")

    for rule in rules:
        lines.append("[[rules]]")
        for key in ("owners", "viewers", "default", "limit"):
            if rule.get(key) is not None:
                lines.append(f"{key} = {json.dumps(rule[key])}")
    return "\n".join(lines) + "\n"


def shuffled(random, items: list) -> list:
    return random.sample(items, len(items))


def shuffle_policy(random, groups: dict, rules: list[dict]) -> tuple[dict, list[dict]]:
    """Reorder the groups, their members, the rules and every list in them."""
    new_groups = {
        name: shuffled(random, groups[name]) for name in shuffled(random, list(groups))
    }
    new_rules = []
    for rule in shuffled(random, rules):
        new_rules.append({
            key: None if value is None else shuffled(random, value)
            for key, value in rule.items()
        })
    return new_groups, new_rules


def selector_matches(selector: str, user: str, groups: dict) -> bool:
    """Match a selector the plain way, as a reference for the policy's matcher."""
    if selector == "*":
        return True
    if selector.startswith("group:"):
        return user in groups[selector[len("group:"):]]
    return fnmatch.fnmatchcase(user, selector)


def any_matches(selectors: list[str], user: str, groups: dict) -> bool:
    return any(selector_matches(selector, user, groups) for selector in selectors)


def reference_permissions(groups, rules, grants, owner, viewer) -> frozenset[str]:
    """Compute a decision straight from the definition, without the policy code."""
    if owner == viewer:
        return ALL_PERMISSIONS

    matching = [
        rule
        for rule in rules
        if any_matches(rule["owners"], owner, groups) and any_matches(rule["viewers"], viewer, groups)
    ]
    limit_entries = [
        entry
        for rule in matching
        for entry in (rule["default"] if rule["limit"] is None else rule["limit"])
    ]

    grant_entries = [
        entry
        for selector, entries in grants
        if selector_matches(selector, viewer, groups)
        for entry in entries
    ]
    matched_grant = any(selector_matches(selector, viewer, groups) for selector, _ in grants)
    if not matched_grant:
        grant_entries = [entry for rule in matching for entry in rule["default"]]

    return resolve_permissions(grant_entries) & resolve_permissions(limit_entries)


@settings(max_examples=300, deadline=None)
@given(
    groups=group_specs,
    rules=rule_specs,
    grants=st.none() | grant_specs,
    random=st.randoms(use_true_random=False),
)
def test_order_never_changes_decision(groups, rules, grants, random):
    rules = [make_valid(rule) for rule in rules]
    policy = parse_policy(render(groups, rules))

    other_groups, other_rules = shuffle_policy(random, groups, rules)
    reordered = parse_policy(render(other_groups, other_rules))
    other_grants = None
    if grants is not None:
        other_grants = [
            (selector, shuffled(random, entries)) for selector, entries in shuffled(random, grants)
        ]

    for owner in EVERYONE:
        for viewer in EVERYONE:
            first = policy.decide(owner, viewer, grants=grants)
            second = reordered.decide(owner, viewer, grants=other_grants)
            assert first.permissions == second.permissions, (owner, viewer)
            assert first.basis == second.basis, (owner, viewer)


@settings(max_examples=300, deadline=None)
@given(groups=group_specs, rules=rule_specs, grants=st.none() | grant_specs)
def test_result_within_limits(groups, rules, grants):
    rules = [make_valid(rule) for rule in rules]
    policy = parse_policy(render(groups, rules))

    for owner in EVERYONE:
        for viewer in EVERYONE:
            if owner == viewer:
                continue
            decision = policy.decide(owner, viewer, grants=grants)
            limit_entries = [
                entry
                for rule in rules
                if any_matches(rule["owners"], owner, groups)
                and any_matches(rule["viewers"], viewer, groups)
                for entry in (rule["default"] if rule["limit"] is None else rule["limit"])
            ]
            allowed, denied = split_permissions(limit_entries)

            assert decision.permissions <= allowed, (owner, viewer)
            assert not decision.permissions & denied, (owner, viewer)


@settings(max_examples=300, deadline=None)
@given(groups=group_specs, rules=rule_specs, grants=st.none() | grant_specs)
def test_decision_matches_definition(groups, rules, grants):
    rules = [make_valid(rule) for rule in rules]
    policy = parse_policy(render(groups, rules))

    for owner in EVERYONE:
        for viewer in EVERYONE:
            decision = policy.decide(owner, viewer, grants=grants)
            expected = reference_permissions(groups, rules, grants or [], owner, viewer)
            assert decision.permissions == expected, (owner, viewer)


@settings(max_examples=300, deadline=None)
@given(groups=group_specs, rules=rule_specs, grants=st.none() | grant_specs)
def test_viewable_agrees_with_decide(groups, rules, grants):
    rules = [make_valid(rule) for rule in rules]
    policy = parse_policy(render(groups, rules))

    def grants_of(owner):
        # Owners whose names start with "op" grant nothing, so both the
        # grants and the defaults paths run in one policy.
        return None if owner.startswith("op") else grants

    for viewer in EVERYONE:
        expected = {}
        for owner in EVERYONE:
            permissions = policy.decide(owner, viewer, grants=grants_of(owner)).permissions
            if owner != viewer and "read" in permissions:
                expected[owner] = permissions
        assert policy.viewable(viewer, EVERYONE, grants_of=grants_of) == expected, viewer
