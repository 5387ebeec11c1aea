"""The validated site policy: groups, rules and the decisions they give."""

from __future__ import annotations

import grp
import os
import pwd
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType

from cylc_hub.policy import decide as decide_module
from cylc_hub.policy.decide import Decision
from cylc_hub.policy.index import OwnerIndex
from cylc_hub.policy.permissions import READ
from cylc_hub.policy.rules import Rule, matches_any, parse_grants

GroupsOf = Callable[[str], Iterable[str]]
GrantsOf = Callable[[str], Iterable[object] | None]


def os_groups_of(user: str) -> frozenset[str]:
    """Return the names of the hub host's groups that ``user`` belongs to.

    The result includes the primary group. A user unknown to the host has no
    groups, and a group id without a name is left out.
    """
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return frozenset()

    names = set()
    for gid in os.getgrouplist(user, entry.pw_gid):
        try:
            names.add(grp.getgrgid(gid).gr_name)
        except KeyError:
            continue
    return frozenset(names)


class Policy:
    """A validated policy file.

    ``groups`` maps each group that the file declares to its members.
    ``os_groups`` is True when the file's ``[settings]`` table makes the hub
    host's groups count as well. Build one with ``parse_policy`` or
    ``load_policy``.
    """

    def __init__(
        self,
        rules: Iterable[Rule] = (),
        groups: Mapping[str, Iterable[str]] | None = None,
        *,
        source: str = "<string>",
        os_groups: bool = False,
        jupyterhub_groups: bool = False,
    ):
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.groups: Mapping[str, frozenset[str]] = MappingProxyType(
            {name: frozenset(members) for name, members in (groups or {}).items()}
        )
        self.source = source
        self.os_groups = os_groups
        self.jupyterhub_groups = jupyterhub_groups
        self._file_groups_by_user = self._index_members(self.groups)

    @staticmethod
    def _index_members(
        groups: Mapping[str, frozenset[str]],
    ) -> dict[str, frozenset[str]]:
        by_user: dict[str, set[str]] = {}
        for name, members in groups.items():
            for member in members:
                by_user.setdefault(member, set()).add(name)
        return {user: frozenset(names) for user, names in by_user.items()}

    def __repr__(self) -> str:
        return (
            f"Policy(source={self.source!r}, rules={len(self.rules)}, "
            f"groups={len(self.groups)}, os_groups={self.os_groups})"
        )

    def groups_of(self, user: str, extra: Iterable[str] = ()) -> frozenset[str]:
        """Return the groups of ``user``: the file's, the host's when enabled, and ``extra``.

        ``extra`` is for group sources the policy cannot see, such as
        JupyterHub groups.
        """
        groups = set(self._file_groups_by_user.get(user, ()))
        if self.os_groups:
            groups |= os_groups_of(user)
        groups.update(extra)
        return frozenset(groups)

    def decide(
        self,
        owner: str,
        viewer: str,
        *,
        owner_groups: Iterable[str] = (),
        viewer_groups: Iterable[str] = (),
        grants: Iterable[object] | None = None,
    ) -> Decision:
        """Decide and explain what ``viewer`` may do on ``owner``'s UI server.

        Each user's groups are ``groups_of(user)`` plus the groups given
        here, which are for sources the policy cannot see, such as
        JupyterHub groups. ``grants`` are the owner's grants, as
        ``(viewer_selector, permissions)`` pairs or ``Grant`` objects. When
        any matches the viewer they replace the rule defaults. Raises
        ValueError for an invalid grant.
        """
        return decide_module.decide(
            self.rules,
            owner,
            viewer,
            owner_groups=self.groups_of(owner, owner_groups),
            viewer_groups=self.groups_of(viewer, viewer_groups),
            grants=parse_grants(grants),
        )

    def viewable(
        self,
        viewer: str,
        owners: Iterable[str],
        *,
        groups_of: GroupsOf | None = None,
        grants_of: GrantsOf | None = None,
    ) -> dict[str, frozenset[str]]:
        """Return the owners whose servers ``viewer`` may read, with the permissions.

        The viewer is left out. ``groups_of(user)`` returns a user's groups
        from sources the policy cannot see, which count in addition to
        ``self.groups_of(user)``. ``grants_of(owner)`` returns an owner's
        grants, none by default. Owner groups are looked up only when a rule
        that matches the viewer selects owners by group. Raises ValueError
        for an invalid grant.
        """

        def lookup_groups(user: str) -> frozenset[str]:
            return self.groups_of(user, groups_of(user) if groups_of else ())

        viewer_groups = lookup_groups(viewer)

        # Rules that cannot match the viewer are dropped once, not per owner.
        index = OwnerIndex([
            rule for rule in self.rules if matches_any(rule.viewers, viewer, viewer_groups)
        ])
        if not index.rules:
            return {}

        viewable: dict[str, frozenset[str]] = {}
        # Many owners match the same rules, such as those for "*", so the
        # result from the rule defaults is computed once per set of rules.
        results_from_defaults: dict[tuple[int, ...], frozenset[str]] = {}

        for owner in owners:
            if owner == viewer:
                continue

            owner_groups = lookup_groups(owner) if index.uses_groups else frozenset()
            positions = index.positions_for(owner, owner_groups)
            if not positions:
                # Without a matching rule the limits are empty, whatever the grants.
                continue

            grants = parse_grants(grants_of(owner)) if grants_of else ()
            grants_in_use = decide_module.match_grants(grants, viewer, viewer_groups)
            if grants_in_use:
                combination = decide_module.combine(index.rules_at(positions), grants_in_use)
                permissions = combination.result
            elif positions in results_from_defaults:
                permissions = results_from_defaults[positions]
            else:
                permissions = decide_module.combine(index.rules_at(positions), ()).result
                results_from_defaults[positions] = permissions

            if READ in permissions:
                viewable[owner] = permissions
        return viewable
