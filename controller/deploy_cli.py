"""`pvcctl deploy`, `retry`, `status` and `watch` (and `lab up`): the deploy engine's commands."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the deploy engine's commands to the top-level app."""
