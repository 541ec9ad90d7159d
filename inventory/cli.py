"""`pvcctl validate` and `pvcctl inventory`: check an inventory, print its schema, render pvc-ansible's."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, help="Work with inventory files.")


def validate(inventory: Path = typer.Argument(..., help="The inventory file (inventory.yml).")) -> None:
    """Check an inventory file and report every problem at once."""
    raise NotImplementedError
