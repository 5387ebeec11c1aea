"""Combine matching rules and an owner's grants into a viewer's permissions.

For an owner and a viewer who is someone else:

- limits are the union of the ``limit`` of every matching rule, minus each
  permission that any matching limit negates;
- grants are the union of the owner's grants that match the viewer or, when
  none match, of the matching rules' ``default``, minus each permission that
  the grants in use negate;
- the result is the grants within the limits.

Only unions, differences and intersections of sets are used, so the order of
rules, of grants and of the entries in each list never changes the result.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from cylc_hub.policy.permissions import ALL_PERMISSIONS
from cylc_hub.policy.rules import Grant, Rule

#: Values of ``Decision.basis``.
BASIS_OWNER = "owner"
BASIS_GRANTS = "grants"
BASIS_DEFAULTS = "defaults"


@dataclass(frozen=True)
class Decision:
    """The permissions ``user`` has on ``owner``'s UI server, and why.

    ``matched`` lists the matching rules in file order, then the owner's
    grants in use. ``basis`` is ``"owner"`` when the user is the owner,
    ``"grants"`` when the owner's grants replaced the rule defaults, and
    ``"defaults"`` otherwise. ``reasons`` explains each permission that a
    matching rule or grant mentions.
    """

    owner: str
    user: str
    permissions: frozenset[str]
    matched: tuple[Rule | Grant, ...] = ()
    basis: str = BASIS_DEFAULTS
    reasons: tuple[str, ...] = ()

    def to_json(self) -> dict:
        """Return the decision as a JSON-ready dict with sorted permissions."""
        return {
            "owner": self.owner,
            "user": self.user,
            "permissions": sorted(self.permissions),
            "basis": self.basis,
            "matched": [item.to_json() for item in self.matched],
            "reasons": list(self.reasons),
        }


class Combination(NamedTuple):
    """The sets a decision combines, before the result is taken."""

    limits_allowed: frozenset[str]
    limits_denied: frozenset[str]
    grants_allowed: frozenset[str]
    grants_denied: frozenset[str]

    @property
    def limits(self) -> frozenset[str]:
        return self.limits_allowed - self.limits_denied

    @property
    def grants(self) -> frozenset[str]:
        return self.grants_allowed - self.grants_denied

    @property
    def result(self) -> frozenset[str]:
        return self.grants & self.limits


def union(sets: Iterable[frozenset[str]]) -> frozenset[str]:
    """Return the union of ``sets``, empty when there are none."""
    return frozenset().union(*sets)


def match_rules(
    rules: Iterable[Rule],
    owner: str,
    owner_groups: frozenset[str],
    viewer: str,
    viewer_groups: frozenset[str],
) -> tuple[Rule, ...]:
    """Return the rules whose owners match ``owner`` and viewers match ``viewer``."""
    return tuple(
        rule
        for rule in rules
        if rule.matches(owner, owner_groups, viewer, viewer_groups)
    )


def match_grants(
    grants: Iterable[Grant], viewer: str, viewer_groups: frozenset[str]
) -> tuple[Grant, ...]:
    """Return the grants whose selector matches ``viewer``."""
    return tuple(
        grant for grant in grants if grant.viewer.matches(viewer, viewer_groups)
    )


def combine(rules: Sequence[Rule], grants: Sequence[Grant]) -> Combination:
    """Collect the limits of ``rules`` and the grants in use.

    ``grants`` are the owner's grants that match the viewer. When there are
    none, the rules' defaults are the grants in use.
    """
    if grants:
        grants_allowed = union(grant.allowed for grant in grants)
        grants_denied = union(grant.denied for grant in grants)
    else:
        grants_allowed = union(rule.default_allowed for rule in rules)
        grants_denied = union(rule.default_denied for rule in rules)

    return Combination(
        limits_allowed=union(rule.limit_allowed for rule in rules),
        limits_denied=union(rule.limit_denied for rule in rules),
        grants_allowed=grants_allowed,
        grants_denied=grants_denied,
    )


def decide(
    rules: Iterable[Rule],
    owner: str,
    viewer: str,
    *,
    owner_groups: frozenset[str],
    viewer_groups: frozenset[str],
    grants: Sequence[Grant],
) -> Decision:
    """Decide and explain what ``viewer`` may do on ``owner``'s UI server."""
    if owner == viewer:
        return Decision(
            owner,
            viewer,
            ALL_PERMISSIONS,
            basis=BASIS_OWNER,
            reasons=("The owner has every permission on their own server.",),
        )

    matching_rules = match_rules(rules, owner, owner_groups, viewer, viewer_groups)
    grants_in_use = match_grants(grants, viewer, viewer_groups)
    combination = combine(matching_rules, grants_in_use)

    return Decision(
        owner,
        viewer,
        combination.result,
        matched=matching_rules + grants_in_use,
        basis=BASIS_GRANTS if grants_in_use else BASIS_DEFAULTS,
        reasons=explain(combination, matching_rules, grants_in_use),
    )


def explain(
    combination: Combination,
    rules: Sequence[Rule],
    grants: Sequence[Grant],
) -> tuple[str, ...]:
    """Explain each permission that the matching rules or grants mention."""
    if not rules:
        return (
            "No rule matches this owner and viewer, so the viewer has no "
            "permissions.",
        )

    mentioned = (
        combination.limits_allowed
        | combination.limits_denied
        | combination.grants_allowed
        | combination.grants_denied
    )

    # Permissions with the same explanation share one sentence, so a group
    # such as CONTROL reads as one line, not twenty.
    permissions_by_reason: dict[str, list[str]] = {}
    for permission in sorted(mentioned):
        reason = _explain_one(permission, combination, rules, grants)
        permissions_by_reason.setdefault(reason, []).append(permission)

    return tuple(
        f"{', '.join(permissions)}: {reason}"
        for reason, permissions in permissions_by_reason.items()
    )


def _explain_one(
    permission: str,
    combination: Combination,
    rules: Sequence[Rule],
    grants: Sequence[Grant],
) -> str:
    granted_by = _describe_grant_sources(permission, rules, grants, negated=False)
    limited_by = _join(
        f"the limit of {rule.label()}"
        for rule in rules
        if permission in rule.limit_allowed
    )

    if permission in combination.result:
        return f"allowed, because {granted_by} grants it within {limited_by}."

    if permission in combination.limits_denied:
        negated_by = _join(
            f"the limit of {rule.label()}"
            for rule in rules
            if permission in rule.limit_denied
        )
        return f"denied, because {negated_by} negates it."

    if permission in combination.grants_denied:
        negated_by = _describe_grant_sources(permission, rules, grants, negated=True)
        return f"denied, because {negated_by} negates it."

    if permission in combination.grants_allowed:
        return f"denied, because no matching limit includes it, although {granted_by} grants it."

    return f"not granted, although {limited_by} would allow the owner to grant it."


def _describe_grant_sources(
    permission: str,
    rules: Sequence[Rule],
    grants: Sequence[Grant],
    *,
    negated: bool,
) -> str:
    if grants:
        return _join(
            grant.label()
            for grant in grants
            if permission in (grant.denied if negated else grant.allowed)
        )
    return _join(
        f"the default of {rule.label()}"
        for rule in rules
        if permission in (rule.default_denied if negated else rule.default_allowed)
    )


def _join(phrases: Iterable[str]) -> str:
    return " and ".join(phrases)
