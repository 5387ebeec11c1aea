"""An index of rules by owner selector, for deciding one viewer against many owners."""

from __future__ import annotations

from collections.abc import Sequence

from cylc_hub.policy.rules import ANY, GROUP, USER, Rule, Selector


class OwnerIndex:
    """Rules filed under the owner names, groups and globs that select them.

    Looking up one owner costs two dict lookups per group plus one match per
    glob selector, instead of one match per selector of every rule.
    """

    def __init__(self, rules: Sequence[Rule]):
        self.rules = tuple(rules)
        self._for_everyone: set[int] = set()
        self._by_user: dict[str, set[int]] = {}
        self._by_group: dict[str, set[int]] = {}
        self._globs: list[tuple[Selector, int]] = []

        for position, rule in enumerate(self.rules):
            for selector in rule.owners:
                self._add(selector, position)

    def _add(self, selector: Selector, position: int) -> None:
        if selector.kind == ANY:
            self._for_everyone.add(position)
        elif selector.kind == USER:
            self._by_user.setdefault(selector.name, set()).add(position)
        elif selector.kind == GROUP:
            self._by_group.setdefault(selector.name, set()).add(position)
        else:
            self._globs.append((selector, position))

    @property
    def uses_groups(self) -> bool:
        """Whether any rule selects owners by group, so owner groups are needed."""
        return bool(self._by_group)

    def positions_for(self, owner: str, owner_groups: frozenset[str]) -> tuple[int, ...]:
        """Return the positions in ``rules`` of the rules whose owner selectors match ``owner``."""
        positions = set(self._for_everyone)
        positions |= self._by_user.get(owner, set())
        for group in owner_groups:
            positions |= self._by_group.get(group, set())

        for selector, position in self._globs:
            if position not in positions and selector.matches(owner, owner_groups):
                positions.add(position)

        return tuple(sorted(positions))

    def rules_at(self, positions: tuple[int, ...]) -> tuple[Rule, ...]:
        """Return the rules at ``positions``."""
        return tuple(self.rules[position] for position in positions)
