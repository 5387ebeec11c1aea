"""Check an owner's grant request against the input rules and the site's limits."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cylc_hub.policy import Grant, Policy
from cylc_hub.policy.decide import combine, match_rules
from cylc_hub.policy.rules import GROUP, USER

#: The maximum duration of a grant with an end.
MAX_DURATION = timedelta(days=366)

DURATION_UNITS = {
    "s": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
}
DURATION_PATTERN = re.compile(r"^\s*(\d{1,6})\s*([a-z]+)\s*$")


class GrantError(ValueError):
    """A grant request that the service rejects; the message is shown to the owner."""


@dataclass(frozen=True)
class GrantRequest:
    """A validated grant: the viewer selector, its permissions and when it ends."""

    viewer: str
    permissions: tuple[str, ...]
    expires_at: datetime | None


def parse_duration(text: str | None) -> timedelta | None:
    """Parse ``"8h"``, ``"30 minutes"`` or ``"2 days"``; empty or ``"forever"`` is None.

    Raises GrantError naming the value and the accepted forms.
    """
    if text is None or text.strip().lower() in ("", "forever", "for good"):
        return None

    match = DURATION_PATTERN.match(text.lower())
    if match is None or match.group(2) not in DURATION_UNITS:
        raise GrantError(
            f"Invalid duration {text[:40]!r}: write a whole number and a unit, "
            "such as '90s', '30m', '8h' or '2 days', or leave it empty for a grant without an end."
        )
    duration = timedelta(seconds=int(match.group(1)) * DURATION_UNITS[match.group(2)])
    if duration <= timedelta(0):
        raise GrantError(f"Invalid duration {text[:40]!r}: it must be longer than zero.")
    if duration > MAX_DURATION:
        raise GrantError(
            f"Invalid duration {text[:40]!r}: the maximum is {MAX_DURATION.days} days; "
            "leave it empty for a grant without an end."
        )
    return duration


def parse_viewer(text: object, owner: str) -> str:
    """Return the viewer selector of a grant: one user name or ``group:NAME``.

    Raises GrantError for anything else, for the owner's own name and for a
    glob or ``*``, which only the site policy may use.
    """
    if not isinstance(text, str) or not text.strip():
        raise GrantError("Missing viewer: give a user name or 'group:NAME'.")

    try:
        grant = Grant.parse(text.strip(), [])
    except ValueError as error:
        raise GrantError(str(error)) from None
    if grant.viewer.kind not in (USER, GROUP):
        raise GrantError(
            f"Invalid viewer {text[:60]!r}: a grant names one user or 'group:NAME'; "
            "'*' and globs are for the site policy."
        )
    if grant.viewer.kind == USER and grant.viewer.name == owner:
        raise GrantError("You always have every permission on your own server.")
    return grant.viewer.text


def parse_permissions(entries: object) -> tuple[str, ...]:
    """Return the permission entries of a grant; raises GrantError for an invalid one."""
    if isinstance(entries, str):
        entries = [entry for entry in re.split(r"[\s,]+", entries) if entry]
    if not isinstance(entries, Iterable) or isinstance(entries, dict):
        raise GrantError("Invalid permissions: give a list such as ['READ', 'CONTROL'].")

    entries = tuple(entries)
    if not entries:
        raise GrantError("No permissions given: choose at least one, such as READ.")
    try:
        Grant.parse("*", entries)
    except ValueError as error:
        raise GrantError(
            f"{error}. Use read, READ, CONTROL, ALL or a Cylc mutation name, "
            "each optionally prefixed with '!'."
        ) from None
    return entries


def limits_for(
    policy: Policy, owner: str, viewer: str, *, groups_of=None
) -> tuple[frozenset[str], list]:
    """Return the most ``owner`` may grant to ``viewer``, and the rules that set it.

    For ``group:NAME`` the limit is what every member gets through the group
    or through rules for everybody: a viewer with no name of its own who is
    in that one group. A member may still be limited further by another rule,
    and the decision for each member enforces that.
    """
    extra = groups_of or (lambda user: ())
    owner_groups = policy.groups_of(owner, extra(owner))

    if viewer.startswith("group:"):
        viewer_name = ""
        viewer_groups = frozenset({viewer[len("group:"):]})
    else:
        viewer_name = viewer
        viewer_groups = policy.groups_of(viewer, extra(viewer))

    rules = match_rules(policy.rules, owner, owner_groups, viewer_name, viewer_groups)
    return combine(rules, ()).limits, list(rules)


def describe_limit(limits: frozenset[str], rules: list) -> str:
    """Describe a limit for a message, with the rules it comes from."""
    if not rules:
        return "empty, because no site rule covers this viewer on your server"
    entries = list(dict.fromkeys(entry for rule in rules for entry in rule.limit))
    sources = ", ".join(rule.label() for rule in rules)
    return f"{', '.join(entries) or 'nothing'} (from {sources})"


def check_grant(
    policy: Policy,
    owner: str,
    viewer: object,
    permissions: object,
    duration: str | None,
    *,
    now: datetime,
    groups_of=None,
) -> GrantRequest:
    """Validate a grant request and return it, or raise GrantError with the reason.

    A grant that gives any permission beyond the site's limit for that viewer
    is rejected, and the message names the limit.
    """
    selector = parse_viewer(viewer, owner)
    entries = parse_permissions(permissions)
    lifetime = parse_duration(duration)

    limits, rules = limits_for(policy, owner, selector, groups_of=groups_of)
    grant = Grant.parse(selector, entries)
    excess = (grant.allowed - grant.denied) - limits
    if excess:
        raise GrantError(
            f"Cannot grant {', '.join(sorted(excess))} to {selector}: the site's limit "
            f"for {selector} on your server is {describe_limit(limits, rules)}. "
            "Grant only permissions within the limit, or ask the site administrator."
        )

    expires_at = now + lifetime if lifetime else None
    return GrantRequest(selector, entries, expires_at)
