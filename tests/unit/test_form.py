"""OptionsFormMixin on a real LocalProcessSpawner: hooks, re-render, pre-fill and rendering.

The hub's user and ORM spawner are stand-ins, so these tests call the hooks the
way JupyterHub 6.1 does (``run_options_from_form``, ``options_from_query``,
``get_options_form``, ``_run_apply_user_options``) without a running hub.
"""

import asyncio
import json
from html.parser import HTMLParser
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jupyterhub.spawner import LocalProcessSpawner
from tornado import web
from traitlets import TraitError, default
from traitlets.config import Config

from cylc_hub.spawners.form import FormField, FormValidationError, OptionsFormMixin


class FormSpawner(OptionsFormMixin, LocalProcessSpawner):
    pass


def static_hosts(spawner):
    return ["login1", {"value": "login2", "label": "Login node 2"}]


async def queues(spawner):
    await asyncio.sleep(0)
    return [{"value": "short", "label": "Short (1 h)"}, {"value": "long", "label": "Long <24 h>"}]


FIELDS = [
    {"name": "walltime", "type": "integer", "label": "Walltime", "min": 1, "max": 24, "default": 2,
     "help": "Hours the server may run."},
    {"name": "memory", "type": "number", "min": 0.5, "max": 64, "step": 0.5},
    {"name": "label", "type": "text", "max_length": 40, "pattern": "[a-z][a-z0-9-]*", "required": True},
    {"name": "page", "type": "choice", "choices": ["dashboard", "workspace"]},
    {"name": "host", "type": "choice", "choices": static_hosts},
    {"name": "queue", "type": "choice", "choices": queues, "default": "long"},
    {"name": "debug", "type": "checkbox", "label": "Debug logging"},
    {"name": "tunnel", "type": "checkbox", "default": True},
]

VALID_FORM = {
    "walltime": ["4"],
    "memory": ["1.5"],
    "label": ["run-1"],
    "page": ["workspace"],
    "host": ["login2"],
    "queue": ["short"],
    "debug": ["on"],
}

VALID_VALUES = {
    "walltime": 4,
    "memory": 1.5,
    "label": "run-1",
    "page": "workspace",
    "host": "login2",
    "queue": "short",
    "debug": True,
    "tunnel": False,
}

DEFAULT_VALUES = {
    "walltime": 2,
    "memory": None,
    "label": "x",
    "page": "dashboard",
    "host": "login1",
    "queue": "long",
    "debug": False,
    "tunnel": True,
}


def make_spawner(fields=FIELDS, stored=None, **traits):
    orm_spawner = SimpleNamespace(name="", server=None, user_options=stored)
    user = SimpleNamespace(name="alice", groups=[])
    return FormSpawner(form_fields=fields, orm_spawner=orm_spawner, user=user, **traits)


class FormParser(HTMLParser):
    """Collect the form's elements by id, with their attributes and text."""

    def __init__(self):
        super().__init__()
        self.by_id = {}
        self.labels = {}
        self.options = {}
        self._open = None
        self._select = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        attributes["tag"] = tag
        attributes["text"] = ""
        if "id" in attributes:
            self.by_id[attributes["id"]] = attributes
        if tag == "label":
            self.labels[attributes["for"]] = attributes
        if tag == "select":
            self._select = attributes["id"]
            self.options[self._select] = []
        if tag == "option":
            self.options[self._select].append(attributes)
        self._open = attributes

    def handle_endtag(self, tag):
        self._open = None

    def handle_data(self, data):
        if self._open is not None:
            self._open["text"] += data


def parse_form(html):
    parser = FormParser()
    parser.feed(html)
    return parser


def element(form, name, part=""):
    return form.by_id[f"cylc-hub-option-{name}{part}"]


def selected_values(form, name):
    options = form.options[f"cylc-hub-option-{name}"]
    return [option["value"] for option in options if "selected" in option]


async def rejected_form(spawner, form_data):
    """Submit form_data, expect a 400, and return the error and the re-rendered form."""
    with pytest.raises(web.HTTPError) as caught:
        await spawner.run_options_from_form(form_data)
    assert caught.value.status_code == 400
    return caught.value, parse_form(await spawner.get_options_form())


# declarations


def test_form_fields_parsed_into_models():
    spawner = make_spawner()
    assert all(isinstance(field, FormField) for field in spawner.form_fields)
    assert [field.name for field in spawner.form_fields] == list(DEFAULT_VALUES)


def test_form_fields_bad_declaration():
    with pytest.raises(TraitError) as caught:
        make_spawner([{"name": "walltime", "type": "integer", "min": 5, "max": 1}])
    assert "FormSpawner.form_fields[0] ('walltime')" in str(caught.value)
    assert "min 5 is greater than max 1" in str(caught.value)


def test_form_fields_unknown_key():
    with pytest.raises(TraitError, match=r"form_fields\[1\] \('page'\) is invalid: chioces"):
        make_spawner([FIELDS[0], {"name": "page", "type": "choice", "chioces": ["a"]}])


def test_form_fields_not_a_dict():
    with pytest.raises(TraitError, match=r"form_fields\[0\] must be a dict, not a string"):
        make_spawner(["walltime"])


def test_form_fields_duplicate_name():
    with pytest.raises(TraitError, match="repeats the field name 'walltime'"):
        make_spawner([FIELDS[0], {"name": "walltime", "type": "text"}])


def test_form_fields_from_config():
    config = Config()
    config.FormSpawner.form_fields = [{"name": "page", "type": "choice", "choices": ["a", "b"]}]
    spawner = FormSpawner(config=config)
    assert spawner.form_fields[0].choices[1].value == "b"

    config.FormSpawner.form_fields = [{"name": "page", "type": "choice", "choices": []}]
    with pytest.raises(TraitError, match="choices must not be empty"):
        FormSpawner(config=config)


def test_form_fields_from_subclass_default():
    class DefaultFieldsSpawner(FormSpawner):
        @default("form_fields")
        def _default_form_fields(self):
            return [{"name": "page", "type": "choice", "choices": ["a", "b"]}]

    spawner = DefaultFieldsSpawner()
    assert isinstance(spawner.form_fields[0], FormField)


# options_from_form


async def test_options_from_form_valid():
    spawner = make_spawner()
    values = await spawner.run_options_from_form(VALID_FORM)
    assert values == VALID_VALUES
    assert json.loads(json.dumps(values)) == values


async def test_options_from_form_missing_checkbox_is_false():
    spawner = make_spawner()
    values = await spawner.run_options_from_form({"label": ["x"]})
    assert values["debug"] is False
    assert values["tunnel"] is False
    assert values["walltime"] == 2
    assert values["queue"] == "long"


async def test_options_from_form_names_each_bad_field():
    spawner = make_spawner()
    form_data = {**VALID_FORM, "walltime": ["30"], "label": ["x" * 41], "page": ["x"]}
    with pytest.raises(web.HTTPError) as caught:
        await spawner.run_options_from_form(form_data)

    error = caught.value
    assert error.status_code == 400
    expected = (
        "Walltime: must be between 1 and 24; "
        "Label: must be at most 40 characters; "
        "Page: 'x' is not one of the choices: dashboard, workspace"
    )
    assert error.log_message.replace("%%", "%") == expected
    assert error.jupyterhub_message == expected


async def test_options_from_form_required_field_empty():
    spawner = make_spawner()
    with pytest.raises(web.HTTPError, match="Label: is required"):
        await spawner.run_options_from_form({**VALID_FORM, "label": [""]})


async def test_options_from_form_unknown_key_rejected():
    spawner = make_spawner()
    with pytest.raises(web.HTTPError) as caught:
        await spawner.run_options_from_form({**VALID_FORM, "image": ["evil"]})
    assert caught.value.jupyterhub_message.startswith("'image': is not an option of this form")


async def test_options_from_form_ignores_xsrf_field():
    spawner = make_spawner()
    values = await spawner.run_options_from_form({**VALID_FORM, "_xsrf": ["2|abc|def|123"]})
    assert values == VALID_VALUES


async def test_options_from_form_repeated_key_rejected():
    spawner = make_spawner()
    with pytest.raises(web.HTTPError, match="Walltime: must be an integer, not a list"):
        await spawner.run_options_from_form({**VALID_FORM, "walltime": ["1", "2"]})


async def test_options_from_form_empty_list_is_missing():
    spawner = make_spawner()
    values = await spawner.run_options_from_form({**VALID_FORM, "walltime": []})
    assert values["walltime"] == 2


async def test_options_from_form_file_upload_rejected():
    spawner = make_spawner()
    upload = {"filename": "x", "body": b"\x00", "content_type": "application/octet-stream"}
    with pytest.raises(web.HTTPError, match="'label_file': is not an option"):
        await spawner.run_options_from_form({**VALID_FORM, "label_file": [upload]})


async def test_options_from_form_many_errors_counted():
    spawner = make_spawner()
    form_data = {f"extra{i}": ["x"] for i in range(12)}
    with pytest.raises(web.HTTPError) as caught:
        await spawner.run_options_from_form(form_data)
    message = caught.value.jupyterhub_message
    assert message.startswith("Label: is required; 'extra0': is not an option")
    assert message.endswith("; and 8 more")


async def test_options_from_form_not_a_mapping():
    spawner = make_spawner()
    with pytest.raises(web.HTTPError, match="Options: must be an object of field names and values, not a list"):
        await spawner.run_options_from_form([["walltime", "1"]])


# re-render after a rejected form


async def test_rerender_keeps_values_and_shows_messages():
    spawner = make_spawner()
    form_data = {**VALID_FORM, "walltime": ["30"], "label": ["Bad Label"], "page": ["x"], "debug": ["on"]}
    _, form = await rejected_form(spawner, form_data)

    walltime = element(form, "walltime")
    assert walltime["value"] == "30"
    assert "is-invalid" in walltime["class"].split()
    assert walltime["aria-invalid"] == "true"
    assert element(form, "walltime", "-error")["text"] == "must be between 1 and 24"
    assert "invalid-feedback" in element(form, "walltime", "-error")["class"]
    assert walltime["aria-describedby"] == "cylc-hub-option-walltime-error cylc-hub-option-walltime-help"

    assert element(form, "label")["value"] == "Bad Label"
    assert element(form, "label", "-error")["text"] == "must match the pattern [a-z][a-z0-9-]*"
    assert element(form, "page", "-error")["text"] == "'x' is not one of the choices: dashboard, workspace"
    assert selected_values(form, "page") == []

    assert element(form, "memory")["value"] == "1.5"
    assert "is-invalid" not in element(form, "memory")["class"]
    assert "cylc-hub-option-memory-error" not in form.by_id
    assert selected_values(form, "host") == ["login2"]
    assert selected_values(form, "queue") == ["short"]
    assert "checked" in element(form, "debug")
    assert "checked" not in element(form, "tunnel")


async def test_rerender_shows_draft_once():
    spawner = make_spawner(stored={"walltime": 5})
    await rejected_form(spawner, {**VALID_FORM, "walltime": ["30"]})

    form = parse_form(await spawner.get_options_form())
    assert element(form, "walltime")["value"] == "5"
    assert "cylc-hub-option-walltime-error" not in form.by_id


async def test_rerender_after_success_shows_stored_values():
    spawner = make_spawner(stored={"walltime": 7})
    with pytest.raises(web.HTTPError):
        await spawner.run_options_from_form({**VALID_FORM, "walltime": ["30"]})
    await spawner.run_options_from_form(VALID_FORM)

    form = parse_form(await spawner.get_options_form())
    assert element(form, "walltime")["value"] == "7"
    assert "cylc-hub-option-walltime-error" not in form.by_id


async def test_rerender_escapes_submitted_html():
    spawner = make_spawner()
    payload = '"><script>alert(1)</script>'
    with pytest.raises(web.HTTPError):
        await spawner.run_options_from_form({**VALID_FORM, "label": [payload], "page": [payload]})

    html = await spawner.get_options_form()
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert element(parse_form(html), "label")["value"] == payload


async def test_rerender_cuts_huge_value():
    spawner = make_spawner()
    _, form = await rejected_form(spawner, {**VALID_FORM, "label": ["a" * 1_000_000]})
    assert element(form, "label", "-error")["text"] == "must be at most 40 characters"
    assert len(element(form, "label")["value"]) == 4096


async def test_rerender_keeps_non_ascii():
    spawner = make_spawner()
    _, form = await rejected_form(spawner, {**VALID_FORM, "label": ["zürich-東京"]})
    assert element(form, "label")["value"] == "zürich-東京"


# pre-fill from stored user_options


async def test_prefill_from_stored_user_options():
    spawner = make_spawner(stored=dict(VALID_VALUES))
    form = parse_form(await spawner.get_options_form())
    assert element(form, "walltime")["value"] == "4"
    assert element(form, "memory")["value"] == "1.5"
    assert element(form, "label")["value"] == "run-1"
    assert selected_values(form, "page") == ["workspace"]
    assert selected_values(form, "host") == ["login2"]
    assert selected_values(form, "queue") == ["short"]
    assert "checked" in element(form, "debug")
    assert "checked" not in element(form, "tunnel")
    assert not [key for key in form.by_id if key.endswith("-error")]


async def test_prefill_skips_stored_values_no_longer_valid():
    stored = {
        "walltime": 99,
        "memory": "lots",
        "label": ["run-1"],
        "page": "retired-page",
        "host": {"value": "login2"},
        "queue": "express",
        "debug": "maybe",
        "tunnel": False,
        "gone": "field removed from config",
    }
    spawner = make_spawner(stored=stored)
    form = parse_form(await spawner.get_options_form())
    assert element(form, "walltime")["value"] == "2"
    assert element(form, "memory")["value"] == ""
    assert element(form, "label")["value"] == ""
    assert selected_values(form, "page") == ["dashboard"]
    assert selected_values(form, "host") == ["login1"]
    assert selected_values(form, "queue") == ["long"]
    assert "checked" not in element(form, "debug")
    assert "checked" not in element(form, "tunnel")
    assert not [key for key in form.by_id if key.endswith("-error")]


@pytest.mark.parametrize("stored", [None, [], "text", {"walltime": None}])
async def test_prefill_from_odd_stored_options(stored):
    spawner = make_spawner(stored=stored)
    form = parse_form(await spawner.get_options_form())
    assert element(form, "walltime")["value"] == "2"
    assert "checked" in element(form, "tunnel")


async def test_prefill_without_orm_spawner():
    spawner = FormSpawner(form_fields=FIELDS)
    form = parse_form(await spawner.get_options_form())
    assert element(form, "walltime")["value"] == "2"


# apply_user_options (REST API and every spawn)


async def test_apply_empty_options_gives_defaults():
    spawner = make_spawner(FIELDS[:2] + FIELDS[3:])
    await spawner._run_apply_user_options({})
    assert spawner.form_values == {key: value for key, value in DEFAULT_VALUES.items() if key != "label"}


async def test_apply_stores_normalized_values():
    spawner = make_spawner(stored={"walltime": "4", "debug": "on"})
    options = {**VALID_VALUES, "walltime": "4", "memory": "1.5", "debug": "on"}
    await spawner._run_apply_user_options(options)
    assert spawner.form_values == VALID_VALUES
    assert spawner.user_options == VALID_VALUES
    assert spawner.orm_spawner.user_options == VALID_VALUES
    assert spawner.orm_spawner.user_options is not spawner.form_values


async def test_apply_accepts_options_from_form():
    spawner = make_spawner()
    options = await spawner.run_options_from_form(VALID_FORM)
    await spawner._run_apply_user_options(options)
    assert spawner.form_values == VALID_VALUES


@pytest.mark.parametrize(
    "options, expected",
    [
        ({"label": "x", "image": "evil"}, "'image': is not an option of this form (options: walltime, memory,"),
        ({"label": "x", "walltime": 0}, "Walltime: must be between 1 and 24"),
        ({"label": "x", "walltime": "2; rm -rf ~"}, "Walltime: '2; rm -rf ~' is not an integer"),
        ({"label": "x", "walltime": [4]}, "Walltime: must be an integer, not a list"),
        ({"label": "x", "memory": 0.7}, "Memory: must be 0.5 plus a multiple of 0.5"),
        ({"label": "x", "memory": {"GB": 4}}, "Memory: must be a number, not an object"),
        ({"label": ["x"]}, "Label: must be a string, not a list"),
        ({"label": {"a": "b"}}, "Label: must be a string, not an object"),
        ({"label": "x$(reboot)"}, "Label: must match the pattern [a-z][a-z0-9-]*"),
        ({"label": "x" * 100_000}, "Label: must be at most 40 characters"),
        ({}, "Label: is required"),
        ({"label": "x", "page": "<img src=x>"}, "Page: '<img src=x>' is not one of the choices: dashboard, workspace"),
        ({"label": "x", "host": "login3"}, "Host: 'login3' is not one of the choices: login1, login2"),
        ({"label": "x", "queue": "urgent"}, "Queue: 'urgent' is not one of the choices: short, long"),
        ({"label": "x", "debug": "maybe"}, "Debug logging: 'maybe' is not true or false"),
        ({"label": "x", "tunnel": [True]}, "Tunnel: must be true or false, not a list"),
    ],
)
async def test_apply_rejects_bad_options(options, expected):
    spawner = make_spawner()
    with pytest.raises(web.HTTPError) as caught:
        await spawner._run_apply_user_options(options)
    assert caught.value.status_code == 400
    assert expected in caught.value.jupyterhub_message
    assert spawner.form_values == {}


def request_options(spawner, options):
    """Store and set requested options the way JupyterHub 6.1 does before applying them."""
    spawner.orm_spawner.user_options = options
    spawner.user_options = options


async def test_apply_rejection_restores_stored_options():
    previous = {"label": "run-1", "walltime": 3}
    spawner = make_spawner(stored=previous, user_options=previous)
    request_options(spawner, {"label": "x", "walltime": 99})

    with pytest.raises(web.HTTPError):
        await spawner._run_apply_user_options(spawner.user_options)

    assert spawner.orm_spawner.user_options == previous
    assert spawner.user_options == previous


async def test_apply_rejection_after_success_restores_accepted():
    spawner = make_spawner()
    request_options(spawner, {"label": "run-1", "walltime": 3})
    await spawner._run_apply_user_options(spawner.user_options)
    accepted = dict(spawner.form_values)
    request_options(spawner, {"label": "run-2", "walltime": 99})

    with pytest.raises(web.HTTPError):
        await spawner._run_apply_user_options(spawner.user_options)

    assert spawner.orm_spawner.user_options == accepted
    assert accepted["label"] == "run-1"


async def test_prefill_after_rest_rejection():
    previous = {"label": "run-1", "walltime": 3}
    spawner = make_spawner(stored=previous, user_options=previous)
    request_options(spawner, {"label": "run-2", "walltime": 99})
    with pytest.raises(web.HTTPError):
        await spawner._run_apply_user_options(spawner.user_options)

    form = parse_form(await spawner.get_options_form())
    assert element(form, "label")["value"] == "run-1"
    assert element(form, "walltime")["value"] == "3"


@pytest.mark.parametrize("options", [None, [], "walltime=4", 4])
async def test_apply_rejects_non_mapping(options):
    spawner = make_spawner()
    with pytest.raises(web.HTTPError) as caught:
        await spawner.apply_form_options(options)
    assert caught.value.status_code == 400
    assert caught.value.jupyterhub_message.startswith("Options: must be an object of field names and values")


async def test_apply_with_no_fields():
    spawner = make_spawner([])
    await spawner._run_apply_user_options({})
    assert spawner.form_values == {}
    with pytest.raises(web.HTTPError, match="'image': is not an option of this form \\(options: none\\)"):
        await spawner._run_apply_user_options({"image": "x"})


async def test_apply_hook_replaced_by_config():
    def site_hook(spawner, user_options):
        spawner.environment = {"SEEN": "yes"}

    spawner = make_spawner(apply_user_options=site_hook)
    await spawner._run_apply_user_options({"anything": 1})
    assert spawner.environment == {"SEEN": "yes"}


# options_from_query


async def test_options_from_query_dict_of_lists():
    spawner = make_spawner()
    values = await spawner.options_from_query({"label": ["q"], "walltime": ["6"]})
    assert values == {**DEFAULT_VALUES, "label": "q", "walltime": 6}


async def test_options_from_query_dict_of_strings():
    spawner = make_spawner()
    values = await spawner.options_from_query({"label": "q", "debug": "true", "tunnel": "false"})
    assert values["debug"] is True
    assert values["tunnel"] is False


async def test_options_from_query_missing_checkbox_takes_default():
    spawner = make_spawner()
    values = await spawner.options_from_query({"label": "q"})
    assert values["tunnel"] is True


async def test_options_from_query_invalid_rerenders():
    spawner = make_spawner()
    with pytest.raises(web.HTTPError) as caught:
        await spawner.options_from_query({"label": ["q"], "walltime": ["99"], "colour": ["red"]})
    assert caught.value.status_code == 400
    assert caught.value.jupyterhub_message == (
        "Walltime: must be between 1 and 24; 'colour': is not an option of this form "
        "(options: walltime, memory, label, page, host, queue, debug, tunnel)"
    )

    form = parse_form(await spawner.get_options_form())
    assert element(form, "walltime")["value"] == "99"
    assert element(form, "walltime", "-error")["text"] == "must be between 1 and 24"
    assert element(form, "label")["value"] == "q"


async def test_options_from_query_rerender_keeps_other_fields():
    spawner = make_spawner(stored={"label": "stored-run", "page": "workspace"})
    with pytest.raises(web.HTTPError):
        await spawner.options_from_query({"walltime": ["0"]})

    form = parse_form(await spawner.get_options_form())
    assert element(form, "walltime")["value"] == "0"
    assert element(form, "label")["value"] == "stored-run"
    assert selected_values(form, "page") == ["workspace"]
    assert "checked" in element(form, "tunnel")


# callable choices


async def test_choices_sync_and_async_callables():
    spawner = make_spawner()
    loaded = await spawner.load_choices()
    assert [choice.value for choice in loaded["host"]] == ["login1", "login2"]
    assert [choice.label for choice in loaded["queue"]] == ["Short (1 h)", "Long <24 h>"]
    assert [choice.value for choice in loaded["page"]] == ["dashboard", "workspace"]


async def test_choices_callable_gets_spawner():
    seen = []

    def hosts_for_user(spawner):
        seen.append(spawner)
        return [f"{spawner.user.name}-node"]

    spawner = make_spawner([{"name": "host", "type": "choice", "choices": hosts_for_user}])
    values = await spawner.run_options_from_form({"host": ["alice-node"]})
    assert values == {"host": "alice-node"}
    assert seen == [spawner]


async def test_choices_callable_reloaded_for_each_submission():
    hosts = [["a", "b"]]
    spawner = make_spawner([{"name": "host", "type": "choice", "choices": lambda spawner: hosts[0]}])
    assert await spawner.run_options_from_form({"host": ["b"]}) == {"host": "b"}

    hosts[0] = ["a"]
    with pytest.raises(web.HTTPError, match="Host: 'b' is not one of the choices: a"):
        await spawner.run_options_from_form({"host": ["b"]})


async def test_choices_callable_default_falls_back():
    spawner = make_spawner([{"name": "host", "type": "choice", "choices": lambda s: ["a", "b"], "default": "z"}])
    await spawner.apply_form_options({})
    assert spawner.form_values == {"host": "a"}


async def test_choices_callable_failure_shows_error(caplog):
    def broken(spawner):
        raise OSError("sinfo: command not found")

    spawner = make_spawner([FIELDS[0], {"name": "partition", "type": "choice", "choices": broken}])
    form = parse_form(await spawner.get_options_form())
    assert element(form, "partition", "-error")["text"] == (
        "The choices could not be loaded. Reload the page, or ask the site administrator."
    )
    assert form.options["cylc-hub-option-partition"] == []
    assert "Loading the choices of form field partition for alice failed" in caplog.text

    with pytest.raises(web.HTTPError) as caught:
        await spawner.run_options_from_form({"walltime": ["3"], "partition": ["debug"]})
    assert caught.value.jupyterhub_message == (
        "Partition: its choices could not be loaded (try again later, or ask the site administrator)"
    )


@pytest.mark.parametrize("result", [None, "a,b", [1, 2], [{"value": "a", "colour": "red"}], ["a", "a"]])
async def test_choices_callable_bad_result(result):
    spawner = make_spawner([{"name": "host", "type": "choice", "choices": lambda s: result}])
    loaded = await spawner.load_choices()
    assert loaded["host"] is None
    with pytest.raises(web.HTTPError, match="Host: its choices could not be loaded"):
        await spawner.apply_form_options({"host": "a"})


async def test_choices_async_callable_timeout():
    async def slow(spawner):
        await asyncio.sleep(10)
        return ["a"]

    spawner = make_spawner([{"name": "host", "type": "choice", "choices": slow}], form_choices_timeout=0.01)
    loaded = await spawner.load_choices()
    assert loaded["host"] is None


def test_validate_form_values_needs_loaded_choices():
    spawner = make_spawner()
    with pytest.raises(RuntimeError, match="await load_choices\\(\\) first"):
        spawner.validate_form_values({"label": "x"})


async def test_validate_form_values_raises_form_validation_error():
    spawner = make_spawner()
    await spawner.load_choices()
    with pytest.raises(FormValidationError) as caught:
        spawner.validate_form_values({"walltime": 0, "label": "x", "extra": 1})
    assert caught.value.errors == {
        "walltime": "must be between 1 and 24",
        "'extra'": "is not an option of this form (options: walltime, memory, label, page, host, queue, debug, tunnel)",
    }
    assert str(caught.value).startswith("Walltime: must be between 1 and 24; 'extra': is not an option")


# rendering


async def test_render_no_fields_gives_no_form():
    spawner = make_spawner([])
    assert await spawner.get_options_form() == ""


async def test_render_labels_tied_to_inputs():
    spawner = make_spawner()
    form = parse_form(await spawner.get_options_form())
    for name in DEFAULT_VALUES:
        element_id = f"cylc-hub-option-{name}"
        assert form.labels[element_id]["tag"] == "label"
        assert element(form, name)["name"] == name
    assert form.labels["cylc-hub-option-walltime"]["text"] == "Walltime"
    assert form.labels["cylc-hub-option-debug"]["text"] == "Debug logging"


async def test_render_bootstrap_classes_and_attributes():
    spawner = make_spawner()
    form = parse_form(await spawner.get_options_form())

    walltime = element(form, "walltime")
    assert (walltime["tag"], walltime["type"], walltime["class"]) == ("input", "number", "form-control")
    assert (walltime["min"], walltime["max"], walltime["step"]) == ("1", "24", "1")
    assert walltime["aria-describedby"] == "cylc-hub-option-walltime-help"
    assert element(form, "walltime", "-help")["class"] == "form-text"
    assert element(form, "walltime", "-help")["text"] == "Hours the server may run."

    assert element(form, "memory")["step"] == "0.5"
    assert "aria-describedby" not in element(form, "memory")

    label = element(form, "label")
    assert (label["type"], label["maxlength"]) == ("text", "40")
    assert "required" in label

    assert element(form, "page")["tag"] == "select"
    assert element(form, "page")["class"] == "form-select"

    debug = element(form, "debug")
    assert (debug["type"], debug["class"], debug["value"]) == ("checkbox", "form-check-input", "on")
    assert form.labels["cylc-hub-option-debug"]["class"] == "form-check-label"
    assert "form-label" in form.labels["cylc-hub-option-walltime"]["class"]


async def test_render_number_without_step_allows_any():
    spawner = make_spawner([{"name": "ratio", "type": "number"}])
    form = parse_form(await spawner.get_options_form())
    assert element(form, "ratio")["step"] == "any"
    assert "min" not in element(form, "ratio")


async def test_render_escapes_html_in_declarations():
    fields = [
        {"name": "page", "type": "choice", "label": "<b>Page</b>", "help": "<a href='x'>help</a>",
         "choices": [{"value": '"><script>x</script>', "label": "<i>Evil</i>"}]},
        {"name": "note", "type": "text", "default": "<script>alert(1)</script>"},
    ]
    html = await make_spawner(fields).get_options_form()
    assert "<script>" not in html
    assert "<b>" not in html
    assert "<i>" not in html
    assert "&lt;b&gt;Page&lt;/b&gt;" in html

    form = parse_form(html)
    assert form.labels["cylc-hub-option-page"]["text"] == "<b>Page</b>"
    assert element(form, "page", "-help")["text"] == "<a href='x'>help</a>"
    option = form.options["cylc-hub-option-page"][0]
    assert (option["value"], option["text"]) == ('"><script>x</script>', "<i>Evil</i>")
    assert element(form, "note")["value"] == "<script>alert(1)</script>"


async def test_render_escapes_html_from_async_choices():
    spawner = make_spawner()
    html = await spawner.get_options_form()
    assert "Long &lt;24 h&gt;" in html


# property test


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=300),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=10,
)
FIELD_NAMES = st.sampled_from(list(DEFAULT_VALUES) + ["extra", ""])
OPTION_KEYS = FIELD_NAMES | st.text(max_size=20)
# Mostly valid values for each field, so that the property tests also reach success.
PLAUSIBLE_VALUES = {
    "walltime": ["4", 4, 24, 25, "x"],
    "memory": [1.5, "1.5", 0.7, ""],
    "page": ["dashboard", "workspace", "x"],
    "host": ["login1", "login2", "login3"],
    "queue": ["short", "long", "urgent"],
    "debug": ["on", True, False, "maybe"],
    "tunnel": ["false", True, [True]],
}
PLAUSIBLE_OPTIONS = st.fixed_dictionaries(
    {"label": st.sampled_from(["run-1", "Run 1"])},
    optional={name: st.sampled_from(values) for name, values in PLAUSIBLE_VALUES.items()},
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(options=PLAUSIBLE_OPTIONS | st.dictionaries(OPTION_KEYS, JSON_VALUES, max_size=10) | JSON_VALUES)
def test_apply_random_json_only_400(options):
    spawner = make_spawner()
    try:
        asyncio.run(spawner.apply_form_options(options))
    except web.HTTPError as error:
        assert error.status_code == 400
        assert error.jupyterhub_message
        assert spawner.form_values == {}
    else:
        assert set(spawner.form_values) == set(DEFAULT_VALUES)
        assert json.loads(json.dumps(spawner.form_values)) == spawner.form_values
        # Valid options stay valid when applied again, as on the next spawn.
        asyncio.run(spawner.apply_form_options(spawner.orm_spawner.user_options))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(options=PLAUSIBLE_OPTIONS | st.dictionaries(OPTION_KEYS, JSON_VALUES, max_size=10))
def test_validate_random_json_only_validation_error(options):
    spawner = make_spawner()
    asyncio.run(spawner.load_choices())
    try:
        values = spawner.validate_form_values(options)
    except FormValidationError as error:
        assert error.errors
        assert str(error)
    else:
        assert set(values) == set(DEFAULT_VALUES)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(form_data=st.dictionaries(OPTION_KEYS, st.lists(st.text(max_size=100), max_size=3), max_size=10))
def test_form_random_strings_only_400(form_data):
    spawner = make_spawner()

    async def submit_and_render():
        try:
            await spawner.run_options_from_form(form_data)
        except web.HTTPError as error:
            assert error.status_code == 400
        return await spawner.get_options_form()

    html = asyncio.run(submit_and_render())
    assert "<script" not in html.lower()
    assert parse_form(html).by_id


# duration and memory fields

UNIT_FIELDS = [
    {"name": "walltime", "type": "duration", "min": "10m", "max": "4h", "default": "1h"},
    {"name": "memory", "type": "memory", "min": "512M", "max": "64G", "default": "4G"},
]


async def test_unit_fields_apply_normalized():
    spawner = make_spawner(UNIT_FIELDS)

    await spawner.apply_form_options({"walltime": "1:30:00", "memory": "1.5G"})

    assert spawner.form_values == {"walltime": 5400, "memory": 1536}
    assert spawner.orm_spawner.user_options == {"walltime": 5400, "memory": 1536}


async def test_unit_fields_prefill_with_units():
    spawner = make_spawner(UNIT_FIELDS, stored={"walltime": 5400, "memory": 1536})

    form = parse_form(await spawner.get_options_form())

    assert element(form, "walltime")["value"] == "1h30m"
    assert element(form, "walltime")["type"] == "text"
    assert element(form, "memory")["value"] == "1536M"
    assert form.labels["cylc-hub-option-walltime"]["text"] == "Walltime"


async def test_unit_fields_rerender_keeps_typed_text():
    spawner = make_spawner(UNIT_FIELDS)

    error, form = await rejected_form(spawner, {"walltime": ["5h"], "memory": ["2G"]})

    assert "Walltime: must be between 10m and 4h" in error.jupyterhub_message
    assert element(form, "walltime")["value"] == "5h"
    assert element(form, "walltime", "-error")["text"] == "must be between 10m and 4h"
    assert element(form, "memory")["value"] == "2G"
    assert "cylc-hub-option-memory-error" not in form.by_id


async def test_unit_fields_bad_rest_options_400():
    spawner = make_spawner(UNIT_FIELDS)

    with pytest.raises(web.HTTPError) as caught:
        await spawner.apply_form_options({"walltime": "forever", "memory": 10**6})

    assert caught.value.status_code == 400
    message = caught.value.jupyterhub_message
    assert "Walltime: must be a duration such as 90m" in message
    assert "Memory: must be between 512M and 64G" in message
