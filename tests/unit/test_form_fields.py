"""Field declarations and the check of one value, without a spawner."""

import json

import pytest
from pydantic import ValidationError

from cylc_hub.spawners.form_fields import (
    DEFAULT_TEXT_MAX_LENGTH,
    INT64_MAX,
    FieldError,
    FormField,
    short_repr,
)

WALLTIME = {"name": "walltime", "type": "integer", "min": 1, "max": 24, "default": 2}
RATIO = {"name": "ratio", "type": "number", "min": 0, "max": 1, "step": 0.1}
LABEL = {"name": "label", "type": "text", "max_length": 40, "pattern": "[a-z][a-z0-9-]*"}
PAGE = {"name": "page", "type": "choice", "choices": ["dashboard", "workspace"]}
DEBUG = {"name": "debug", "type": "checkbox"}


def field(declaration, **changes):
    return FormField.model_validate({**declaration, **changes})


def rule(declaration, value, choices=None):
    """Return the rule message that value breaks; fail the test if it passes."""
    with pytest.raises(FieldError) as caught:
        field(declaration).check(value, choices)
    return str(caught.value)


# integer


@pytest.mark.parametrize(
    "value, expected",
    [(5, 5), ("5", 5), (" 7 ", 7), (5.0, 5), ("5.0", 5), (1, 1), (24, 24), ("24", 24)],
)
def test_integer_valid(value, expected):
    result = field(WALLTIME).check(value)
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize("value", [0, 25, "0", "25", -1, 10**30, "9" * 100, 1e300])
def test_integer_out_of_range(value):
    assert rule(WALLTIME, value) == "must be between 1 and 24"


def test_integer_huge_int_beyond_repr_limit():
    # repr() of an int with more than 4300 digits raises ValueError.
    assert rule(WALLTIME, 10**5000) == "must be between 1 and 24"
    assert rule({"name": "n", "type": "integer"}, -(10**5000)) == (
        f"must be between {-INT64_MAX - 1} and {INT64_MAX}"
    )


@pytest.mark.parametrize(
    "value, expected",
    [
        ("abc", "'abc' is not an integer"),
        ("٣", "'٣' is not an integer"),
        ("1e3", "'1e3' is not an integer"),
        (5.5, "5.5 is not an integer"),
        ("<b>5</b>", "'<b>5</b>' is not an integer"),
        (True, "must be an integer, not a boolean"),
        ([5], "must be an integer, not a list"),
        ({"a": 5}, "must be an integer, not an object"),
        (b"5", "must be an integer, not a bytes"),
        (float("nan"), "must be a finite number"),
    ],
)
def test_integer_invalid(value, expected):
    assert rule(WALLTIME, value) == expected


def test_integer_missing_takes_default():
    assert field(WALLTIME).check(None) == 2
    assert field(WALLTIME).check("") == 2


def test_integer_missing_without_default():
    assert field(WALLTIME, default=None).check(None) is None
    assert rule({**WALLTIME, "default": None, "required": True}, None) == "is required"
    assert rule({**WALLTIME, "required": True}, "") == "is required"


def test_integer_one_bound_messages():
    assert rule({"name": "n", "type": "integer", "min": 1}, 0) == "must be at least 1"
    assert rule({"name": "n", "type": "integer", "max": 9}, 10) == "must be at most 9"


def test_integer_step_counts_from_min():
    odd = {"name": "n", "type": "integer", "min": 1, "max": 9, "step": 2}
    assert field(odd).check(3) == 3
    assert field(odd).check(9) == 9
    assert rule(odd, 4) == "must be 1 plus a multiple of 2"
    assert rule({"name": "n", "type": "integer", "step": 5}, 7) == "must be a multiple of 5"


def test_integer_huge_digit_string():
    message = rule({"name": "n", "type": "integer"}, "1" * 100_000)
    assert message == f"must be between {-INT64_MAX - 1} and {INT64_MAX}"


# number


@pytest.mark.parametrize(
    "value, expected", [(0.3, 0.3), ("0.3", 0.3), (0, 0.0), (1, 1.0), ("1", 1.0), ("0.7000000001", 0.7000000001)]
)
def test_number_valid(value, expected):
    result = field(RATIO, step=None).check(value)
    assert result == expected
    assert type(result) is float


def test_number_boundaries():
    assert field(RATIO).check(0) == 0.0
    assert field(RATIO).check(1) == 1.0
    assert rule(RATIO, -0.1) == "must be between 0 and 1"
    assert rule(RATIO, 1.1) == "must be between 0 and 1"
    assert rule(RATIO, "inf") == "must be between 0 and 1"


def test_number_step_allows_rounding_error():
    # 0.1 * 3 is 0.30000000000000004 in binary floating point.
    assert field(RATIO).check(0.1 * 3) == pytest.approx(0.3)
    assert field(RATIO).check("0.3") == 0.3
    assert rule(RATIO, 0.35) == "must be a multiple of 0.1"


@pytest.mark.parametrize(
    "value, expected",
    [
        ("nan", "must be a finite number"),
        (float("inf"), "must be a finite number"),
        ("one", "'one' is not a number"),
        ("0x10", "'0x10' is not a number"),
        (False, "must be a number, not a boolean"),
        (None, None),
        ([0.5], "must be a number, not a list"),
        pytest.param(10**5000, "must be a finite number", id="int-of-5001-digits"),
    ],
)
def test_number_invalid(value, expected):
    unbounded = {"name": "x", "type": "number"}
    if expected is None:
        assert field(unbounded).check(value) is None
    else:
        assert rule(unbounded, value) == expected


# text


def test_text_valid_and_boundary():
    assert field(LABEL).check("run-1") == "run-1"
    assert field(LABEL).check("a" * 40) == "a" * 40
    assert rule(LABEL, "a" * 41) == "must be at most 40 characters"


def test_text_default_max_length():
    plain = {"name": "note", "type": "text"}
    assert field(plain).check("x" * DEFAULT_TEXT_MAX_LENGTH) == "x" * DEFAULT_TEXT_MAX_LENGTH
    assert rule(plain, "x" * (DEFAULT_TEXT_MAX_LENGTH + 1)) == (
        f"must be at most {DEFAULT_TEXT_MAX_LENGTH} characters"
    )


def test_text_huge_string():
    assert rule(LABEL, "a" * 10_000_000) == "must be at most 40 characters"


def test_text_pattern_must_match_whole_value():
    assert rule(LABEL, "run 1") == "must match the pattern [a-z][a-z0-9-]*"
    assert rule(LABEL, "Run") == "must match the pattern [a-z][a-z0-9-]*"
    assert rule(LABEL, "run\n") == "must not contain control characters such as newlines or tabs"


def test_text_non_ascii_and_html_kept_as_text():
    plain = {"name": "note", "type": "text"}
    assert field(plain).check("Zürich 東京 🌧") == "Zürich 東京 🌧"
    assert field(plain).check("<script>alert(1)</script>") == "<script>alert(1)</script>"
    assert rule(LABEL, "zürich") == "must match the pattern [a-z][a-z0-9-]*"


@pytest.mark.parametrize(
    "value, expected",
    [
        ("a\tb", "must not contain control characters such as newlines or tabs"),
        ("a\x00b", "must not contain control characters such as newlines or tabs"),
        ("a\x85b", "must not contain control characters such as newlines or tabs"),
        ("a\ud800b", "must be valid Unicode text"),
        (5, "must be a string, not a number"),
        (["a"], "must be a string, not a list"),
        ({"a": "b"}, "must be a string, not an object"),
        (True, "must be a string, not a boolean"),
    ],
)
def test_text_invalid(value, expected):
    assert rule({"name": "note", "type": "text"}, value) == expected


def test_text_empty_and_missing():
    assert field(LABEL).check(None) == ""
    assert field(LABEL).check("") == ""
    assert field(LABEL, default="run").check(None) == "run"
    assert field(LABEL, default="run").check("") == ""
    assert rule({**LABEL, "required": True}, "") == "is required"
    assert rule({**LABEL, "required": True}, None) == "is required"


# choice


def test_choice_valid_and_default():
    assert field(PAGE).check("workspace") == "workspace"
    assert field(PAGE).check(None) == "dashboard"
    assert field(PAGE, default="workspace").check(None) == "workspace"


def test_choice_not_among_choices():
    assert rule(PAGE, "x") == "'x' is not one of the choices: dashboard, workspace"
    assert rule(PAGE, "") == "'' is not one of the choices: dashboard, workspace"
    assert rule(PAGE, "Dashboard") == "'Dashboard' is not one of the choices: dashboard, workspace"


def test_choice_long_value_cut_in_message():
    message = rule(PAGE, "<" * 1000)
    assert len(message) < 100
    assert message.endswith("is not one of the choices: dashboard, workspace")


def test_choice_many_choices_listed_briefly():
    many = {"name": "host", "type": "choice", "choices": [f"h{i}" for i in range(50)]}
    message = rule(many, "x")
    assert message == "'x' is not one of the choices: h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, ..."


@pytest.mark.parametrize(
    "value, expected",
    [
        (1, "must be a string, not a number"),
        (["dashboard"], "must be a string, not a list"),
        ({"value": "dashboard"}, "must be a string, not an object"),
    ],
)
def test_choice_wrong_type(value, expected):
    assert rule(PAGE, value) == expected


def test_choice_labels_and_plain_strings():
    declared = field(PAGE, choices=["a", {"value": "b", "label": "Bee"}, {"value": "c"}])
    assert [(c.value, c.label) for c in declared.choices] == [("a", "a"), ("b", "Bee"), ("c", "c")]


def test_choice_callable_uses_loaded_choices():
    loaded = field(PAGE, choices=lambda spawner: [], default="b")
    choices = FormField.model_validate(PAGE).choices
    assert loaded.check("workspace", choices) == "workspace"
    assert loaded.check(None, choices) == "dashboard"
    with pytest.raises(FieldError, match="could not be loaded"):
        loaded.check("workspace", None)
    with pytest.raises(FieldError, match="no choices are available"):
        loaded.check("workspace", [])


# checkbox


@pytest.mark.parametrize(
    "value, expected",
    [(True, True), (False, False), ("on", True), ("true", True), ("false", False), ("off", False), ("1", True)],
)
def test_checkbox_valid(value, expected):
    assert field(DEBUG).check(value) is expected


def test_checkbox_missing_takes_default():
    assert field(DEBUG).check(None) is False
    assert field(DEBUG, default=True).check(None) is True


@pytest.mark.parametrize(
    "value, expected",
    [
        ("maybe", "'maybe' is not true or false"),
        ("", "'' is not true or false"),
        (1, "must be true or false, not a number"),
        (["on"], "must be true or false, not a list"),
    ],
)
def test_checkbox_invalid(value, expected):
    assert rule(DEBUG, value) == expected


def test_checkbox_required_must_be_checked():
    assert rule({**DEBUG, "required": True}, False) == "must be checked"
    assert rule({**DEBUG, "required": True}, None) == "must be checked"
    assert field(DEBUG, required=True).check("on") is True


# declarations


def test_declaration_label_from_name():
    assert field({"name": "max_walltime", "type": "integer"}).label == "Max walltime"
    assert field(WALLTIME, label="Hours").label == "Hours"


def test_declaration_default_normalized():
    assert field(WALLTIME, default="3").default == 3
    assert field(DEBUG, default="on").default is True
    assert field(RATIO, default=1).default == 1.0


def test_declaration_values_serialize_to_json():
    values = [field(declaration).check(None) for declaration in (WALLTIME, RATIO, LABEL, PAGE, DEBUG)]
    assert json.loads(json.dumps(values)) == values


@pytest.mark.parametrize(
    "declaration, problem",
    [
        ({"type": "text"}, "name"),
        ({"name": "1st", "type": "text"}, "name"),
        ({"name": "_xsrf", "type": "text"}, "name"),
        ({"name": "a-b", "type": "text"}, "name"),
        ({"name": "x", "type": "date"}, "type"),
        ({"name": "x", "type": "text", "maxlength": 5}, "maxlength"),
        ({"name": "x", "type": "text", "min": 1}, "min applies only to integer, number, duration and memory fields"),
        ({"name": "x", "type": "integer", "pattern": "a"}, "pattern applies only to text fields"),
        ({"name": "x", "type": "text", "choices": ["a"]}, "choices applies only to choice fields"),
        ({"name": "x", "type": "choice"}, "a choice field needs choices"),
        ({"name": "x", "type": "choice", "choices": []}, "choices must not be empty"),
        ({"name": "x", "type": "choice", "choices": "ab"}, "must be a list of strings"),
        ({"name": "x", "type": "choice", "choices": ["a", "a"]}, "'a' appears more than once"),
        ({"name": "x", "type": "choice", "choices": [{"value": 1}]}, "0.value"),
        ({"name": "x", "type": "choice", "choices": ["a"], "default": "b"}, "'b' is not one of the choices"),
        ({"name": "x", "type": "choice", "choices": lambda s: [], "default": 1}, "default 1 must be a string"),
        ({"name": "x", "type": "text", "pattern": "("}, "not a valid regular expression"),
        ({"name": "x", "type": "text", "max_length": 0}, "max_length"),
        ({"name": "x", "type": "text", "max_length": 3, "default": "abcd"}, "must be at most 3 characters"),
        ({"name": "x", "type": "integer", "min": 5, "max": 1}, "min 5 is greater than max 1"),
        ({"name": "x", "type": "integer", "step": 0.5}, "step of an integer field must be an integer"),
        ({"name": "x", "type": "integer", "step": 0}, "step"),
        ({"name": "x", "type": "number", "min": float("nan")}, "min"),
        ({"name": "x", "type": "integer", "min": "1"}, "min"),
        ({"name": "x", "type": "integer", "max": 3, "default": 4}, "must be at most 3"),
        ({"name": "x", "type": "checkbox", "default": "maybe"}, "is not true or false"),
        ({"name": "x", "type": "checkbox", "required": "yes"}, "required"),
    ],
)
def test_declaration_invalid(declaration, problem):
    with pytest.raises(ValidationError) as caught:
        FormField.model_validate(declaration)
    assert problem in str(caught.value)


def test_declaration_huge_int_default():
    # repr() of an int with more than 4300 digits raises ValueError.
    with pytest.raises(ValidationError) as caught:
        FormField.model_validate({"name": "x", "type": "integer", "max": 9, "default": 10**5000})
    message = str(caught.value)
    assert "default an integer too large to show is invalid: must be at most 9" in message


def test_short_repr_cuts_and_survives_huge_int():
    assert short_repr("abc") == "'abc'"
    assert len(short_repr("x" * 1000)) == 40
    assert short_repr(10**5000) == "an integer too large to show"


# duration

WALLCLOCK = {"name": "walltime", "type": "duration", "min": "10m", "max": "4h", "default": "1h"}


@pytest.mark.parametrize(
    "value, expected",
    [("90m", 5400), ("1:30:00", 5400), ("2h", 7200), ("PT2H", 7200), ("10m", 600), ("4h", 14400),
     (600, 600), (None, 3600), ("", 3600)],
)
def test_duration_valid(value, expected):
    result = field(WALLCLOCK).check(value)
    assert result == expected


def test_duration_declaration_normalized():
    walltime = field(WALLCLOCK)
    assert walltime.min == 600
    assert walltime.max == 14400
    assert walltime.default == 3600


@pytest.mark.parametrize("value", ["9m", "4h1s", "5h", "PT5H", 14401, 0, 10**30, "99999999h"])
def test_duration_out_of_range(value):
    assert rule(WALLCLOCK, value) == "must be between 10m and 4h"


@pytest.mark.parametrize(
    "value", ["90", "1:30", "soon", "<script>", "2h; id", "２h", "x" * 100_000, -5, 1.5]
)
def test_duration_invalid_text(value):
    expected = "must be a duration such as 90m, 2h, 1h30m, 1:30:00 or PT2H"
    if value == -5:
        expected = "must be between 10m and 4h"
    assert rule(WALLCLOCK, value) == expected


@pytest.mark.parametrize("value", [True, [], {}, ["2h"]])
def test_duration_wrong_type(value):
    assert rule(WALLCLOCK, value) == "must be a duration such as 90m, 2h, 1h30m, 1:30:00 or PT2H"


def test_duration_required_missing():
    required = {**WALLCLOCK, "required": True, "default": None}
    assert rule(required, None) == "is required"
    assert rule(required, "") == "is required"


def test_duration_without_bounds_has_a_ceiling():
    assert rule({"name": "t", "type": "duration"}, "400d") == "must be between 0s and 8784h"


@pytest.mark.parametrize(
    "declaration, message",
    [
        ({**WALLCLOCK, "min": "soon"}, "'soon' must be a duration"),
        ({**WALLCLOCK, "min": "5h"}, "min 5h is greater than max 4h"),
        ({**WALLCLOCK, "default": "8h"}, "default '8h' is invalid: must be between 10m and 4h"),
        ({**WALLCLOCK, "step": 60}, "step applies only to integer and number fields"),
    ],
)
def test_duration_declaration_invalid(declaration, message):
    with pytest.raises(ValidationError) as caught:
        field(declaration)
    assert message in str(caught.value)


# memory

MEMORY = {"name": "memory", "type": "memory", "min": "512M", "max": "64G", "default": "4G"}


@pytest.mark.parametrize(
    "value, expected",
    [("4G", 4096), ("512M", 512), ("512", 512), ("1.5G", 1536), ("64G", 65536), (2048, 2048),
     (None, 4096), ("", 4096)],
)
def test_memory_valid(value, expected):
    assert field(MEMORY).check(value) == expected


@pytest.mark.parametrize("value", ["511M", "65G", "1T", 100, 10**30])
def test_memory_out_of_range(value):
    assert rule(MEMORY, value) == "must be between 512M and 64G"


@pytest.mark.parametrize("value", ["lots", "4X", "<b>4G</b>", "4G\n", "ä", True, 2.5, [4096]])
def test_memory_invalid(value):
    expected = "must be a memory size such as 512M, 4G or 1.5G (a number alone is MiB)"
    if value == "4G\n":
        # Surrounding whitespace is stripped, as in the other number fields.
        assert field(MEMORY).check(value) == 4096
        return
    assert rule(MEMORY, value) == expected


def test_memory_fraction_of_mib():
    assert rule(MEMORY, "1000.5M") == "must be a whole number of MiB, such as 512M or 1.5G"


def test_unit_values_json_round_trip():
    walltime = field(WALLCLOCK)
    memory = field(MEMORY)
    for check, text in ((walltime.check, "1h30m"), (memory.check, "1.5G")):
        value = check(text)
        assert check(json.loads(json.dumps(value))) == value
