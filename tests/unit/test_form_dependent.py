"""Choice fields whose choices depend on another field's value."""

import asyncio
from html.parser import HTMLParser
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jupyterhub.spawner import LocalProcessSpawner
from tornado import web
from traitlets import TraitError

from cylc_hub.spawners.form import OptionsFormMixin


class FormSpawner(OptionsFormMixin, LocalProcessSpawner):
    pass


CLUSTER = {
    "name": "cluster",
    "type": "choice",
    "choices": [{"value": "alpha", "label": "Alpha <main>"}, "beta"],
}
PARTITION = {
    "name": "partition",
    "type": "choice",
    "depends_on": "cluster",
    "default": "long",
    "choices": {"alpha": ["short", "long"], "beta": ["gpu", "short"]},
}


def make_spawner(fields=(CLUSTER, PARTITION), stored=None):
    orm_spawner = SimpleNamespace(name="", server=None, user_options=stored)
    user = SimpleNamespace(name="alice", groups=[])
    return FormSpawner(form_fields=list(fields), orm_spawner=orm_spawner, user=user, form_os_groups=False)


async def apply(spawner, options):
    await spawner.apply_form_options(options)
    return spawner.form_values


async def test_dependent_valid_pairs():
    assert await apply(make_spawner(), {"cluster": "beta", "partition": "gpu"}) == {
        "cluster": "beta",
        "partition": "gpu",
    }
    assert await apply(make_spawner(), {"cluster": "alpha", "partition": "short"}) == {
        "cluster": "alpha",
        "partition": "short",
    }


async def test_dependent_default_follows_parent():
    assert await apply(make_spawner(), {}) == {"cluster": "alpha", "partition": "long"}
    # "long" is not a beta partition, so beta's first choice is the default.
    assert await apply(make_spawner(), {"cluster": "beta"}) == {"cluster": "beta", "partition": "gpu"}


async def test_dependent_choice_of_other_parent_rejected():
    with pytest.raises(web.HTTPError) as caught:
        await apply(make_spawner(), {"cluster": "beta", "partition": "long"})

    assert caught.value.status_code == 400
    assert caught.value.jupyterhub_message == "Partition: 'long' is not one of the choices: gpu, short"


async def test_dependent_bad_parent_reports_parent_only():
    with pytest.raises(web.HTTPError) as caught:
        await apply(make_spawner(), {"cluster": "gamma", "partition": "gpu"})

    assert caught.value.jupyterhub_message == "Cluster: 'gamma' is not one of the choices: alpha, beta"


async def test_dependent_parent_without_choices_list():
    fields = [CLUSTER, {**PARTITION, "default": None, "choices": {"alpha": ["short"]}}]

    with pytest.raises(web.HTTPError) as caught:
        await apply(make_spawner(fields), {"cluster": "beta", "partition": "short"})

    assert caught.value.jupyterhub_message == "Partition: has no choices when cluster is 'beta'"


@pytest.mark.parametrize("value", [["gpu"], 5, None, "", "<b>gpu</b>", "gpü"])
async def test_dependent_wrong_values_only_400(value):
    spawner = make_spawner()
    try:
        await apply(spawner, {"cluster": "beta", "partition": value})
    except web.HTTPError as error:
        assert error.status_code == 400
        assert error.jupyterhub_message.startswith("Partition: ")
    else:
        assert value is None
        assert spawner.form_values["partition"] == "gpu"


@pytest.mark.parametrize(
    "fields, message",
    [
        ([CLUSTER, {**PARTITION, "depends_on": "queue"}], "depends_on 'queue' must name a choice field declared before it"),
        ([PARTITION, CLUSTER], "depends_on 'cluster' must name a choice field declared before it"),
        ([CLUSTER, {**PARTITION, "choices": {"gamma": ["x"]}}], "has choices for 'gamma', which is not a choice of 'cluster'"),
        ([CLUSTER, {**PARTITION, "choices": ["short"]}], "a field with depends_on needs choices as a dict"),
        ([CLUSTER, {**PARTITION, "depends_on": None}], "choices given as a dict need depends_on"),
        ([CLUSTER, {**PARTITION, "choices": {"alpha": "short"}}], "the choices for 'alpha' must be a list"),
        ([CLUSTER, {**PARTITION, "default": 5}], "default 5 must be a string"),
        ([CLUSTER, {**PARTITION, "type": "text", "choices": None}], "depends_on applies only to choice fields"),
    ],
)
def test_dependent_declaration_invalid(fields, message):
    with pytest.raises(TraitError) as caught:
        make_spawner(fields)
    assert message in str(caught.value)


class OptionCollector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.groups = []
        self.select = {}
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "select" and attributes.get("name") == "partition":
            self.select = attributes
        if tag == "optgroup":
            self.groups.append((attributes["label"], attributes["data-cylc-hub-parent-value"], []))
        if tag == "option" and self.groups and self.select and "selected" not in self.select:
            self.groups[-1][2].append((attributes["value"], "selected" in attributes))
        if tag == "script":
            self.scripts += 1


async def test_dependent_render_groups_by_parent():
    spawner = make_spawner(stored={"cluster": "beta", "partition": "short"})

    html = await spawner.get_options_form()
    collector = OptionCollector()
    collector.feed(html)

    assert collector.select["data-cylc-hub-depends-on"] == "cylc-hub-option-cluster"
    assert collector.groups == [
        ("Alpha <main>", "alpha", [("short", False), ("long", False)]),
        ("beta", "beta", [("gpu", False), ("short", True)]),
    ]
    assert "Alpha &lt;main&gt;" in html
    assert collector.scripts == 1


async def test_dependent_rerender_keeps_draft():
    spawner = make_spawner()
    with pytest.raises(web.HTTPError):
        await spawner.run_options_from_form({"cluster": ["beta"], "partition": ["long"]})

    html = await spawner.get_options_form()

    assert "&#39;long&#39; is not one of the choices: gpu, short" in html
    assert '<option value="beta" selected>' in html


def test_no_script_without_dependent_fields():
    spawner = make_spawner([CLUSTER])

    html = asyncio.run(spawner.get_options_form())

    assert "<script" not in html


# Every new field kind at once, under random submissions.

MIXED_FIELDS = [
    CLUSTER,
    PARTITION,
    {"name": "walltime", "type": "duration", "min": "10m", "max": "4h", "default": "1h",
     "groups": {"ops": {"max": "24h"}}},
    {"name": "memory", "type": "memory", "min": "256M", "max": "16G"},
    {"name": "account", "type": "text", "hidden": True, "default": "general",
     "groups": {"ops": {"hidden": False}}},
]
JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
JSON_VALUES = st.recursive(
    JSON_SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
PLAUSIBLE = {
    "cluster": ["alpha", "beta", "gamma"],
    "partition": ["short", "long", "gpu", ""],
    "walltime": ["90m", "1:30:00", "PT2H", "24h", "5h", 600, 10**20, "", "2h; id", "１h"],
    "memory": ["4G", "512M", "1.5G", "100", "0.3M", 2**70, "<b>"],
    "account": ["general", "physics", ""],
}
MIXED_OPTIONS = st.fixed_dictionaries(
    {}, optional={name: st.sampled_from(values) for name, values in PLAUSIBLE.items()}
) | st.dictionaries(st.sampled_from(list(PLAUSIBLE) + ["extra"]) | st.text(max_size=10), JSON_VALUES, max_size=6)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(options=MIXED_OPTIONS, groups=st.sampled_from([[], ["ops"]]))
def test_mixed_fields_random_options_only_400(options, groups):
    orm_spawner = SimpleNamespace(name="", server=None, user_options=None)
    user = SimpleNamespace(name="alice", groups=[SimpleNamespace(name=name) for name in groups])
    spawner = FormSpawner(form_fields=MIXED_FIELDS, orm_spawner=orm_spawner, user=user, form_os_groups=False)

    async def apply_and_render():
        try:
            await spawner.apply_form_options(options)
        except web.HTTPError as error:
            assert error.status_code == 400
            assert error.jupyterhub_message
        else:
            assert set(spawner.form_values) == {field["name"] for field in MIXED_FIELDS}
            # Accepted values validate again unchanged, as on the next spawn.
            await spawner.apply_form_options(dict(spawner.form_values))
        return await spawner.get_options_form()

    html = asyncio.run(apply_and_render())
    assert "<b>" not in html


async def test_choice_description_shown_after_label():
    fields = [
        {"name": "queue", "type": "choice",
         "choices": [{"value": "short", "label": "Short", "description": "up to 1 h <fast>"}, "long"]},
        {**CLUSTER, "name": "site"},
    ]
    spawner = make_spawner(fields)

    html = await spawner.get_options_form()

    assert '<option value="short" selected>Short – up to 1 h &lt;fast&gt;</option>' in html
    assert '<option value="long">long</option>' in html


def test_choice_description_must_be_text():
    with pytest.raises(TraitError) as caught:
        make_spawner([{"name": "queue", "type": "choice", "choices": [{"value": "a", "description": 5}]}])
    assert "description" in str(caught.value)
