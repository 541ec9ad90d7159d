"""Every help page of pvcctl as a person reads it at 80 columns: no word broken across lines, no
Python type names, a one-line summary and an example for every command."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from pvcctl.cli import app

TYPE_NAMES = re.compile(r"<(bool|str|int|float|path|int range|float range|list\[[^>]*\])>|\{[a-z_]+\}")
BOX = set("╭╮╰╯│─ ")


def commands(command: Any = None, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    command = command or typer.main.get_command(app)
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from commands(sub, (*path, name))


def render(path: tuple[str, ...], width: int) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], prog_name="pvcctl",
                                env={"COLUMNS": str(width), "TERMINAL_WIDTH": str(width)})
    assert result.exit_code == 0, result.output
    return result.output


def words(text: str) -> set[str]:
    return {w for w in text.split() if not set(w) <= BOX}


ALL = [path for path, _ in commands()]


@pytest.mark.parametrize("path", ALL, ids=lambda p: " ".join(p) or "pvcctl")
def test_help_reads_at_80_columns(path: tuple[str, ...]) -> None:
    narrow, wide = render(path, 80), render(path, 400)
    assert max(len(line) for line in narrow.splitlines()) <= 80
    # a word the 80-column page broke in two is not a word of the same page laid out without wrapping
    assert words(narrow) <= words(wide), sorted(words(narrow) - words(wide))
    assert not TYPE_NAMES.search(narrow), TYPE_NAMES.findall(narrow)


def test_every_command_has_a_summary_and_an_example() -> None:
    leaves = [(path, c) for path, c in commands() if not hasattr(c, "commands")]
    assert len(leaves) >= 15
    for path, command in leaves:
        summary = (command.help or "").strip().splitlines()[0]
        assert summary[0].isupper() and summary.endswith("."), (path, summary)
        assert "pvcctl " + " ".join(path) in (command.epilog or ""), (path, "no example in the epilog")
        for param in command.params:
            text = getattr(param, "help", None)
            if text and param.name != "help":
                assert text[0].isupper() and text.endswith((".", ")")), (path, param.name, text)
