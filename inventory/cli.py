"""`pvcctl validate` and `pvcctl inventory`: check an inventory, print its schema, render pvc-ansible's."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from core.errors import InventoryError, UserError
from inventory.load import check_inventory, load_inventory
from inventory.model import Cluster
from inventory.pvc_ansible import load_results, next_step, render
from inventory.schema import json_schema
from inventory.state import ClusterState

app = typer.Typer(no_args_is_help=True, help="Work with inventory files.")


def validate(inventory: Path = typer.Argument(..., help="The inventory file (inventory.yml).")) -> Cluster:
    """Check an inventory file and report every problem at once (exit status 2 on any error)."""
    cluster, problems = check_inventory(inventory)
    for problem in problems:
        if problem.warning:
            typer.echo(str(problem), err=True)
    if cluster is None:
        raise InventoryError(problems)
    typer.echo(f"{inventory}: ok: cluster {cluster.name}, {len(cluster.nodes)} nodes "
               f"({len(cluster.coordinators)} coordinators)")
    return cluster


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
    """Write the inventory pvc-ansible runs from (hosts, group_vars, files/, ceph link, known_hosts) for
    every node the cluster has installed; writes only to -o and the cluster's state directory."""
    cluster = load_inventory(inventory)
    finished = load_results(results, cluster) if results else None
    report = render(cluster, out, finished=finished)
    for warning in report.warnings:
        typer.echo(f"pvcctl: warning: {warning}", err=True)
    typer.echo(f"wrote {len(report.files)} files to {out}/ ({len(report.nodes)} nodes: {', '.join(report.nodes)})")
    typer.echo(next_step(cluster, report))


@app.command("forget")
def forget_command(
    inventory: Path = typer.Argument(..., help="The inventory file (inventory.yml)."),
    nodes: list[str] = typer.Argument(..., help="Nodes taken out of the cluster."),
) -> None:
    """Drop nodes' install results from the cluster's state (nodes removed from the cluster)."""
    cluster = load_inventory(inventory)
    state = ClusterState.open(cluster)
    installed = state.installed()
    for node in nodes:
        if node not in installed:
            raise UserError(f"{node} is not an installed node of cluster {cluster.name}; nothing to forget")
    for node in nodes:
        state.forget(node)
    typer.echo(f"forgot {', '.join(nodes)} in {state.directory}")
