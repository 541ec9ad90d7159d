"""`pvcctl validate` and `pvcctl inventory`: check an inventory, print its schema, render pvc-ansible's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from core.errors import InventoryError, UserError
from inventory.completion import complete_nodes
from inventory.load import check_inventory, load_inventory
from inventory.model import Cluster
from inventory.pvc_ansible import load_results, next_step, render
from inventory.schema import json_schema
from inventory.secrets import load_or_generate
from inventory.state import ClusterState, InstallResult, cluster_dir, controller_key

app = typer.Typer(no_args_is_help=True, help="Check, render and describe inventory files.")

INVENTORY_HELP = "The inventory file (inventory.yml)."


def validate(inventory: Path = typer.Argument(..., metavar="INVENTORY", help=INVENTORY_HELP)) -> Cluster:
    """Check an inventory file: every problem at once, exit status 2 on any error; writes nothing."""
    cluster, problems = check_inventory(inventory)
    for problem in problems:
        if problem.warning:
            typer.echo(str(problem), err=True)
    if cluster is None:
        raise InventoryError(problems)
    typer.echo(f"{inventory}: ok: cluster {cluster.name}, {len(cluster.nodes)} nodes "
               f"({len(cluster.coordinators)} coordinators)")
    return cluster


@app.command("schema", epilog="Example:\n\n  pvcctl inventory schema > inventory.schema.json")
def schema() -> None:
    """Print the inventory's JSON Schema, for editors (yaml-language-server)."""
    typer.echo(json.dumps(json_schema(), indent=2))


class PreviewState(ClusterState):
    """The state of a cluster no deploy has made yet, kept nowhere: a render of such a cluster writes
    only where it is told (-o). Its secrets are the ones that output already has (so rendering into the
    same directory again gives the same bytes), the others made anew; there is no controller key yet
    (unless the inventory names one), and install results given with --results count for this render only."""

    def __init__(self, cluster: Cluster):
        super().__init__(cluster_dir(cluster), cluster)
        self._installed: dict[str, InstallResult] = {}

    def installed(self) -> dict[str, InstallResult]:
        return dict(self._installed)

    def record_install(self, node: str, result: InstallResult) -> None:
        self._installed[node] = result

    def forget(self, node: str) -> None:
        self._installed.pop(node, None)

    def controller_key(self) -> tuple[Path, str]:
        if self.cluster.controller.ssh_key is not None:
            return controller_key(self.cluster)
        return cluster_dir(self.cluster) / "controller_ed25519", ""  # made by the first deploy

    def secrets(self, adopt: Path | None = None) -> dict[str, Any]:
        return load_or_generate(adopt, only_generated=True)

    def check_secrets(self) -> None:
        pass


def state_for_render(cluster: Cluster) -> ClusterState:
    """The cluster's state when a deploy (or an ISO build) has made it, else a PreviewState: neither
    `render` nor `validate` makes a state directory beside an inventory that may not be ours to write."""
    directory = cluster_dir(cluster)
    return ClusterState(directory, cluster) if directory.is_dir() else PreviewState(cluster)


RENDER_HELP = (
    "Render the inventory pvc-ansible runs from, for every node the cluster has installed.\n\n"
    "It writes hosts, group_vars, files/, the ceph link and known_hosts into DIR, and nothing else. "
    "The secrets are the cluster's own once a deploy has run (kept in its state directory); before "
    "that, the ones DIR already has."
)


@app.command("render", help=RENDER_HELP,
             epilog="Example:\n\n  pvcctl inventory render examples/cluster.yml -o out/cluster1")
def render_command(
    inventory: Path = typer.Argument(..., metavar="INVENTORY", help=INVENTORY_HELP),
    out: Path = typer.Option(..., "-o", "--output", metavar="DIR",
                             help="Directory to write pvc-ansible's inventory into."),
    results: Path | None = typer.Option(None, "--results", metavar="FILE", help="Install results JSON from a deploy."),
) -> None:
    cluster = load_inventory(inventory)
    finished = load_results(results, cluster) if results else None
    state = state_for_render(cluster)
    report = render(cluster, out, finished=finished, state=state)
    for warning in report.warnings:
        typer.echo(f"pvcctl: warning: {warning}", err=True)
    if isinstance(state, PreviewState):
        typer.echo(f"pvcctl: note: cluster {cluster.name} has no state yet (no deploy): its secrets are kept in "
                   f"{out}/group_vars/{cluster.name}/secrets.yml only, and the controller's key is added by deploy",
                   err=True)
    typer.echo(f"wrote {len(report.files)} files to {out}/ ({len(report.nodes)} nodes: {', '.join(report.nodes)})")
    typer.echo(next_step(cluster, report))


@app.command("forget", epilog="Example:\n\n  pvcctl inventory forget cluster.yml hv4")
def forget_command(
    inventory: Path = typer.Argument(..., metavar="INVENTORY", help=INVENTORY_HELP),
    nodes: list[str] = typer.Argument(..., metavar="NODE...", help="Nodes taken out of the cluster.",
                                      autocompletion=complete_nodes),
) -> None:
    """Forget nodes taken out of the cluster: drop their install results from its state."""
    cluster = load_inventory(inventory)
    state = ClusterState.open(cluster)
    installed = state.installed()
    for node in nodes:
        if node not in installed:
            raise UserError(f"{node} is not an installed node of cluster {cluster.name}; nothing to forget")
    for node in nodes:
        state.forget(node)
    typer.echo(f"forgot {', '.join(nodes)} in {state.directory}")
