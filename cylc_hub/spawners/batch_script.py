"""Render batch job scripts from Jinja2 templates whose every value is checked or quoted.

Templates are site-controlled text; values come from the validated options
form and from the hub. Two filters put a value into a script, and both raise
:class:`ScriptValueError` for a line break or NUL, so no value can add a line:

- ``q`` quotes a value for a POSIX shell with ``shlex.quote``, and ``q_args``
  quotes each item of a list and joins them with spaces.
- ``directive`` passes a value into a scheduler directive (``#SBATCH``,
  ``#PBS``) only if it is made of letters, digits and ``_.:=@/+,%-``, because
  schedulers read directives without a shell and quoting would not help.

``env_name`` accepts an environment variable name and nothing else.
Autoescape is off because the output is a script, not HTML. A value rendered
without one of these filters is a template bug; ``render_job_script``
refuses templates that print a bare variable.
"""

import re
import shlex
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, nodes

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates" / "batch"

DIRECTIVE_VALUE = re.compile(r"[A-Za-z0-9_.:=@/+,%\-]*")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SAFE_FILTERS = {"q", "q_args", "directive", "env_name"}


class ScriptValueError(ValueError):
    """A value cannot go into a job script safely."""


def _text(value):
    text = str(value)
    if any(character in text for character in "\n\r\0"):
        raise ScriptValueError(f"value {text[:40]!r} contains a line break or NUL")
    return text


def quote_shell(value):
    return shlex.quote(_text(value))


def quote_arguments(values):
    return " ".join(quote_shell(value) for value in values)


def directive_value(value):
    text = _text(value)
    if not DIRECTIVE_VALUE.fullmatch(text):
        raise ScriptValueError(
            f"value {text[:40]!r} cannot go into a scheduler directive: "
            "only letters, digits and _.:=@/+,%- are allowed"
        )
    return text


def env_name(value):
    text = _text(value)
    if not ENV_NAME.fullmatch(text):
        raise ScriptValueError(f"{text[:40]!r} is not an environment variable name")
    return text


def _environment(directory):
    environment = Environment(
        loader=FileSystemLoader([str(directory), str(TEMPLATE_DIR)]),
        autoescape=False,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters.update(
        q=quote_shell, q_args=quote_arguments, directive=directive_value, env_name=env_name
    )
    return environment


def _check_outputs(environment, source, name):
    """Raise ``ScriptValueError`` for any ``{{ ... }}`` whose last filter is not a safe one.

    Included templates are checked the same way.
    """
    tree = environment.parse(source)
    for include in tree.find_all(nodes.Include):
        if isinstance(include.template, nodes.Const):
            included, _, _ = environment.loader.get_source(environment, include.template.value)
            _check_outputs(environment, included, include.template.value)
    for output in tree.find_all(nodes.Output):
        for child in output.nodes:
            if isinstance(child, nodes.TemplateData):
                continue
            if not (isinstance(child, nodes.Filter) and child.name in SAFE_FILTERS):
                raise ScriptValueError(
                    f"job template {name} line {child.lineno} prints a value without "
                    "the q, q_args, directive or env_name filter"
                )


def render_job_script(template_path, values):
    """Render the template at ``template_path`` with ``values``; return the script text.

    A relative path is looked up in the package's ``templates/batch``.
    Raises ``ScriptValueError`` when a value is unsafe or the template
    prints a value without a safe filter.
    """
    path = Path(template_path)
    directory = path.parent if path.is_absolute() else TEMPLATE_DIR
    environment = _environment(directory)
    source = (directory / path.name).read_text()
    _check_outputs(environment, source, path.name)
    return environment.from_string(source).render(**values)
