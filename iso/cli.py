"""`pvcctl iso`: build the live installer ISO."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Build the live installer ISO.")
