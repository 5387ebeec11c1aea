"""Group-dependent limits, choices and visibility of form fields."""

import asyncio
import itertools
from types import SimpleNamespace

import pytest
from jupyterhub.spawner import LocalProcessSpawner
from pydantic import ValidationError
from tornado import web

from cylc_hub.spawners.form import FormValidationError, OptionsFormMixin
from cylc_hub.spawners.form_fields import FieldError, FormField
from cylc_hub.spawners.form_groups import os_group_names


class FormSpawner(OptionsFormMixin, LocalProcessSpawner):
    pass


WALLTIME = {
    "name": "walltime",
    "type": "duration",
    "min": "10m",
    "max": "4h",
    "default": "1h",
    "groups": {
        "ops": {"max": "24h"},
        "night": {"max": "12h", "min": "1h", "default": "8h"},
        "students": {"max": "1h", "default": "30m"},
    },
}
PARTITION = {
    "name": "partition",
    "type": "choice",
    "choices": ["short", "debug"],
    "groups": {"ops": {"choices": ["short", "long"]}, "gpu": {"choices": ["gpu"]}},
}
ACCOUNT = {
    "name": "account",
    "type": "text",
    "default": "general",
    "hidden": True,
    "groups": {"billing": {"hidden": False}, "audit": {"hidden": True}},
}


def field(declaration):
    return FormField.model_validate(declaration)


def make_spawner(fields, hub_groups=(), user="alice", os_groups=False):
    orm_spawner = SimpleNamespace(name="", server=None, user_options=None)
    groups = [SimpleNamespace(name=name) for name in hub_groups]
    return FormSpawner(
        form_fields=fields,
        orm_spawner=orm_spawner,
        user=SimpleNamespace(name=user, groups=groups),
        form_os_groups=os_groups,
    )


def test_groups_widen_max():
    walltime = field(WALLTIME)

    assert walltime.for_groups([]).max == 4 * 3600
    assert walltime.for_groups(["ops"]).max == 24 * 3600
    assert walltime.for_groups(["unrelated"]) is walltime


def test_groups_can_narrow_for_one_group():
    students = field(WALLTIME).for_groups(["students"])

    assert students.max == 3600
    assert students.default == 1800
    with pytest.raises(FieldError) as caught:
        students.check("2h")
    assert str(caught.value) == "must be between 10m and 1h"


@pytest.mark.parametrize("groups", list(itertools.permutations(["ops", "night", "students"])))
def test_groups_widest_wins_in_any_order(groups):
    merged = field(WALLTIME).for_groups(groups)

    assert merged.max == 24 * 3600
    assert merged.min == 600
    # Only night and students set a default, and night sorts first.
    assert merged.default == 8 * 3600


def test_groups_no_bound_beats_a_bound():
    declaration = {**WALLTIME, "groups": {"a": {"max": None}, "b": {"max": "2h"}}}

    merged = field(declaration).for_groups(["a", "b"])

    assert merged.max is None
    assert merged.check("100h") == 100 * 3600


def test_groups_union_of_choices():
    partition = field(PARTITION)

    values = [choice.value for choice in partition.for_groups(["gpu", "ops"]).choices]

    assert values == ["gpu", "short", "long"]
    assert [choice.value for choice in partition.for_groups([]).choices] == ["short", "debug"]


def test_groups_visibility_shown_if_any():
    account = field(ACCOUNT)

    assert account.hidden
    assert not account.for_groups(["billing"]).hidden
    assert account.for_groups(["audit"]).hidden
    assert not account.for_groups(["audit", "billing"]).hidden


@pytest.mark.parametrize(
    "groups, message",
    [
        ({"x": {"max": "soon"}}, "the overrides of group 'x' are invalid: 'soon' must be a duration"),
        ({"x": {"max": "5m"}}, "the overrides of group 'x' are invalid: min 10m is greater than max 5m"),
        ({"x": {"max": "30m"}}, "default 1h is invalid: must be between 10m and 30m"),
        ({"x": {"pattern": "a"}}, "Extra inputs are not permitted"),
        ({"x": {"hidden": "yes"}}, "Input should be a valid boolean"),
        ({"": {"max": "5h"}}, "at least 1 character"),
        (["ops"], "Input should be a valid dictionary"),
    ],
)
def test_groups_declaration_invalid(groups, message):
    with pytest.raises(ValidationError) as caught:
        field({**WALLTIME, "groups": groups})
    assert message in str(caught.value)


def test_os_group_names_unknown_user():
    assert os_group_names("no-such-user-cylc-hub") == set()


def test_os_group_names_root():
    assert "root" in os_group_names("root")


def test_user_groups_from_hub_and_os():
    spawner = make_spawner([WALLTIME], hub_groups=["ops"], user="root", os_groups=True)

    groups = spawner.form_user_groups()

    assert "ops" in groups
    assert "root" in groups


def test_user_groups_os_lookup_off():
    spawner = make_spawner([WALLTIME], user="root", os_groups=False)

    assert spawner.form_user_groups() == set()


async def test_apply_ops_gets_longer_limit():
    ops = make_spawner([WALLTIME], hub_groups=["ops"])
    others = make_spawner([WALLTIME])

    await ops.apply_form_options({"walltime": "24h"})
    with pytest.raises(web.HTTPError) as caught:
        await others.apply_form_options({"walltime": "24h"})

    assert ops.form_values == {"walltime": 86400}
    assert caught.value.status_code == 400
    assert caught.value.jupyterhub_message == "Walltime: must be between 10m and 4h"


async def test_render_shows_group_choices_and_hides_field():
    spawner = make_spawner([PARTITION, ACCOUNT], hub_groups=["ops"])

    html = await spawner.get_options_form()

    assert '<option value="long"' in html
    assert '<option value="debug"' not in html
    assert 'name="account"' not in html


async def test_hidden_field_keeps_default():
    spawner = make_spawner([ACCOUNT])

    await spawner.apply_form_options({})
    assert spawner.form_values == {"account": "general"}
    await spawner.apply_form_options({"account": "general"})

    with pytest.raises(web.HTTPError) as caught:
        await spawner.apply_form_options({"account": "physics"})
    assert "Account: is not available to your groups" in caught.value.jupyterhub_message


async def test_hidden_field_shown_to_group():
    spawner = make_spawner([ACCOUNT], hub_groups=["billing"])

    await spawner.apply_form_options({"account": "physics"})

    assert spawner.form_values == {"account": "physics"}
    assert 'name="account"' in await spawner.get_options_form()


def test_unknown_key_message_omits_hidden_field():
    spawner = make_spawner([WALLTIME, ACCOUNT])
    asyncio.run(spawner.load_choices())

    with pytest.raises(FormValidationError) as caught:
        spawner.validate_form_values({"extra": "1"})

    assert "(options: walltime)" in str(caught.value)
