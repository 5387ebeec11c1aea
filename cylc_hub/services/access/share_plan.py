"""Plan the hub access that enforces the policy, without one share per pair.

Viewers whose selectors match exactly the same rules get the same decision
from the rules' defaults on every owner, so they form one *viewer class*.
Each class gets a *slot*: a pair of hub groups, ``cylc-access-N-viewers``
with the class's members and ``cylc-access-N-owners`` with the owners the
class may read, joined by a hub role (set in ``jupyterhub_config.py``) that
gives the first group ``access:servers!group=`` the second. With R rules
there are at most 2**R classes in theory. In practice there are about as
many as distinct viewer selectors, so the memberships grow with users times
classes. "Everyone reads everyone" at 10,000 users is one class and 20,000
memberships, not 100,000,000 shares.

JupyterHub 6.1.1 cannot do this with group *shares*: it leaves group shares
out of the scopes of the OAuth token a shared server receives
(``jupyterhub.scopes.get_scopes_for`` counts only the user's own shares), so
the server rejects the viewer.

An owner's grants change the decision for the viewers they select; those
viewers get user shares of their own. When a grant takes read away from a
member of a class that may read, or a class has no slot, that owner's server
is shared with the class's readers one by one instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from cylc_hub.policy import Policy, parse_grants
from cylc_hub.policy.decide import combine, match_grants
from cylc_hub.policy.index import OwnerIndex
from cylc_hub.policy.permissions import READ
from cylc_hub.policy.rules import ANY, GROUP, USER, Rule, Selector

#: Prefix of the hub groups that the service manages.
GROUP_PREFIX = "cylc-access-"


def viewers_group(slot: int) -> str:
    """Return the name of the hub group that contains the viewers of ``slot``."""
    return f"{GROUP_PREFIX}{slot}-viewers"


def owners_group(slot: int) -> str:
    """Return the name of the hub group that contains the owners ``slot``'s viewers may read."""
    return f"{GROUP_PREFIX}{slot}-owners"


class ViewerIndex:
    """Rules filed under the viewer names, groups and globs that select them."""

    def __init__(self, rules: Iterable[Rule]):
        self.rules = tuple(rules)
        self._for_everyone: set[int] = set()
        self._by_user: dict[str, set[int]] = {}
        self._by_group: dict[str, set[int]] = {}
        self._globs: list[tuple[Selector, int]] = []

        for position, rule in enumerate(self.rules):
            for selector in rule.viewers:
                if selector.kind == ANY:
                    self._for_everyone.add(position)
                elif selector.kind == USER:
                    self._by_user.setdefault(selector.name, set()).add(position)
                elif selector.kind == GROUP:
                    self._by_group.setdefault(selector.name, set()).add(position)
                else:
                    self._globs.append((selector, position))

    def positions_for(self, viewer: str, viewer_groups: frozenset[str]) -> frozenset[int]:
        """Return the positions of the rules whose viewer selectors match ``viewer``."""
        positions = set(self._for_everyone)
        positions |= self._by_user.get(viewer, set())
        for group in viewer_groups:
            positions |= self._by_group.get(group, set())
        for selector, position in self._globs:
            if position not in positions and selector.matches(viewer, viewer_groups):
                positions.add(position)
        return frozenset(positions)


def class_name(positions: frozenset[int], rules: tuple[Rule, ...]) -> str:
    """Return a stable name of the viewer class that matches the rules at ``positions``.

    The name is derived from the rules' text, so it stays the same across
    service restarts while the policy does not change.
    """
    digest = hashlib.sha256()
    for position in sorted(positions):
        digest.update(repr(rules[position].to_json()).encode())
    return digest.hexdigest()[:16]


@dataclass
class ViewerClasses:
    """The viewer classes of a policy over a set of users."""

    policy: Policy
    groups_of: Mapping[str, frozenset[str]]
    positions_of: dict[str, frozenset[int]] = field(default_factory=dict)
    members: dict[frozenset[int], set[str]] = field(default_factory=dict)
    names: dict[frozenset[int], str] = field(default_factory=dict)
    members_of_group: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def build(
        cls, policy: Policy, users: Iterable[str], extra_groups: Callable[[str], Iterable[str]]
    ) -> ViewerClasses:
        """Assign each of ``users`` to its class; users that no rule selects get none."""
        index = ViewerIndex(policy.rules)
        groups_of = {user: policy.groups_of(user, extra_groups(user)) for user in users}
        classes = cls(policy, groups_of)
        for user, groups in groups_of.items():
            for group in groups:
                classes.members_of_group.setdefault(group, set()).add(user)
            positions = index.positions_for(user, groups)
            if not positions:
                continue
            classes.positions_of[user] = positions
            classes.members.setdefault(positions, set()).add(user)
            if positions not in classes.names:
                classes.names[positions] = class_name(positions, policy.rules)
        return classes

    def ordered(self) -> list[frozenset[int]]:
        """Return the classes, largest first, for handing out the slots."""
        return sorted(self.members, key=lambda key: (-len(self.members[key]), self.names[key]))


@dataclass(frozen=True)
class OwnerShares:
    """The access one owner's server needs: viewer classes (by slot) and user shares."""

    slots: frozenset[int]
    users: frozenset[str]

    @property
    def count(self) -> int:
        """Return the number of hub objects this costs: memberships and shares."""
        return len(self.slots) + len(self.users)


class SharePlanner:
    """Compute each owner's access from the policy, the viewer classes and the grants.

    ``slot_of`` maps a class to its slot number; a class without one is
    served with user shares.
    """

    def __init__(self, classes: ViewerClasses, slot_of: dict[frozenset[int], int]):
        self.classes = classes
        self.slot_of = slot_of
        self.policy = classes.policy
        self.owner_index = OwnerIndex(self.policy.rules)
        self._result_cache: dict[frozenset[int], frozenset[str]] = {}

    def _default_result(self, positions: frozenset[int]) -> frozenset[str]:
        if positions not in self._result_cache:
            rules = [self.policy.rules[position] for position in sorted(positions)]
            self._result_cache[positions] = combine(rules, ()).result
        return self._result_cache[positions]

    def _selected_by_grants(self, grants) -> set[str]:
        selected = set()
        for grant in grants:
            if grant.viewer.kind == USER:
                if grant.viewer.name in self.classes.groups_of:
                    selected.add(grant.viewer.name)
            elif grant.viewer.kind == GROUP:
                selected |= self.classes.members_of_group.get(grant.viewer.name, set())
            else:
                selected |= {
                    user
                    for user, groups in self.classes.groups_of.items()
                    if grant.viewer.matches(user, groups)
                }
        return selected

    def _result_with_grants(self, owner_positions, viewer, grants) -> frozenset[str]:
        viewer_groups = self.classes.groups_of.get(viewer, frozenset())
        positions = owner_positions & self.classes.positions_of.get(viewer, frozenset())
        rules = [self.policy.rules[position] for position in sorted(positions)]
        return combine(rules, match_grants(grants, viewer, viewer_groups)).result

    def plan(self, owner: str, grants: Iterable[object] = ()) -> OwnerShares:
        """Return the shares of ``owner``'s server that the policy and ``grants`` need."""
        owner_groups = self.classes.groups_of.get(owner) or self.policy.groups_of(owner)
        owner_positions = frozenset(self.owner_index.positions_for(owner, owner_groups))
        grants = parse_grants(grants)
        selected = self._selected_by_grants(grants) - {owner}

        # Decisions of the viewers that a grant selects, which differ from their class's.
        reads_with_grants = {
            viewer: READ in self._result_with_grants(owner_positions, viewer, grants)
            for viewer in selected
        }

        slots, users = set(), set()
        for positions, members in self.classes.members.items():
            if READ not in self._default_result(owner_positions & positions):
                continue
            losing_read = {viewer for viewer in members & selected if not reads_with_grants[viewer]}
            if losing_read or positions not in self.slot_of:
                users |= members - losing_read - {owner}
            else:
                slots.add(self.slot_of[positions])

        for viewer, reads in reads_with_grants.items():
            if reads:
                users.add(viewer)

        # A viewer whose class's slot covers this owner needs no share of its own.
        own_users = {user for user in users if self.slot_of_user(user) not in slots}
        return OwnerShares(frozenset(slots), frozenset(own_users))

    def slot_of_user(self, user: str) -> int | None:
        """Return the slot of ``user``'s class, or None."""
        positions = self.classes.positions_of.get(user)
        return None if positions is None else self.slot_of.get(positions)
