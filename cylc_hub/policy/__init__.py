"""Site authorization model: parse, validate, decide and explain.

A policy file defines which viewers may see which owners' Cylc UI servers,
and what they may do there, in Cylc's permission vocabulary. This package
has no network, JupyterHub or tornado dependency, so the access service,
the spawners and the ``cylc-hub`` command share it.
"""

from cylc_hub.policy.decide import Decision
from cylc_hub.policy.errors import PolicyError, PolicyIssue
from cylc_hub.policy.loader import load_policy, parse_policy
from cylc_hub.policy.model import Policy, os_groups_of
from cylc_hub.policy.permissions import (
    ALL_PERMISSIONS,
    MUTATIONS,
    PERMISSION_GROUPS,
    READ,
    resolve_permissions,
)
from cylc_hub.policy.rules import Grant, Rule, Selector, parse_grants

__all__ = [
    "ALL_PERMISSIONS",
    "Decision",
    "Grant",
    "MUTATIONS",
    "PERMISSION_GROUPS",
    "Policy",
    "PolicyError",
    "PolicyIssue",
    "READ",
    "Rule",
    "Selector",
    "load_policy",
    "os_groups_of",
    "parse_grants",
    "parse_policy",
    "resolve_permissions",
]
