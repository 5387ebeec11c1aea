"""Line numbers of tables and keys in TOML text, for error messages.

``tomllib`` returns plain dicts without positions, so the loader scans the
raw text for table headers and ``key =`` lines. The scan tracks strings,
comments and open brackets, so a line inside a multi-line array or string
is never taken for a header or a key.
"""

from __future__ import annotations

import re

HEADER = re.compile(r"\s*(\[\[?)\s*([^\[\]]*?)\s*\]\]?")
KEY = re.compile(r"""\s*("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)\s*[.=]""")

TOP_LEVEL = ("", -1)


def _unquote(name: str) -> str:
    if len(name) >= 2 and name[0] == name[-1] and name[0] in "\"'":
        return name[1:-1]
    return name


class _Scanner:
    """State of the TOML text after each line: bracket depth and open strings."""

    def __init__(self) -> None:
        self.depth = 0
        self.open_string: str | None = None

    @property
    def at_statement_start(self) -> bool:
        return self.depth == 0 and self.open_string is None

    def feed(self, line: str) -> None:
        index = 0
        while index < len(line):
            if self.open_string:
                end = line.find(self.open_string, index)
                if end < 0:
                    return
                index = end + 3
                self.open_string = None
                continue
            index = self._step(line, index)

    def _step(self, line: str, index: int) -> int:
        character = line[index]

        if character == "#":
            return len(line)
        if line.startswith(('"""', "'''"), index):
            self.open_string = line[index:index + 3]
            return index + 3
        if character == '"':
            return self._skip_basic_string(line, index + 1)
        if character == "'":
            end = line.find("'", index + 1)
            return len(line) if end < 0 else end + 1

        if character in "[{":
            self.depth += 1
        elif character in "]}":
            self.depth = max(0, self.depth - 1)
        return index + 1

    @staticmethod
    def _skip_basic_string(line: str, index: int) -> int:
        while index < len(line):
            if line[index] == "\\":
                index += 2
                continue
            if line[index] == '"':
                return index + 1
            index += 1
        return index


class LineIndex:
    """Lines, counted from 1, where tables, ``[[rules]]`` entries and keys start.

    A table is named by its header and its position among headers of the same
    name, so the third ``[[rules]]`` is ``("rules", 2)``, ``[groups]`` is
    ``("groups", -1)``, and keys before any header belong to ``("", -1)``.
    Only the first line of a repeated key is kept.
    """

    def __init__(self, text: str):
        self._tables: dict[tuple[str, int], int] = {}
        self._keys: dict[tuple[tuple[str, int], str], int] = {}
        self._array_counts: dict[str, int] = {}
        self._scan(text)

    def _scan(self, text: str) -> None:
        scanner = _Scanner()
        table = TOP_LEVEL

        for number, line in enumerate(text.splitlines(), start=1):
            if scanner.at_statement_start:
                table = self._read_statement(line, number, table)
            scanner.feed(line)

    def _read_statement(
        self, line: str, number: int, table: tuple[str, int]
    ) -> tuple[str, int]:
        header = HEADER.match(line)
        if header:
            table = self._open_table(header.group(1), header.group(2))
            self._tables.setdefault(table, number)

            # A header such as [groups] also defines a top-level key.
            top_name = _unquote(table[0].split(".", 1)[0])
            self._keys.setdefault((TOP_LEVEL, top_name), number)
            return table

        key = KEY.match(line)
        if key:
            self._keys.setdefault((table, _unquote(key.group(1))), number)
        return table

    def _open_table(self, brackets: str, name: str) -> tuple[str, int]:
        name = ".".join(_unquote(part.strip()) for part in name.split("."))
        if brackets == "[[":
            position = self._array_counts.get(name, 0)
            self._array_counts[name] = position + 1
            return name, position
        return name, -1

    def table_line(self, name: str, position: int = -1) -> int | None:
        """Return the header line of table ``name`` (``position`` for arrays)."""
        return self._tables.get((name, position))

    def key_line(self, table: tuple[str, int], key: str) -> int | None:
        """Return the line where ``key`` is first set in ``table``."""
        return self._keys.get((table, key))

    def top_line(self, key: str) -> int | None:
        """Return the line of a top-level key or of the header that defines it."""
        return self._keys.get((TOP_LEVEL, key))

    def rule_line(self, index: int) -> int | None:
        """Return the header line of the rule at ``index``, counting from 0."""
        return self.table_line("rules", index)

    def rule_key_line(self, index: int, key: str) -> int | None:
        """Return the line of ``key`` in the rule at ``index``, counting from 0."""
        return self.key_line(("rules", index), key)
