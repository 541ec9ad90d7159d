"""YAML that remembers where each value was written, so every problem names its line and column.

ruamel.yaml's round-trip loader keeps the position of every mapping key, value and sequence item.
`load_yaml` returns the plain data (dicts, lists, scalars: what pydantic validates) alongside a
`Locator` that turns a path such as ("nodes", 2, "bmc", "address") back into a (line, column).

Aliases are shared nodes in the parsed document but copies in the plain data: a few lines of nested
aliases (the "billion laughs") expand to billions of values. The expansion is counted and refused
past `MAX_VALUES`, long before it costs a second; so is nesting past 100 levels (and a recursive alias).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

PathPart = str | int
MAX_VALUES = 100_000  # values in the plain data, aliases expanded: a 500-node inventory has ~20 000


class YamlSyntaxError(Exception):
    def __init__(self, line: int, column: int, message: str):
        self.line = line
        self.column = column
        self.message = message
        super().__init__(f"{line}:{column}: {message}")


@dataclass(frozen=True)
class Locator:
    """Positions (1-based line and column) of the values in one YAML document."""

    root: Any

    def position(self, path: Sequence[PathPart], *, key: bool = False) -> tuple[int, int]:
        """Where the value at `path` was written; with key=True, where its key was written.

        A path that leaves the document (a missing key) stops at the deepest node that exists.
        """
        node, where = self.root, (1, 1)
        if isinstance(node, CommentedMap | CommentedSeq):
            where = (node.lc.line + 1, node.lc.col + 1)
        for depth, part in enumerate(path):
            last = depth == len(path) - 1
            if isinstance(node, CommentedMap) and _has_key(node, part):
                line, col = node.lc.key(part) if (key and last) else node.lc.value(part)
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
                line, col = node.lc.item(part)
                node = node[part]
            else:
                break
            where = (line + 1, col + 1)
        return where


def _has_key(node: CommentedMap, part: PathPart) -> bool:
    try:
        return part in node
    except TypeError:
        return False


def load_yaml(text: str) -> tuple[Any, Locator]:
    """Parse one YAML document; raise YamlSyntaxError with its position on any syntax error."""
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        root = yaml.load(text)
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = " ".join(str(part) for part in (err.context, err.problem) if part)
        raise YamlSyntaxError(line, col, problem.replace("\n", " ") or "not valid YAML") from None
    except (YAMLError, ValueError, RecursionError) as err:
        raise YamlSyntaxError(1, 1, str(err).splitlines()[0] if str(err) else type(err).__name__) from None
    return _plain(root), Locator(root)


def _plain(root: Any) -> Any:
    """The data without ruamel's wrapper types; keys become strings, as YAML authors mean them."""
    budget = [MAX_VALUES]

    def plain(node: Any, depth: int) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise YamlSyntaxError(1, 1, f"more than {MAX_VALUES} values once aliases (*name) are expanded; "
                                  "write the repeated parts out, or use fewer nested aliases")
        if depth > 100:
            raise YamlSyntaxError(1, 1, "nested more than 100 levels deep (or an alias refers to itself)")
        if isinstance(node, dict):
            return {_key(k): plain(v, depth + 1) for k, v in node.items()}
        if isinstance(node, list):
            return [plain(v, depth + 1) for v in node]
        if isinstance(node, bool | type(None)):
            return node
        for kind in (int, float, str):
            if isinstance(node, kind):
                return kind(node)
        return str(node)  # dates and other YAML scalars: as written

    return plain(root, 0)


def _key(key: Any) -> Any:
    return key if isinstance(key, str) else str(key)
