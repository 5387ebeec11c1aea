"""Convert a cylc-uiserver ``site_authorization`` dict to a TOML site policy.

cylc-uiserver 1.7 reads ``c.CylcUIServer.site_authorization`` as
``{owner: {viewer: {"default": ..., "limit": ...}}}``, where owners and
viewers are user names, ``group:NAME`` (an OS group) or ``*``, and each
value is one permission or a list. Each (owner, viewer) entry becomes one
rule with the same owners, viewers, default and limit, so the decisions
stay the same, except where cylc-uiserver's own merging of several matching
entries depends on their order (the policy takes their union instead).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from traitlets.config import PyFileConfigLoader
from traitlets.config.loader import ConfigFileNotFound

from cylc_hub.policy.permissions import expand_permission, split_permissions


class ConversionError(ValueError):
    """A ``site_authorization`` that cannot be converted; the message names the entry."""


def load_site_authorization(path: str) -> dict:
    """Run the Jupyter config file at ``path`` and return its ``site_authorization``.

    The file is Python and runs with the rights of the caller, as it would
    in the UI server. Raises ConversionError when it fails or sets none.
    """
    directory, name = os.path.split(os.path.abspath(path))
    try:
        config = PyFileConfigLoader(name, path=directory).load_config()
    except ConfigFileNotFound:
        raise ConversionError(f"{path}: file not found") from None
    except Exception as error:  # the file is the site's Python: any error is possible
        raise ConversionError(f"{path}: running the file failed: {error!r}") from None

    site_authorization = config.get("CylcUIServer", {}).get("site_authorization")
    if site_authorization is None:
        raise ConversionError(
            f"{path}: the file does not set c.CylcUIServer.site_authorization"
        )
    if not isinstance(site_authorization, Mapping):
        raise ConversionError(
            f"{path}: c.CylcUIServer.site_authorization must be a dict, not "
            f"{type(site_authorization).__name__}"
        )
    return dict(site_authorization)


def _permissions(value: object, where: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(entry, str) for entry in value):
        raise ConversionError(f"{where}: {value!r} must be a permission name or a list of names")
    if not value:
        # cylc-uiserver rejects an empty list too.
        raise ConversionError(f"{where}: an empty list is invalid; leave the key out instead")
    for entry in value:
        try:
            expand_permission(entry)
        except KeyError:
            raise ConversionError(f"{where}: unknown permission {entry!r}") from None
    return list(dict.fromkeys(value))


def _within_limit(default: list[str], limit: list[str] | None) -> list[str]:
    """Return ``default`` narrowed to ``limit`` when it is wider.

    cylc-uiserver takes the intersection silently, but the policy rejects a
    default wider than its limit, so the converter writes the intersection
    as permission names. NOTE: where another matching entry has a wider
    limit, cylc-uiserver would let the cut part through; the result differs
    then.
    """
    if limit is None:
        return default
    default_allowed, default_denied = split_permissions(default)
    limit_allowed, limit_denied = split_permissions(limit)
    granted = default_allowed - default_denied
    if granted <= limit_allowed - limit_denied:
        return default
    return sorted(granted & (limit_allowed - limit_denied))


def _selector(key: object, where: str) -> str:
    if not isinstance(key, str) or not key.strip():
        raise ConversionError(f"{where}: {key!r} must be a user name, 'group:NAME' or '*'")
    return key


def _toml_list(values: list[str]) -> str:
    # JSON string escapes are valid TOML basic strings.
    return "[" + ", ".join(json.dumps(value) for value in values) + "]"


def convert_site_authorization(site_authorization: Mapping, source: str = "site_authorization") -> str:
    """Return the TOML policy text with the decisions of ``site_authorization``."""
    rules = []
    uses_groups = False
    for owner, viewers in site_authorization.items():
        owner = _selector(owner, f"{source}[{owner!r}]")
        if not isinstance(viewers, Mapping):
            raise ConversionError(f"{source}[{owner!r}]: must be a dict of viewers")
        for viewer, entry in viewers.items():
            where = f"{source}[{owner!r}][{viewer!r}]"
            viewer = _selector(viewer, where)
            if not isinstance(entry, Mapping):
                raise ConversionError(f"{where}: must be a dict with 'default' and 'limit'")
            unknown = sorted(set(entry) - {"default", "limit"})
            if unknown:
                raise ConversionError(f"{where}: unknown keys {unknown}; use 'default' and 'limit'")

            default = _permissions(entry["default"], f"{where}['default']") if "default" in entry else []
            limit = _permissions(entry["limit"], f"{where}['limit']") if "limit" in entry else None
            default = _within_limit(default, limit)
            uses_groups |= owner.startswith("group:") or viewer.startswith("group:")

            lines = [
                "[[rules]]",
                f"owners = {_toml_list([owner])}",
                f"viewers = {_toml_list([viewer])}",
                f"default = {_toml_list(default)}",
            ]
            if limit is not None:
                lines.append(f"limit = {_toml_list(limit)}")
            rules.append("\n".join(lines))

    header = [f"# Converted from {source} by cylc-hub policy convert."]
    if uses_groups:
        header.append("# cylc-uiserver's group:NAME means an OS group of the host.")
        header.append("[settings]\nos_groups = true")
    return "\n".join(header) + "\n\n" + "\n\n".join(rules) + ("\n" if rules else "rules = []\n")
