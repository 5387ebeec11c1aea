"""Group-dependent limits, choices and visibility of options form fields.

A field declaration may carry ``groups``, a dict from a group name to
overrides of ``min``, ``max``, ``choices``, ``default`` and ``hidden``::

    {"name": "walltime", "type": "duration", "max": "4h",
     "groups": {"ops": {"max": "24h"}}}

A user's groups are their OS groups and their JupyterHub groups. Overrides of
groups the user is not in are ignored. When several of the user's groups
override the field, each group has its own version of the field. The
widest version wins whatever the order: the lowest ``min``, the highest
``max`` (no bound beats any bound), the union of ``choices``, and ``hidden``
only if every version hides the field. The ``default`` comes from the first
group, by name, that sets one.
"""

from __future__ import annotations

import grp
import os
import pwd
from collections.abc import Iterable
from typing import Annotated, Any, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

# Keys of a declaration that a group override may set.
OVERRIDE_KEYS = ("min", "max", "choices", "default", "hidden")


class GroupOverride(BaseModel):
    """Overrides of one field's declaration for the members of one group."""

    model_config = ConfigDict(extra="forbid")

    min: Any = None
    max: Any = None
    choices: Optional[list[Any]] = None
    default: Any = None
    hidden: Optional[Annotated[bool, Field(strict=True)]] = None


def declaration_of(field: Any) -> dict[str, Any]:
    """Return the validated keys of a field as a declaration dict, without ``groups``."""
    declaration = {name: getattr(field, name) for name in type(field).model_fields}
    declaration["groups"] = None
    return declaration


def field_for_group(field: Any, group: str, override: GroupOverride) -> Any:
    """Return ``field`` with one group's overrides applied, validated as a declaration.

    Raises ``ValueError`` naming the group when the result is not a valid field.
    """
    declaration = declaration_of(field)
    declaration.update(override.model_dump(exclude_unset=True))
    replaces_choices = "choices" in override.model_fields_set and "default" not in override.model_fields_set
    if replaces_choices and not _is_among(field.default, override.choices or []):
        # The field's default is not among this group's choices, so the first choice becomes the default.
        declaration["default"] = None

    try:
        return type(field).model_validate(declaration)
    except ValidationError as error:
        problems = "; ".join(
            item["msg"].removeprefix("Value error, ") for item in error.errors(include_url=False)
        )
        raise ValueError(f"the overrides of group {group!r} are invalid: {problems}") from None


def merge_group_fields(field: Any, group_fields: dict[str, Any], overrides: dict[str, GroupOverride]) -> Any:
    """Return the widest of the versions of ``field`` that the given groups see.

    ``group_fields`` maps each of the user's groups that override ``field``
    to the field as :func:`field_for_group` built it, and ``overrides`` maps
    the same groups to what they set. Groups are visited in name order, so
    that the result does not depend on the order of the user's groups.
    """
    names = sorted(group_fields)
    if len(names) == 1:
        return group_fields[names[0]]

    # Each group's version is the whole field with that group's overrides, so
    # a key that a group leaves alone counts with the field's own value.
    fields = [group_fields[name] for name in names]
    declaration = declaration_of(field)

    lows = [group_field.min for group_field in fields]
    declaration["min"] = None if None in lows else min(lows)
    highs = [group_field.max for group_field in fields]
    declaration["max"] = None if None in highs else max(highs)
    declaration["hidden"] = all(group_field.hidden for group_field in fields)
    if field.type == "choice" and all(isinstance(group_field.choices, list) for group_field in fields):
        declaration["choices"] = _union_of_choices(group_field.choices for group_field in fields)

    setting_default = [name for name in names if "default" in overrides[name].model_fields_set]
    if setting_default:
        declaration["default"] = group_fields[setting_default[0]].default

    try:
        return type(field).model_validate(declaration)
    except ValueError:
        # The first group's default can fall outside choices that only other
        # groups replaced: then the field's own default rule applies.
        declaration["default"] = None
        return type(field).model_validate(declaration)


def _is_among(value: Any, choices: list[Any]) -> bool:
    values = [choice if isinstance(choice, str) else getattr(choice, "value", None) for choice in choices]
    if any(isinstance(choice, dict) for choice in choices):
        values += [choice.get("value") for choice in choices if isinstance(choice, dict)]
    return value in values


def _union_of_choices(lists: Iterable[list[Any]]) -> list[Any]:
    union = []
    seen = set()
    for choices in lists:
        for choice in choices:
            if choice.value not in seen:
                seen.add(choice.value)
                union.append(choice)
    return union


def os_group_names(user_name: str) -> set[str]:
    """Return the names of the OS groups of ``user_name``, or an empty set if no such OS user exists."""
    try:
        primary_gid = pwd.getpwnam(user_name).pw_gid
    except KeyError:
        return set()

    names = set()
    for gid in os.getgrouplist(user_name, primary_gid):
        try:
            names.add(grp.getgrgid(gid).gr_name)
        except KeyError:
            # A gid without a group entry has no name to match a declaration.
            continue
    return names
