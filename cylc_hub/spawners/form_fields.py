"""Field declarations of the spawner options form, and the check of one value.

A site declares each field as a dict in config. :class:`FormFieldList`, the
trait type of ``form_fields``, turns each dict into a :class:`FormField`,
which validates the declaration once and then checks submitted values with a
pydantic ``TypeAdapter`` built for the field. Every rule a value breaks comes
back as a :class:`FieldError` whose message is short enough to show under the
field, such as ``must be at most 40 characters``. :class:`FormValidationError`
collects those rules for a whole submission.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictFloat,
    StrictInt,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from traitlets import List, TraitError

from cylc_hub.spawners.form_groups import GroupOverride, field_for_group, merge_group_fields
from cylc_hub.spawners.form_units import (
    MAX_DURATION_SECONDS,
    MAX_MEMORY_MIB,
    format_duration,
    format_memory,
    parse_duration,
    parse_memory,
)

FIELD_TYPES = ("choice", "text", "integer", "number", "duration", "memory", "checkbox")

# Used for text fields that declare no max_length, so that no text field
# accepts an unbounded string.
DEFAULT_TEXT_MAX_LENGTH = 256

# Integer fields without declared bounds still reject values outside a signed
# 64-bit integer: the range of SQL BIGINT and of C's int64_t.
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# How many choices an error message lists before it stops with "...".
_MAX_LISTED_CHOICES = 10

# How many problems a FormValidationError message lists before it counts the rest.
_MAX_LISTED_ERRORS = 5

# The rule text travels in the error context because pydantic formats
# "{name}" placeholders in a message template.
_RULE_ERROR = "form_rule"

_EXPECTED_TYPE = {
    "choice": "a string",
    "text": "a string",
    "integer": "an integer",
    "number": "a number",
    "duration": "a duration",
    "memory": "a memory size",
    "checkbox": "true or false",
}

# Types whose empty text counts as a missing value, so the default applies.
_EMPTY_MEANS_NONE = ("integer", "number", "duration", "memory")

# Parser of the text or int value of each unit field type.
_UNIT_PARSERS = {"duration": parse_duration, "memory": parse_memory}

# Bound of a unit field that declares no max.
_UNIT_MAX = {"duration": MAX_DURATION_SECONDS, "memory": MAX_MEMORY_MIB}


class FormValidationError(ValueError):
    """Rejection of submitted options, with one rule per bad field.

    ``errors`` maps a field name (or an unknown key, quoted) to the rule its
    value breaks. ``str()`` joins them as ``Label: rule; Label: rule``.
    """

    def __init__(self, errors: dict[str, str], labels: Optional[Mapping[str, str]] = None):
        self.errors = dict(errors)
        self.labels = dict(labels or {})
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """All problems in one line, for the form page and the REST response."""
        problems = [
            f"{self.labels.get(name, name)}: {rule}"
            for name, rule in list(self.errors.items())[:_MAX_LISTED_ERRORS]
        ]
        unlisted = len(self.errors) - len(problems)
        if unlisted:
            problems.append(f"and {unlisted} more")
        return "; ".join(problems)


class FieldError(ValueError):
    """Rule that one value breaks, worded to follow the field's label."""


def short_repr(value: Any, limit: int = 40) -> str:
    """Return ``repr(value)``, cut to at most ``limit`` characters, for messages."""
    try:
        text = repr(value)
    except ValueError:
        # repr() of an int with more than 4300 digits raises ValueError.
        return "an integer too large to show"
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def json_type_name(value: Any) -> str:
    """Return the JSON word for the type of ``value``, e.g. ``a list``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def format_number(number: float) -> str:
    """Return ``number`` as a person would write it: 24, not 24.0."""
    if isinstance(number, float) and number.is_integer():
        return str(int(number))
    return str(number)


def _rule_error(rule: str) -> PydanticCustomError:
    return PydanticCustomError(_RULE_ERROR, "{rule}", {"rule": rule})


class Choice(BaseModel):
    """One option of a choice field: the submitted value, the text shown and an optional description."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: Annotated[str, Field(strict=True)]
    label: Annotated[str, Field(strict=True)] = ""
    description: Annotated[str, Field(strict=True)] = ""

    @model_validator(mode="after")
    def _label_defaults_to_value(self) -> Choice:
        if not self.label:
            object.__setattr__(self, "label", self.value)
        return self


def _choice_from_string(item: Any) -> Any:
    if isinstance(item, str):
        return {"value": item, "label": item}
    return item


ChoiceList = list[Annotated[Choice, BeforeValidator(_choice_from_string)]]
_CHOICE_LIST_ADAPTER = TypeAdapter(ChoiceList)


def parse_choices(items: Any) -> list[Choice]:
    """Validate a list of choices given as strings or ``{"value", "label"}`` dicts.

    Raises ``ValueError`` (pydantic's ``ValidationError``) for anything else and
    for duplicate values.
    """
    choices = _CHOICE_LIST_ADAPTER.validate_python(items)
    _check_unique_values(choices)
    return choices


def _check_unique_values(choices: Iterable[Choice]) -> None:
    seen = set()
    for choice in choices:
        if choice.value in seen:
            raise ValueError(f"choice value {choice.value!r} appears more than once")
        seen.add(choice.value)


class FormField(BaseModel):
    """Declaration of one field of the options form, validated from config.

    ``choices`` may be a callable that takes the spawner and returns a list
    of choices or an awaitable of one. Then the list, and whether ``default``
    is in it, is only known when the form is shown or submitted.
    """

    model_config = ConfigDict(extra="forbid")

    name: Annotated[
        str, Field(strict=True, pattern=r"^[A-Za-z][A-Za-z0-9_]*$", max_length=64)
    ]
    type: Literal["choice", "text", "integer", "number", "duration", "memory", "checkbox"]
    label: Annotated[str, Field(strict=True)] = ""
    help: Annotated[str, Field(strict=True)] = ""
    default: Any = None
    required: Annotated[bool, Field(strict=True)] = False
    choices: Union[list[Choice], dict[str, list[Choice]], Callable[..., Any], None] = None
    depends_on: Optional[
        Annotated[str, Field(strict=True, pattern=r"^[A-Za-z][A-Za-z0-9_]*$", max_length=64)]
    ] = None
    pattern: Optional[Annotated[str, Field(strict=True)]] = None
    max_length: Optional[Annotated[StrictInt, Field(gt=0)]] = None
    min: Optional[Union[StrictInt, Annotated[StrictFloat, Field(allow_inf_nan=False)]]] = None
    max: Optional[Union[StrictInt, Annotated[StrictFloat, Field(allow_inf_nan=False)]]] = None
    step: Optional[
        Union[
            Annotated[StrictInt, Field(gt=0)],
            Annotated[StrictFloat, Field(gt=0, allow_inf_nan=False)],
        ]
    ] = None

    hidden: Annotated[bool, Field(strict=True)] = False
    groups: Optional[dict[Annotated[str, Field(strict=True, min_length=1)], GroupOverride]] = None

    _regex: Optional[re.Pattern] = PrivateAttr(None)
    _group_fields: dict[str, FormField] = PrivateAttr(default_factory=dict)
    _merged_fields: dict[frozenset, FormField] = PrivateAttr(default_factory=dict)
    _adapter: TypeAdapter = PrivateAttr()

    @field_validator("choices", mode="before")
    @classmethod
    def _parse_choices(cls, value: Any) -> Any:
        if value is None or callable(value):
            return value
        if isinstance(value, Mapping):
            return {key: cls._parse_choice_list(items, key) for key, items in value.items()}
        return cls._parse_choice_list(value)

    @staticmethod
    def _parse_choice_list(items: Any, key: Optional[str] = None) -> list[Choice]:
        where = "" if key is None else f"the choices for {short_repr(key)} "
        if key is not None and not isinstance(key, str):
            raise ValueError(f"keys of choices must be strings, not {json_type_name(key)}")
        if not isinstance(items, (list, tuple)):
            raise ValueError(
                f"{where}must be a list of strings or {{value, label}} dicts, or a callable returning one"
            )
        try:
            return parse_choices(items)
        except ValidationError as error:
            raise ValueError(where + describe_declaration_error(error)) from None

    @field_validator("min", "max", mode="before")
    @classmethod
    def _parse_unit_bound(cls, value: Any, info: ValidationInfo) -> Any:
        # Bounds of duration and memory fields may be written with units, e.g. "4h" or "8G".
        parser = _UNIT_PARSERS.get(info.data.get("type"))
        if parser is None or value is None:
            return value
        try:
            return parser(value)
        except ValueError as error:
            raise ValueError(f"{short_repr(value)} {error}") from None

    @model_validator(mode="after")
    def _check_declaration(self) -> FormField:
        if not self.label:
            self.label = self.name.replace("_", " ").capitalize()

        self._check_keys_fit_type()
        if self.type == "choice" and isinstance(self.choices, list):
            if not self.choices:
                raise ValueError("choices must not be empty")
        if self.pattern is not None:
            try:
                self._regex = re.compile(self.pattern)
            except re.error as error:
                raise ValueError(f"pattern {self.pattern!r} is not a valid regular expression: {error}")

        self._adapter = TypeAdapter(self._value_type())
        self.default = self._checked_default()

        # Each group's version is built now, so that a bad override fails at startup.
        for group, override in (self.groups or {}).items():
            self._group_fields[group] = field_for_group(self, group, override)
        return self

    def for_groups(self, user_groups: Iterable[str]) -> FormField:
        """Return this field as a member of ``user_groups`` sees it: itself when no group overrides it."""
        matching = frozenset(self._group_fields).intersection(user_groups)
        if not matching:
            return self

        if matching not in self._merged_fields:
            group_fields = {group: self._group_fields[group] for group in matching}
            overrides = {group: self.groups[group] for group in matching}
            self._merged_fields[matching] = merge_group_fields(self, group_fields, overrides)
        return self._merged_fields[matching]

    def _check_keys_fit_type(self) -> None:
        keys_by_type = {
            "choices": ("choice",),
            "pattern": ("text",),
            "max_length": ("text",),
            "min": ("integer", "number", "duration", "memory"),
            "max": ("integer", "number", "duration", "memory"),
            "step": ("integer", "number"),
        }
        for key, types in keys_by_type.items():
            if getattr(self, key) is not None and self.type not in types:
                listed = " and ".join([", ".join(types[:-1]), types[-1]] if len(types) > 1 else types)
                raise ValueError(f"{key} applies only to {listed} fields, not {self.type}")

        if self.type == "choice" and self.choices is None:
            raise ValueError("a choice field needs choices: a list or a callable")
        if self.depends_on is not None:
            if self.type != "choice":
                raise ValueError(f"depends_on applies only to choice fields, not {self.type}")
            if not isinstance(self.choices, dict) or not self.choices:
                raise ValueError("a field with depends_on needs choices as a dict from the other field's value to a list")
            if self.depends_on == self.name:
                raise ValueError("depends_on must name another field")
        elif isinstance(self.choices, dict):
            raise ValueError("choices given as a dict need depends_on, the field whose value selects a list")
        if self.type == "integer":
            for key in ("min", "max", "step"):
                if isinstance(getattr(self, key), float):
                    raise ValueError(f"{key} of an integer field must be an integer")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(
                f"min {self.format_value(self.min)} is greater than max {self.format_value(self.max)}"
            )

    def _checked_default(self) -> Any:
        """Return the default normalized, or raise ValueError if it is invalid."""
        if self.type == "choice" and not isinstance(self.choices, list):
            # The choices are unknown until the callable runs or the other
            # field has a value, so only the type can be checked here.
            if self.default is not None and not isinstance(self.default, str):
                raise ValueError(f"default {short_repr(self.default)} must be a string")
            return self.default

        if self.default is None:
            if self.type == "text":
                return ""
            if self.type == "checkbox":
                return False
            if self.type == "choice":
                return self.choices[0].value if self.choices else None
            return None

        try:
            return self._check_present(self.default, self.choices)
        except FieldError as error:
            shown = short_repr(self.default)
            if self.type in _UNIT_PARSERS and isinstance(self.default, int):
                shown = self.format_value(self.default)
            raise ValueError(f"default {shown} is invalid: {error}")

    def _value_type(self) -> Any:
        """Build the annotated type that pydantic checks a present value against.

        The validators are plain functions, not bound methods, because
        TypeAdapter calls repr() on the type and so on a bound method's model,
        which fails for a default int of more than 4300 digits.
        """

        def check_text(text: str) -> str:
            return self._check_text(text)

        def check_step(number: float) -> float:
            return self._check_step(number)

        if self.type == "text":
            return Annotated[
                str,
                Field(strict=True, max_length=self.effective_max_length),
                AfterValidator(check_text),
            ]
        if self.type == "choice":
            return Annotated[str, Field(strict=True)]
        if self.type == "checkbox":
            return Annotated[bool, BeforeValidator(self._check_scalar_type(bool, str))]

        low, high = self.min, self.max
        if self.type in _UNIT_PARSERS:
            return Annotated[
                int,
                BeforeValidator(self._parse_unit_value),
                Field(ge=0 if low is None else low, le=_UNIT_MAX[self.type] if high is None else high),
            ]
        if self.type == "integer":
            low = INT64_MIN if low is None else low
            high = INT64_MAX if high is None else high
            number_type = int
        else:
            number_type = float
        return Annotated[
            number_type,
            BeforeValidator(self._check_scalar_type(int, float, str)),
            Field(ge=low, le=high, allow_inf_nan=False),
            AfterValidator(check_step),
        ]

    def _check_scalar_type(self, *types: type) -> Callable[[Any], Any]:
        expected = _EXPECTED_TYPE[self.type]

        def check(value: Any) -> Any:
            # bool is a subclass of int, but true is not a number here.
            is_bool_for_number = isinstance(value, bool) and bool not in types
            if is_bool_for_number or not isinstance(value, types):
                raise _rule_error(f"must be {expected}, not {json_type_name(value)}")
            return value

        return check

    def _parse_unit_value(self, value: Any) -> int:
        try:
            return _UNIT_PARSERS[self.type](value)
        except ValueError as error:
            raise _rule_error(str(error)) from None

    def _check_text(self, text: str) -> str:
        for character in text:
            category = unicodedata.category(character)
            if category == "Cc":
                raise _rule_error("must not contain control characters such as newlines or tabs")
            if category == "Cs":
                raise _rule_error("must be valid Unicode text")
        if self._regex is not None and text and not self._regex.fullmatch(text):
            raise _rule_error(f"must match the pattern {self.pattern}")
        return text

    def _check_step(self, number: float) -> float:
        if self.step is None:
            return number

        base = self.min if self.min is not None else 0
        if self.type == "integer":
            on_step = (number - base) % self.step == 0
        else:
            steps = (number - base) / self.step
            # The quotient overflows to inf only for bounds near the float limit.
            on_step = math.isfinite(steps) and math.isclose(
                number, base + round(steps) * self.step, rel_tol=1e-9, abs_tol=1e-12
            )
        if on_step:
            return number

        step = format_number(self.step)
        if base == 0:
            raise _rule_error(f"must be a multiple of {step}")
        raise _rule_error(f"must be {format_number(base)} plus a multiple of {step}")

    @property
    def effective_max_length(self) -> int:
        """Maximum number of characters of a text value."""
        return self.max_length or DEFAULT_TEXT_MAX_LENGTH

    def format_value(self, value: Any) -> str:
        """Return a typed value as a person would write it: ``4h`` for a duration, ``8G`` for memory."""
        if self.type == "duration" and isinstance(value, int):
            return format_duration(value)
        if self.type == "memory" and isinstance(value, int):
            return format_memory(value)
        return format_number(value)

    def range_rule(self) -> str:
        """Return the rule a number outside the field's bounds breaks."""
        low = self.min
        high = self.max
        if self.type in _UNIT_PARSERS:
            low = 0 if low is None else low
            high = _UNIT_MAX[self.type] if high is None else high
        if low is not None and high is not None:
            return f"must be between {self.format_value(low)} and {self.format_value(high)}"
        if low is not None:
            return f"must be at least {self.format_value(low)}"
        if high is not None:
            return f"must be at most {self.format_value(high)}"
        if self.type == "integer":
            return f"must be between {INT64_MIN} and {INT64_MAX}"
        return "must be a finite number"

    def default_for(self, choices: Optional[list[Choice]]) -> Any:
        """Return the default value, given the choices loaded for a choice field.

        A declared default missing from loaded choices gives way to the first
        choice, so that a changed list cannot make the default invalid.
        """
        if self.type != "choice" or choices is None:
            return self.default
        values = [choice.value for choice in choices]
        if self.default in values:
            return self.default
        return values[0] if values else None

    def check(self, value: Any, choices: Optional[list[Choice]] = None) -> Any:
        """Return ``value`` validated and typed, or raise :class:`FieldError`.

        ``None`` (a missing key) means the default. An empty string means no
        value for integer and number fields, and an empty text for text
        fields. A required field with no value raises "is required".
        ``choices`` are the loaded choices of a choice field, or ``None`` when
        loading them failed.
        """
        if self.type == "choice" and not isinstance(self.choices, list):
            if choices is None:
                raise FieldError("its choices could not be loaded (try again later, or ask the site administrator)")
        else:
            choices = self.choices

        if value is None:
            value = self.default_for(choices)
        if isinstance(value, str) and value == "" and self.type in _EMPTY_MEANS_NONE:
            value = None if self.required else self.default
        if value is None or (value == "" and self.type == "text"):
            if self.required:
                raise FieldError("is required")
            return value

        return self._check_present(value, choices)

    def _check_present(self, value: Any, choices: Optional[list[Choice]]) -> Any:
        try:
            result = self._adapter.validate_python(value)
        except ValidationError as error:
            # include_input=False because the input's repr() raises ValueError
            # for an int of more than 4300 digits.
            first = error.errors(include_input=False, include_url=False)[0]
            raise FieldError(self._rule_from_pydantic(first, value)) from None

        if self.type == "checkbox" and self.required and not result:
            raise FieldError("must be checked")
        if self.type == "choice":
            self._check_among(result, choices or [])
        return result

    def _check_among(self, value: str, choices: list[Choice]) -> None:
        values = [choice.value for choice in choices]
        if value in values:
            return
        if not values:
            raise FieldError("no choices are available (ask the site administrator)")

        listed = ", ".join(values[:_MAX_LISTED_CHOICES])
        if len(values) > _MAX_LISTED_CHOICES:
            listed += ", ..."
        raise FieldError(f"{short_repr(value)} is not one of the choices: {listed}")

    def _rule_from_pydantic(self, error: dict, value: Any) -> str:
        """Word a pydantic error as the rule of this field that ``value`` breaks."""
        kind = error["type"]
        expected = _EXPECTED_TYPE[self.type]
        if kind == _RULE_ERROR:
            return error["ctx"]["rule"]
        if kind == "float_type" and isinstance(value, int) and not isinstance(value, bool):
            # An int too large to convert to a float.
            return self.range_rule()
        if kind in ("string_type", "int_type", "float_type", "bool_type"):
            return f"must be {expected}, not {json_type_name(value)}"
        if kind == "string_unicode":
            return "must be valid Unicode text"
        if kind in ("greater_than_equal", "less_than_equal", "int_parsing_size"):
            return self.range_rule()
        if kind in ("int_parsing", "int_from_float", "float_parsing", "bool_parsing"):
            return f"{short_repr(value)} is not {expected}"
        if kind == "finite_number":
            return "must be a finite number"
        if kind == "string_too_long":
            return f"must be at most {self.effective_max_length} characters"
        return error["msg"]


def describe_declaration_error(error: ValidationError) -> str:
    """Join a pydantic error about a field declaration into one line."""
    problems = []
    for item in error.errors(include_input=False, include_url=False):
        message = item["msg"].removeprefix("Value error, ")
        location = ".".join(str(part) for part in item["loc"])
        problems.append(f"{location}: {message}" if location else message)
    return "; ".join(problems)


class FormFieldList(List):
    """Trait of field declarations: dicts in config, :class:`FormField` models once set.

    The parsing is in ``validate()`` rather than an ``@validate`` handler,
    because traitlets runs only ``validate()`` on a value from ``@default``.
    """

    def validate(self, obj: Any, value: Any) -> list[FormField]:
        value = super().validate(obj, value)
        owner = f"{type(obj).__name__}.{self.name}"

        fields = []
        names = set()
        for index, declaration in enumerate(value):
            where = f"{owner}[{index}]"
            if isinstance(declaration, Mapping) and isinstance(declaration.get("name"), str):
                where += f" ({declaration['name']!r})"

            if isinstance(declaration, FormField):
                field = declaration
            elif isinstance(declaration, Mapping):
                try:
                    field = FormField.model_validate(dict(declaration))
                except ValidationError as error:
                    raise TraitError(f"{where} is invalid: {describe_declaration_error(error)}") from None
            else:
                raise TraitError(f"{where} must be a dict, not {json_type_name(declaration)}")

            if field.name in names:
                raise TraitError(f"{where} repeats the field name {field.name!r}")
            if field.depends_on is not None:
                _check_parent(where, field, {earlier.name: earlier for earlier in fields})
            names.add(field.name)
            fields.append(field)
        return fields


def _check_parent(where: str, field: FormField, earlier: Mapping[str, FormField]) -> None:
    """Raise TraitError unless ``field.depends_on`` names an earlier choice field that offers every key."""
    parent = earlier.get(field.depends_on)
    if parent is None or parent.type != "choice":
        raise TraitError(f"{where} depends_on {field.depends_on!r} must name a choice field declared before it")
    if isinstance(parent.choices, list):
        offered = {choice.value for choice in parent.choices}
        for key in field.choices:
            if key not in offered:
                raise TraitError(f"{where} has choices for {key!r}, which is not a choice of {parent.name!r}")
