"""Cylc permission names, the groups READ, CONTROL and ALL, and negation.

The names follow cylc-uiserver 1.7.1 (``cylc.uiserver.authorise``): ``read``
plus one permission per GraphQL mutation of the UI server.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

READ = "read"

#: Mutation names of the Cylc UI server 1.7.1, as
#: ``cylc.uiserver.authorise.get_list_of_mutations()`` lists them.
MUTATIONS: frozenset[str] = frozenset({
    "broadcast",
    "clean",
    "ext_trigger",
    "hold",
    "kill",
    "message",
    "pause",
    "play",
    "poll",
    "release",
    "release_hold_point",
    "reload",
    "remove",
    "resume",
    "scan",
    "set",
    "set_graph_window_extent",
    "set_hold_point",
    "set_verbosity",
    "stop",
    "trigger",
})

ALL_PERMISSIONS: frozenset[str] = MUTATIONS | {READ}

#: Permission groups. CONTROL leaves out broadcast, which Cylc counts as an
#: ALL-only mutation, and it does not include read.
PERMISSION_GROUPS: dict[str, frozenset[str]] = {
    "READ": frozenset({READ}),
    "CONTROL": MUTATIONS - {"broadcast"},
    "ALL": ALL_PERMISSIONS,
}

NEGATION = "!"

VALID_SUMMARY = (
    "read, READ, CONTROL, ALL or a Cylc mutation name such as 'pause', "
    "each optionally prefixed with '!'"
)


def expand_permission(entry: str) -> tuple[bool, frozenset[str]]:
    """Return whether ``entry`` is a negation and the permissions it names.

    Raises KeyError when the entry is not a permission, a group, or one of
    those prefixed with ``!``.
    """
    negated = entry.startswith(NEGATION)
    name = entry[1:] if negated else entry

    if name in PERMISSION_GROUPS:
        return negated, PERMISSION_GROUPS[name]
    if name in ALL_PERMISSIONS:
        return negated, frozenset({name})
    raise KeyError(entry)


def is_permission_entry(entry: object) -> bool:
    """Return whether ``entry`` is a string that ``expand_permission`` accepts."""
    if not isinstance(entry, str):
        return False
    try:
        expand_permission(entry)
    except KeyError:
        return False
    return True


def split_permissions(
    entries: Iterable[str],
) -> tuple[frozenset[str], frozenset[str]]:
    """Expand entries into the permissions they add and the ones they negate."""
    allowed: set[str] = set()
    denied: set[str] = set()

    for entry in entries:
        negated, names = expand_permission(entry)
        if negated:
            denied |= names
        else:
            allowed |= names

    return frozenset(allowed), frozenset(denied)


def resolve_permissions(entries: Iterable[str]) -> frozenset[str]:
    """Expand entries and remove every negated permission from the result.

    A negation wins wherever it appears in the list, so the order of the
    entries does not matter.
    """
    allowed, denied = split_permissions(entries)
    return allowed - denied


def suggest_permission(entry: str) -> str | None:
    """Return the valid entry closest to an unknown one, or None.

    The match ignores case, so ``control`` suggests ``CONTROL`` and ``Pause``
    suggests ``pause``. A leading ``!`` is kept.
    """
    negated = entry.startswith(NEGATION)
    name = entry[1:] if negated else entry
    prefix = NEGATION if negated else ""

    # Lower-case permission names come first, so "Read" suggests "read"
    # rather than the group "READ".
    candidates = sorted(ALL_PERMISSIONS) + sorted(PERMISSION_GROUPS)
    by_lower: dict[str, str] = {}
    for candidate in candidates:
        by_lower.setdefault(candidate.lower(), candidate)

    if name.lower() in by_lower:
        return prefix + by_lower[name.lower()]

    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1)
    if close:
        return prefix + by_lower[close[0]]
    return None
