"""`pvcctl validate` and `pvcctl inventory`: check an inventory, print its schema, render pvc-ansible's."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from core.errors import InventoryError
from inventory.load import check_inventory, load_inventory
from inventory.model import Cluster
from inventory.pvc_ansible import load_results, render
from inventory.schema import json_schema
from inventory.state import controller_key

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


@app.command("render")
def render_command(
    inventory: Path = typer.Argument(..., help="The inventory file (inventory.yml)."),
    out: Path = typer.Option(..., "-o", "--output", help="Directory to write pvc-ansible's inventory into."),
    results: Path | None = typer.Option(None, "--results", help="install results JSON from a deploy"),
) -> None:
    """Write the inventory pvc-ansible runs from (hosts, group_vars, files/, ceph link, known_hosts)."""
    cluster = load_inventory(inventory)
    installed = load_results(results, cluster) if results else None
    written = render(cluster, out, controller_key=controller_key(cluster)[1], results=installed)
    typer.echo(f"wrote {len(written)} files to {out}/")
    typer.echo(next_step(cluster, out))


def next_step(cluster: Cluster, out: Path) -> str:
    """The command to run next, as pvc-ansible's README gives it (do_bootstrap only the first time)."""
    return (f"next: cd <your pvc-ansible local repo> && cp -r {out.resolve()}/. . && "
            f"ansible-playbook -i hosts -l {cluster.name} -e do_bootstrap=yes pvc.yml   "
            "(do_bootstrap on the first run only)")
