"""`pvcctl validate` and `pvcctl inventory`: check an inventory, print its schema, render pvc-ansible's."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from controller.errors import InventoryError
from inventory.load import check_inventory
from inventory.schema import json_schema

app = typer.Typer(no_args_is_help=True, help="Work with inventory files.")


def validate(inventory: Path = typer.Argument(..., help="The inventory file (inventory.yml).")) -> None:
    """Check an inventory file and report every problem at once (exit status 2 on any error)."""
    cluster, problems = check_inventory(inventory)
    for problem in problems:
        if problem.warning:
            typer.echo(str(problem), err=True)
    if cluster is None:
        raise InventoryError(problems)
    typer.echo(f"{inventory}: ok: cluster {cluster.name}, {len(cluster.nodes)} nodes "
               f"({len(cluster.coordinators)} coordinators)")


@app.command("schema")
def schema() -> None:
    """Print the inventory's JSON Schema (for editors: yaml-language-server)."""
    typer.echo(json.dumps(json_schema(), indent=2))
