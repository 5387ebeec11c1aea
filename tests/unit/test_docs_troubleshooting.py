"""Every user-facing message of cylc-hub has an entry in docs/troubleshooting.md.

The messages are collected from the source by AST, so a new message without
an entry fails ``test_every_message_documented``. A message counts as
user-facing when it is:

- the text shown to the user of a spawn failure: the second argument of
  ``SSHSpawnError``, ``BatchSpawnError`` and ``CommandError``;
- the message of a tornado ``HTTPError`` (second argument), or the reason of
  the batch port handler's ``_reject``;
- a rule shown under a form field (``FieldError``, ``_rule_error``);
- an error in a form declaration, a policy, a grant or a conversion that an
  administrator or owner reads. These are ``TraitError``, ``ValueError``,
  ``GrantError``, ``GrantStoreError``, ``ConversionError``,
  ``ArgumentTypeError``, ``SystemExit`` and ``UIAuthorizationError``, and
  the reason of the policy loader's ``report`` and ``PolicyIssue``;
- a log line at level error or critical.

Each message becomes a pattern: its literal text, with ``.+`` where the code
inserts a value. The page documents a message when one of its units (a fenced
block, a table row or a line) matches the pattern, so the page shows values
as placeholders such as ``HOST`` and keeps the literal text word for word.
In the other direction, every line of a fenced block must be a message that
the code still has, so a reworded or removed message leaves no stale entry.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "cylc_hub"
PAGE = ROOT / "docs" / "troubleshooting.md"

# Callable name -> position of the argument that contains the user-facing message.
MESSAGE_ARGUMENT = {
    "SSHSpawnError": 1,
    "BatchSpawnError": 1,
    "CommandError": 1,
    "HTTPError": 1,
    "_reject": 1,
    "FieldError": 0,
    "_rule_error": 0,
    "TraitError": 0,
    "ValueError": 0,
    "GrantError": 0,
    "GrantStoreError": 0,
    "ConversionError": 0,
    "ArgumentTypeError": 0,
    "SystemExit": 0,
    "PolicyIssue": 2,
    "UIAuthorizationError": 0,
}

# Method calls whose argument contains a message, by the module that defines them.
REPORT_METHODS = {"cylc_hub/policy/loader.py": {"report": 1}}

LOG_LEVELS = {"error", "critical", "exception"}

# ValueErrors that never reach a person, by module and function: the caller
# logs them as detail or turns them into a message of its own.
INTERNAL = {
    # A programming error: every caller passes a command.
    ("cylc_hub/spawners/transport/local.py", "_command", "ValueError"),
    # Logged as detail; the user sees "The job was submitted but its id could not be read."
    ("cylc_hub/spawners/slurm.py", "parse_job_id", "ValueError"),
    ("cylc_hub/spawners/pbs.py", "parse_job_id", "ValueError"),
    # Logged as a warning; the spawner then uses the policy file.
    ("cylc_hub/spawners/ui_authorization.py", "_checked_authorization", "ValueError"),
}

# Functions whose returned strings are rules shown under a form field.
RULE_FUNCTIONS = {
    ("cylc_hub/spawners/form_fields.py", "_rule_from_pydantic"),
    ("cylc_hub/spawners/form_fields.py", "range_rule"),
}

# Names that hold a message shown on the form page when a string is assigned
# to them, or to an item of them.
MESSAGE_TARGETS = {"error", "errors", "rule"}

# Shortest literal text a message must have to be checked: a message made of
# values alone, such as f"{where}: {error}", has nothing of its own to document.
MIN_LITERAL_CHARACTERS = 8


@dataclass(frozen=True)
class Message:
    """One message in the source: where it is, its literal parts and its pattern."""

    path: str
    line: int
    parts: tuple[str, ...]

    @property
    def literal_length(self) -> int:
        return sum(len(part.strip()) for part in self.parts if part != PLACEHOLDER)

    def pattern(self) -> re.Pattern[str]:
        pieces = []
        for part in self.parts:
            if part == PLACEHOLDER:
                pieces.append(".+")
            else:
                pieces.append(r"\s*".join(re.escape(word) for word in part.split()) or r"\s*")
        text = r"\s*".join(pieces)
        return re.compile(text)

    def __str__(self) -> str:
        shown = "".join("…" if part == PLACEHOLDER else part for part in self.parts)
        return f"{self.path}:{self.line}: {shown}"


PLACEHOLDER = "\0"


def string_parts(node: ast.AST, assignments: dict[str, list[ast.AST]]) -> list[tuple[str, ...]]:
    """Return the literal parts of every string ``node`` can be, placeholders between them.

    A name is followed to the string assignments of the same function. Any
    other expression is one placeholder.
    """
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [(node.value,)]
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(value.value)
            else:
                parts.append(PLACEHOLDER)
        return [tuple(parts)]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return [
            left + right
            for left in string_parts(node.left, assignments)
            for right in string_parts(node.right, assignments)
        ]
    if isinstance(node, ast.Name) and node.id in assignments:
        found = []
        for value in assignments[node.id]:
            found.extend(string_parts(value, {}))
        return found or [(PLACEHOLDER,)]
    return [(PLACEHOLDER,)]


def callee_name(call: ast.Call) -> str:
    function = call.func
    if isinstance(function, ast.Attribute):
        return function.attr
    if isinstance(function, ast.Name):
        return function.id
    return ""


def log_message_parts(call: ast.Call) -> list[tuple[str, ...]]:
    """Return the parts of a ``log.error("... %s ...", value)`` format string."""
    if not call.args or not isinstance(call.args[0], ast.Constant):
        return []
    text = call.args[0].value
    if not isinstance(text, str):
        return []
    pieces = re.split(r"%[-0-9.]*[sdrif]", text)
    parts: list[str] = []
    for index, piece in enumerate(pieces):
        if index:
            parts.append(PLACEHOLDER)
        parts.append(piece)
    return [tuple(parts)]


def is_log_call(call: ast.Call) -> bool:
    function = call.func
    if not isinstance(function, ast.Attribute) or function.attr not in LOG_LEVELS:
        return False
    receiver = function.value
    if isinstance(receiver, ast.Name):
        return receiver.id in ("log", "logger")
    return isinstance(receiver, ast.Attribute) and receiver.attr == "log"


class MessageCollector(ast.NodeVisitor):
    """Collect the user-facing messages of one module."""

    def __init__(self, path: str):
        self.path = path
        self.messages: list[Message] = []
        self.function = ""
        self.assignments: dict[str, list[ast.AST]] = {}
        self.reports = REPORT_METHODS.get(path, {})
        self.module_constants: dict[str, list[ast.AST]] = {}

    def visit_Module(self, node: ast.Module) -> None:
        for statement in node.body:
            if isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Constant):
                for target in statement.targets:
                    if isinstance(target, ast.Name) and isinstance(statement.value.value, str):
                        self.module_constants[target.id] = [statement.value]
        self.assignments = dict(self.module_constants)
        self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            if isinstance(target, ast.Subscript):
                target = target.value
            if isinstance(target, ast.Name) and target.id in MESSAGE_TARGETS:
                if isinstance(node.value, (ast.Constant, ast.JoinedStr)):
                    self.add(node, string_parts(node.value, {}))
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        outer = (self.function, self.assignments)
        self.function = node.name
        self.assignments = dict(self.module_constants)
        for statement in ast.walk(node):
            if isinstance(statement, ast.Assign):
                for target in statement.targets:
                    if isinstance(target, ast.Name):
                        self.assignments.setdefault(target.id, []).append(statement.value)
        if (self.path, node.name) in RULE_FUNCTIONS:
            for statement in ast.walk(node):
                if isinstance(statement, ast.Return) and statement.value is not None:
                    self.add(statement, string_parts(statement.value, {}))
        self.generic_visit(node)
        self.function, self.assignments = outer

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Call(self, node: ast.Call) -> None:
        name = callee_name(node)
        position = self.reports.get(name, MESSAGE_ARGUMENT.get(name))
        if is_log_call(node):
            self.add(node, log_message_parts(node))
        elif position is not None and len(node.args) > position:
            if (self.path, self.function, name) not in INTERNAL:
                self.add(node, string_parts(node.args[position], self.assignments))
        self.generic_visit(node)

    def add(self, node: ast.AST, variants: list[tuple[str, ...]]) -> None:
        for parts in variants:
            self.messages.append(Message(self.path, node.lineno, parts))


def collect_messages() -> list[Message]:
    """Return every user-facing message in the package with enough literal text to check."""
    messages = []
    for source in sorted(PACKAGE.rglob("*.py")):
        relative = source.relative_to(ROOT).as_posix()
        collector = MessageCollector(relative)
        collector.visit(ast.parse(source.read_text(), relative))
        messages.extend(collector.messages)
    return [message for message in messages if message.literal_length >= MIN_LITERAL_CHARACTERS]


def page_units(text: str) -> list[str]:
    """Split the page into fenced blocks (each one unit) and the lines outside them."""
    units = []
    block: list[str] | None = None
    for line in text.splitlines():
        if line.strip().startswith("```"):
            if block is None:
                block = []
            else:
                units.append(" ".join(block))
                block = None
            continue
        if block is not None:
            block.append(line.strip())
        else:
            units.append(line)
    return units


def undocumented(messages: list[Message], text: str) -> list[Message]:
    units = page_units(text)
    return [
        message
        for message in messages
        if not any(message.pattern().search(unit) for unit in units)
    ]


MESSAGES = collect_messages()


def test_collector_finds_messages_of_each_kind():
    paths = {message.path for message in MESSAGES}

    assert "cylc_hub/spawners/ssh.py" in paths
    assert "cylc_hub/spawners/batch.py" in paths
    assert "cylc_hub/spawners/transport/ssh.py" in paths
    assert "cylc_hub/spawners/form_fields.py" in paths
    assert "cylc_hub/policy/loader.py" in paths
    assert "cylc_hub/services/access/grants.py" in paths
    assert "cylc_hub/services/access/handlers.py" in paths
    assert len(MESSAGES) > 100


def test_collector_follows_assigned_messages():
    # connection_error() picks one of four messages into a variable.
    found = [str(message) for message in MESSAGES if message.path == "cylc_hub/spawners/transport/ssh.py"]

    assert any("host key of" in text and "has changed" in text for text in found)
    assert any("authentication as" in text for text in found)


def test_pattern_needs_literal_text_in_order():
    message = Message("x.py", 1, ("The command ", PLACEHOLDER, " was not found on ", PLACEHOLDER, "."))

    assert message.pattern().search("The command NAME was not found on HOST.")
    assert not message.pattern().search("The command NAME was not found.")
    assert not message.pattern().search("was not found on HOST. The command NAME")


def test_new_message_without_entry_is_reported():
    source = 'raise BatchSpawnError("detail", "The frobnicator is out of tea. Refill it.")\n'
    collector = MessageCollector("cylc_hub/spawners/example.py")
    collector.visit(ast.parse(source))

    assert [str(message) for message in undocumented(collector.messages, PAGE.read_text())] == [
        "cylc_hub/spawners/example.py:1: The frobnicator is out of tea. Refill it."
    ]


def test_message_split_across_block_lines_matches():
    message = Message("x.py", 1, ("Submitting the job timed out. ", PLACEHOLDER, " Try again later."))
    text = "```text\nSubmitting the job timed out. Job 12\nTry again later.\n```\n"

    assert undocumented([message], text) == []


def test_every_message_documented():
    missing = undocumented(MESSAGES, PAGE.read_text())

    assert not missing, "messages without an entry in docs/troubleshooting.md:\n" + "\n".join(
        str(message) for message in missing
    )


def fenced_blocks(text: str) -> list[list[str]]:
    """Return the non-empty lines of each fenced block of the page."""
    blocks = []
    block: list[str] | None = None
    for line in text.splitlines():
        if line.strip().startswith("```"):
            if block is None:
                block = []
            else:
                blocks.append(block)
                block = None
        elif block is not None and line.strip():
            block.append(line.strip())
    return blocks


def stale_lines(messages: list[Message], text: str) -> list[str]:
    """Return the lines of fenced blocks that no message matches in full.

    A message whose literal text has N line breaks, such as a log tail after
    its first line, covers N + 1 consecutive lines of one block.
    """
    stale = []
    for block in fenced_blocks(text):
        covered = set()
        for message in messages:
            pattern = message.pattern()
            lines = 1 + sum(part.count("\n") for part in message.parts if part != PLACEHOLDER)
            for start in range(len(block) - lines + 1):
                if pattern.fullmatch(" ".join(block[start : start + lines])):
                    covered.update(range(start, start + lines))
        stale += [line for index, line in enumerate(block) if index not in covered]
    return stale


def test_stale_entry_is_reported():
    message = Message("x.py", 1, ("The job ", PLACEHOLDER, " ended.\n", PLACEHOLDER))
    text = "```text\nThe job JOBID ended.\nOUTPUT\nThe frobnicator is out of tea.\n```\n"

    assert stale_lines([message], text) == ["The frobnicator is out of tea."]


def test_every_entry_names_a_message():
    stale = stale_lines(MESSAGES, PAGE.read_text())

    assert not stale, "entries in docs/troubleshooting.md that match no message:\n" + "\n".join(stale)


@pytest.mark.parametrize("heading", ["## Spawning", "## The options form", "## The policy file", "## Owners' grants"])
def test_page_has_section(heading):
    assert heading in PAGE.read_text().splitlines()
