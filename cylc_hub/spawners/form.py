"""Options form for any JupyterHub Spawner, validated on the server.

Put :class:`OptionsFormMixin` before the Spawner class::

    class MySpawner(OptionsFormMixin, LocalProcessSpawner):
        ...

    c.MySpawner.form_fields = [
        {"name": "walltime", "type": "integer", "min": 1, "max": 24, "default": 2},
    ]

The mixin supplies defaults for four JupyterHub hooks, so that the form page,
``/hub/spawn?opt-NAME=value`` links and the REST API all pass through one
validation (:meth:`OptionsFormMixin.validate_form_values`):

- ``options_form`` renders ``templates/options_form.html``.
- ``options_from_form`` and ``options_from_query`` validate what the browser
  sent and return typed values, or raise ``HTTPError(400)``.
- ``apply_user_options`` (JupyterHub 5.3 and later) validates whatever
  ``user_options`` reached the spawner, including a REST request body, then
  sets :attr:`OptionsFormMixin.form_values`.

A site that sets one of these hooks in config replaces the mixin's version.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template
from jupyterhub import orm
from jupyterhub.apihandlers.base import APIHandler
from sqlalchemy import event
from tornado import web
from tornado.log import app_log
from traitlets import Bool, Dict, Float, HasTraits, default, observe

from cylc_hub.spawners.form_fields import (
    Choice,
    FieldError,
    FormField,
    FormFieldList,
    FormValidationError,
    json_type_name,
    parse_choices,
    short_repr,
)
from cylc_hub.spawners.form_groups import os_group_names

__all__ = ["FormField", "FormValidationError", "OptionsFormMixin"]

_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

# Longest submitted string kept to re-render a rejected form, so that a huge
# request body does not stay in memory with the spawner.
_MAX_DRAFT_CHARACTERS = 4096


# JupyterHub 6.1 stores the user_options of a spawn request in its database
# before any spawner hook can validate them. Its JSON encoder raises
# RecursionError on options nested about 970 levels deep, which fails the
# request with a 500 and leaves a server marked ready that never started.
# No form value is nested, so deeper options are never stored.
MAX_STORED_OPTIONS_DEPTH = 100

# JupyterHub's database column reads {"__jupyterhub_bytes__": true, "data": ...}
# back as bytes, which the user_options trait and the REST API cannot take.
RESERVED_KEY_PREFIX = "__jupyterhub_"


def unstorable_reason(options: Any) -> Optional[str]:
    """Return why ``options`` must not be stored as a spawner's user_options, or None.

    The options are walked without recursion, so any depth is safe to check.
    """
    pending = [(options, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > MAX_STORED_OPTIONS_DEPTH:
            return f"they are nested deeper than {MAX_STORED_OPTIONS_DEPTH} levels"
        if isinstance(value, Mapping):
            for key in value:
                if str(key).startswith(RESERVED_KEY_PREFIX):
                    return (
                        f"their key {short_repr(key)} starts with {RESERVED_KEY_PREFIX!r}, "
                        "which JupyterHub reserves"
                    )
            children = value.values()
        elif isinstance(value, (list, tuple)):
            children = value
        else:
            continue
        pending.extend((child, depth + 1) for child in children)
    return None


def _keep_storable_options(target: Any, value: Any, old_value: Any, initiator: Any) -> Any:
    """Keep the stored user_options in place of options that JupyterHub cannot store safely.

    A SQLAlchemy ``set`` listener on ``orm.Spawner.user_options``. The spawner's
    ``apply_user_options`` still receives the requested options and rejects them
    with a 400 that names the field.
    """
    reason = unstorable_reason(value)
    if reason is None:
        return value
    owner = getattr(getattr(target, "user", None), "name", "?")
    app_log.warning(
        "Not storing the requested user_options of %s's server %r, because %s. The stored options stay.",
        owner,
        getattr(target, "name", ""),
        reason,
    )
    return old_value if isinstance(old_value, dict) else None


if not event.contains(orm.Spawner.user_options, "set", _keep_storable_options):
    event.listen(
        orm.Spawner.user_options, "set", _keep_storable_options, retval=True, active_history=True
    )


def _non_object_rest_body(handler: Any) -> bool:
    """Return whether ``handler`` is a REST API POST whose body is JSON other than an object.

    JupyterHub 6.1 reads the bodies ``[]``, ``0``, ``false``, ``""`` and
    ``null`` as no body, and would start the server with the stored options.
    It rejects the other non-object bodies itself.
    """
    if not isinstance(handler, APIHandler) or handler.request.method != "POST":
        return False
    body = handler.request.body.lstrip()
    return bool(body) and not body.startswith(b"{")


def _bad_request(error: FormValidationError) -> web.HTTPError:
    http_error = web.HTTPError(400, error.message)
    # JupyterHub shows jupyterhub_message as is, in place of str(), which
    # would wrap the message in "HTTP 400: Bad Request (...)".
    http_error.jupyterhub_message = error.message
    return http_error


@lru_cache(maxsize=1)
def _form_template() -> Template:
    environment = Environment(
        loader=FileSystemLoader(str(_TEMPLATES)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return environment.get_template("options_form.html")


def _unpack_form_data(form_data: Any) -> Any:
    """Replace each one-item list of form data with its item.

    An empty list counts as a missing key. A longer list stays a list, which
    no field accepts. Anything that is not a mapping is returned unchanged
    for the validation to reject.
    """
    if not isinstance(form_data, Mapping):
        return form_data

    unpacked = {}
    for key, value in form_data.items():
        if isinstance(value, (list, tuple)):
            if not value:
                continue
            value = value[0] if len(value) == 1 else list(value)
        unpacked[key] = value
    return unpacked


def _text_for_input(value: Any) -> str:
    """Return a value as the text of an input element."""
    if value is None or isinstance(value, (bool, list, dict)):
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return short_repr(value, limit=64)
    return ""


async def _render_options_form(spawner: OptionsFormMixin) -> str:
    return await spawner.render_options_form()


async def _apply_form_options(spawner: OptionsFormMixin, user_options: Any) -> None:
    await spawner.apply_form_options(user_options)


class OptionsFormMixin(HasTraits):
    """Spawner mixin that shows, validates and applies the declared form fields.

    Expects the Spawner attributes ``log``, ``orm_spawner``, ``user_options``
    and ``_log_name``.
    """

    form_fields = FormFieldList(
        help="""
        Fields of the options form shown before a server starts, as a list of dicts.

        Each dict has a ``name`` (letters, digits and underscores, starting
        with a letter) and a ``type``: ``choice``, ``text``, ``integer``,
        ``number``, ``duration``, ``memory`` or ``checkbox``. Optional keys:
        ``label``, ``help``, ``default``, ``required``. A choice field needs
        ``choices``: a list of strings or ``{"value", "label",
        "description"}`` dicts (label and description optional, the
        description shown after the label), or a callable taking the spawner
        and returning such a list, which may be async. A text field
        takes ``pattern`` (a Python regular expression the whole value must
        match) and ``max_length`` (256 characters when not set). Integer and
        number fields take ``min``, ``max`` and ``step``. A step counts from
        ``min``, or from 0 without ``min``. A duration field accepts text
        such as ``90m``, ``2h``, ``1:30:00`` or ``PT2H`` and stores whole
        seconds. A memory field accepts ``512M``, ``4G`` or a number of MiB
        and stores whole MiB. Both take ``min`` and ``max`` written the same
        way, e.g. ``"max": "24h"``.

        A choice field may depend on an earlier choice field: ``depends_on``
        names that field, and ``choices`` is then a dict from each of its
        values to a list, e.g. ``{"alpha": ["short", "long"], "beta":
        ["gpu"]}``. The server checks the pair. The form groups the lists
        under the other field's choices, and a small script shows only the
        list that applies.

        A field may depend on the user's groups: ``groups`` maps a group name
        to overrides of ``min``, ``max``, ``choices``, ``default`` and
        ``hidden`` (a hidden field is not shown and keeps its default), e.g.
        ``"groups": {"ops": {"max": "24h"}}``. When several of the user's
        groups override a key, the widest value wins: the lowest min, the
        highest max, the union of choices, shown if any group shows it.

        Labels and help text are shown as plain text, never as HTML. An empty
        list shows no form.
        """,
    ).tag(config=True)

    form_os_groups = Bool(
        True,
        help="""
        Whether the OS groups of the user, looked up by user name, count for
        the ``groups`` overrides of form fields.

        The user's JupyterHub groups always count. Turn this off where hub
        user names are not OS user names.
        """,
    ).tag(config=True)

    form_choices_timeout = Float(
        10,
        min=0,
        help="""
        Seconds to wait for an async ``choices`` callable of a form field.

        A callable that fails or times out leaves its field without choices:
        the form shows an error under it and rejects submissions until a
        later call succeeds. The timeout cannot stop a callable that is not
        async.
        """,
    ).tag(config=True)

    form_values = Dict(
        help="""
        Validated, typed values of every form field, defaults filled in.

        Set by ``apply_user_options`` before the server starts, which also
        replaces ``user_options`` with the same values. Build commands and
        batch scripts from these, never from the raw request.
        """,
    )

    # Choices per choice field from the last load_choices(), where None marks
    # a callable that failed.
    _loaded_choices: dict[str, Optional[list[Choice]]] = {}

    # Raw values and rules of the last rejected form or query, shown once by
    # the next render of the form.
    _form_draft: Optional[tuple[dict, dict]] = None

    # The user_options from before the request being applied, put back in the
    # database when that request is rejected.
    _previous_options: Optional[dict] = None
    _setting_options = False

    @default("options_form")
    def _default_options_form(self) -> Any:
        return _render_options_form

    @default("options_from_form")
    def _default_options_from_form(self) -> Any:
        return self.validate_form_data

    @default("apply_user_options")
    def _default_apply_user_options(self) -> Any:
        return _apply_form_options

    async def load_choices(self) -> dict[str, Optional[list[Choice]]]:
        """Call the ``choices`` callables and keep the lists for validation.

        Called by every hook before it renders or validates. Returns the
        choices of each choice field, ``None`` where a callable failed.
        """
        loaded = {}
        for field in self.form_fields:
            if field.type != "choice":
                continue
            if callable(field.choices):
                loaded[field.name] = await self._call_choices(field)
            else:
                loaded[field.name] = field.choices
        self._loaded_choices = loaded
        return loaded

    async def _call_choices(self, field: FormField) -> Optional[list[Choice]]:
        # Any exception is caught because the callable is site code, and its
        # failure should show as an error under one field, not break the page.
        try:
            result = field.choices(self)
            if inspect.isawaitable(result):
                result = await asyncio.wait_for(result, self.form_choices_timeout)
            return parse_choices(result)
        except Exception:
            self.log.exception(
                "Loading the choices of form field %s for %s failed", field.name, self._log_name
            )
            return None

    def form_user_groups(self) -> set[str]:
        """Return the names of the user's groups that select ``groups`` overrides of form fields.

        These are the user's JupyterHub groups, and with ``form_os_groups``
        their OS groups. Called by every hook that validates or renders.
        """
        user = getattr(self, "user", None)
        names = {group.name for group in getattr(user, "groups", None) or []}
        if self.form_os_groups and user is not None:
            # NOTE: this lookup runs in the hub's event loop. It is fast with
            # /etc/group but can block where groups come from LDAP without a cache.
            names |= os_group_names(user.name)
        return names

    def effective_form_fields(self) -> list[FormField]:
        """Return the declared fields as this spawner's user sees them, group overrides applied."""
        if not any(field.groups for field in self.form_fields):
            return list(self.form_fields)
        groups = self.form_user_groups()
        return [field.for_groups(groups) for field in self.form_fields]

    def _choices_for(self, field: FormField, values: Optional[Mapping[str, Any]] = None) -> Optional[list[Choice]]:
        """Return the choices of ``field``, which for a dependent field are those for the other field's value in ``values``."""
        if field.type != "choice":
            return None
        if isinstance(field.choices, dict):
            return field.choices.get((values or {}).get(field.depends_on), [])
        if not callable(field.choices):
            return field.choices
        if field.name not in self._loaded_choices:
            raise RuntimeError(
                f"choices of form field {field.name!r} are not loaded: await load_choices() first"
            )
        return self._loaded_choices[field.name]

    def validate_form_values(self, raw: Any) -> dict[str, Any]:
        """Return every field's value validated and typed, defaults filled in.

        ``raw`` maps field names to values: JSON types from the REST API, or
        strings from a form or query. Raises :class:`FormValidationError` for
        keys that name no field and for values that break a field's rules.
        Fields with callable choices need a prior ``await load_choices()``.
        """
        if not isinstance(raw, Mapping):
            rule = f"must be an object of field names and values, not {json_type_name(raw)}"
            raise FormValidationError({"options": rule}, {"options": "Options"})

        fields = self.effective_form_fields()
        values = {}
        errors = {}
        labels = {}
        for field in fields:
            if field.depends_on in errors:
                # The other field's message is enough: this one's choices are unknown.
                continue
            try:
                values[field.name] = self._check_field(field, raw.get(field.name), values)
            except FieldError as error:
                errors[field.name] = str(error)
                labels[field.name] = field.label

        known = ", ".join(field.name for field in fields if not field.hidden) or "none"
        field_names = {field.name for field in fields}
        for key in raw:
            if key in field_names:
                continue
            name = short_repr(key)
            errors[name] = f"is not an option of this form (options: {known})"
            labels[name] = name

        if errors:
            raise FormValidationError(errors, labels)
        return values

    def _check_field(self, field: FormField, value: Any, values: Mapping[str, Any]) -> Any:
        choices = self._choices_for(field, values)
        if field.depends_on is not None and not choices and value is not None:
            parent = values.get(field.depends_on)
            raise FieldError(f"has no choices when {field.depends_on} is {short_repr(parent)}")

        checked = field.check(value, choices)
        if field.hidden and value is not None and checked != field.default_for(choices):
            # A hidden field keeps its default, because the user's groups cannot set it.
            raise FieldError("is not available to your groups, so it must be left out")
        return checked

    async def validate_form_data(self, form_data: Any) -> dict[str, Any]:
        """Validate a submitted options form. This is the default ``options_from_form``.

        Form data arrives as a dict of lists of strings. A checkbox missing
        from it is unchecked. On success the typed values are returned. On
        failure the values and rules are kept for the next render of the form
        and ``HTTPError(400)`` is raised with every problem in its message.
        """
        raw = _unpack_form_data(form_data)
        if isinstance(raw, dict):
            # Tornado accepts the XSRF token as a form field, and JupyterHub
            # passes every field on, so a script that posts it is not wrong.
            raw.pop("_xsrf", None)
            for field in self.effective_form_fields():
                if field.type == "checkbox" and not field.hidden:
                    raw.setdefault(field.name, False)
        return await self._validate_submission(raw)

    async def options_from_query(self, query_data: Any) -> dict[str, Any]:
        """Validate ``?opt-NAME=value`` query arguments of the spawn page.

        JupyterHub 6.1 passes a dict of lists of strings, and its docstring
        promises a dict of strings, so both are accepted. A missing key takes
        the field's default, including for checkboxes. Fails as
        :meth:`validate_form_data` does.
        """
        return await self._validate_submission(_unpack_form_data(query_data))

    async def _validate_submission(self, raw: Any) -> dict[str, Any]:
        await self.load_choices()
        try:
            values = self.validate_form_values(raw)
        except FormValidationError as error:
            # NOTE: JupyterHub 6.1 re-renders a rejected form POST with
            # user.spawner, the default server's spawner. For a named server
            # the page shows the error message above the form, but not this
            # draft, which waits for the named server's next form instead.
            self._form_draft = (self._draft_values(raw), error.errors)
            raise _bad_request(error) from None

        self._form_draft = None
        return values

    def _draft_values(self, raw: Any) -> dict[str, Any]:
        if not isinstance(raw, Mapping):
            return {}
        draft = {}
        for field in self.effective_form_fields():
            value = raw.get(field.name)
            if isinstance(value, str):
                draft[field.name] = value[:_MAX_DRAFT_CHARACTERS]
            elif isinstance(value, (bool, int, float)):
                draft[field.name] = value
        return draft

    async def apply_form_options(self, user_options: Any) -> None:
        """Validate ``user_options`` and store the typed values. This is the default ``apply_user_options``.

        JupyterHub calls this before ``start()`` for every spawn, from the
        form, a query or the REST API. An empty dict means every default.
        Raises ``HTTPError(400)`` naming each bad field and its rule. On
        success it sets :attr:`form_values` and replaces ``user_options``,
        also in the database, with the typed values, so that the next form
        is filled from valid values.
        """
        if _non_object_rest_body(getattr(self, "handler", None)):
            rule = 'must be a JSON object, such as {"user_options": {}}'
            raise _bad_request(FormValidationError({"body": rule}, {"body": "Request body"}))

        await self.load_choices()
        try:
            values = self.validate_form_values(user_options)
        except FormValidationError as error:
            self._restore_stored_options()
            raise _bad_request(error) from None

        self.form_values = dict(values)
        self._set_user_options(values)
        if self.orm_spawner is not None:
            self.orm_spawner.user_options = dict(values)
        self._form_draft = None

    @observe("user_options")
    def _remember_previous_options(self, change: Any) -> None:
        # JupyterHub stores requested options in the database before they are
        # validated, then sets them here: keep the ones they replace.
        if not self._setting_options and isinstance(change.old, dict):
            self._previous_options = dict(change.old)

    def _set_user_options(self, values: dict) -> None:
        self._setting_options = True
        try:
            self.user_options = dict(values)
        finally:
            self._setting_options = False

    def _restore_stored_options(self) -> None:
        """Put the options from before a rejected request back, in the database too."""
        previous = self._previous_options or {}
        self._set_user_options(previous)
        if self.orm_spawner is not None:
            self.orm_spawner.user_options = dict(previous)

    async def render_options_form(self) -> str:
        """Render the form HTML, or return "" (no form) when no fields are declared.

        Each field shows its value from the last stored ``user_options``
        where that value is still valid, else its default. After a rejected
        form or query, this one render shows the values the user sent
        instead, and the rule under each bad field.
        """
        if not self.form_fields:
            return ""

        await self.load_choices()
        values = self._stored_values()
        errors = {}
        draft, self._form_draft = self._form_draft, None
        if draft is not None:
            # A query may name only some fields, and the rest keep their values.
            draft_values, errors = draft
            values.update(draft_values)

        fields = [
            self._field_view(field, values, errors.get(field.name))
            for field in self.effective_form_fields()
            if not field.hidden
        ]
        return _form_template().render(fields=fields)

    def _dependent_choices_view(self, field: FormField, values: Mapping[str, Any]) -> dict[str, Any]:
        """Group every list of a dependent field's choices under the other field's value.

        Without JavaScript the user sees all groups, and the server rejects a
        choice from the wrong group. The form's script shows only the group of
        the other field's current value.
        """
        parent = next(other for other in self.form_fields if other.name == field.depends_on)
        parent_labels = {choice.value: choice.label for choice in self._choices_for(parent) or []}
        parent_value = values.get(field.depends_on)
        value = values.get(field.name)

        groups = []
        for key, choices in field.choices.items():
            options = [
                {
                    "value": choice.value,
                    "label": choice.label,
                    "description": choice.description,
                    "selected": key == parent_value and choice.value == value,
                }
                for choice in choices
            ]
            groups.append({"value": key, "label": parent_labels.get(key, key), "options": options})
        return {"option_groups": groups, "depends_on_id": f"cylc-hub-option-{field.depends_on}"}

    def _stored_values(self) -> dict[str, Any]:
        stored = getattr(self.orm_spawner, "user_options", None)
        if not isinstance(stored, Mapping):
            stored = {}

        values = {}
        for field in self.effective_form_fields():
            field_choices = self._choices_for(field, values)
            try:
                values[field.name] = field.check(stored.get(field.name), field_choices)
            except FieldError as error:
                if field.name in stored:
                    # Expected after the site changes a field, so not a warning.
                    self.log.debug(
                        "Stored option %s of %s is no longer valid (%s), showing the default",
                        field.name,
                        self._log_name,
                        error,
                    )
                values[field.name] = field.default_for(field_choices)
        return values

    def _field_view(
        self,
        field: FormField,
        values: Mapping[str, Any],
        error: Optional[str],
    ) -> dict[str, Any]:
        """Collect what the template needs to show one field, given the values shown in every field."""
        value = values.get(field.name)
        element_id = f"cylc-hub-option-{field.name}"
        view = {
            "type": field.type,
            "name": field.name,
            "id": element_id,
            "label": field.label,
            "help": field.help,
            "help_id": f"{element_id}-help",
            "error": error,
            "error_id": f"{element_id}-error",
            "required": field.required,
            "text": _text_for_input(value),
        }

        if field.type == "choice" and field.depends_on is not None:
            view.update(self._dependent_choices_view(field, values))
        elif field.type == "choice":
            field_choices = self._choices_for(field)
            if field_choices is None and error is None:
                error = "The choices could not be loaded. Reload the page, or ask the site administrator."
                view["error"] = error
            view["options"] = [
                {
                    "value": choice.value,
                    "label": choice.label,
                    "description": choice.description,
                    "selected": choice.value == value,
                }
                for choice in field_choices or []
            ]
        elif field.type == "checkbox":
            try:
                view["checked"] = bool(field.check(value))
            except FieldError:
                view["checked"] = False
        elif field.type == "text":
            view["max_length"] = field.effective_max_length
        elif field.type in ("duration", "memory"):
            # Stored values are ints of seconds or MiB, shown with units; a draft stays as typed.
            if isinstance(value, int) and not isinstance(value, bool):
                view["text"] = field.format_value(value)
            view["placeholder"] = "e.g. 1h30m or 2:00:00" if field.type == "duration" else "e.g. 4G or 512M"
        else:
            view["min"] = field.min
            view["max"] = field.max
            view["step"] = field.step
            if field.step is None:
                view["step"] = 1 if field.type == "integer" else "any"

        described_by = [view["error_id"]] if error else []
        if field.help:
            described_by.append(view["help_id"])
        view["described_by"] = " ".join(described_by)
        return view
