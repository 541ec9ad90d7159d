"""The errors pvcctl raises, and what the command line makes of them.

    PvcctlError                 anything pvcctl reports to a person (never a traceback)
    ├── UserError               bad input: the command line exits with status 2
    │   └── InventoryError      one or more problems in an inventory file, each with file:line:col
    └── OperationError          something outside failed (a BMC, a node, a build): exit status 1
                                carries the node and phase it happened in, and what to do

Subsystems derive their own errors from these two branches, so the command line needs to know
only this tree to turn any failure into a clear message and an exit status.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class PvcctlError(Exception):
    """A failure pvcctl explains in words; `exit_status` is what the command line returns."""

    exit_status = 1

    def report(self) -> str:
        """What the command line prints: one line (or one line per located problem)."""
        return f"pvcctl: {self}"


class UserError(PvcctlError):
    """The user's input is wrong; nothing was touched."""

    exit_status = 2


@dataclass(frozen=True)
class Problem:
    """One thing wrong in an input file, located to its line and column (1-based)."""

    file: str
    line: int
    column: int
    path: str
    message: str
    warning: bool = False

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        kind = "warning: " if self.warning else ""
        field = f"{self.path}: " if self.path else ""
        return f"{where}: {kind}{field}{self.message}"


class InventoryError(UserError):
    """An inventory with errors: `problems` lists every one of them (warnings too)."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        errors = [p for p in self.problems if not p.warning]
        super().__init__("\n".join(str(p) for p in errors) or "inventory has errors")

    def report(self) -> str:
        return str(self)  # FILE:LINE:COL: lines speak for themselves


class OperationError(PvcctlError):
    """Something outside pvcctl failed while it acted on `node` in `phase`."""

    def __init__(self, message: str, *, node: str = "", phase: str = "", hint: str = ""):
        self.node = node
        self.phase = phase
        self.hint = hint
        super().__init__(message)

    def __str__(self) -> str:
        where = ": ".join(part for part in (self.node, self.phase) if part)
        text = f"{where}: {self.args[0]}" if where else str(self.args[0])
        return f"{text} ({self.hint})" if self.hint else text
