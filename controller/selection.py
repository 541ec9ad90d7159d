"""Which nodes a run takes and where each starts: a fresh run of the inventory's nodes (refusing to
wipe nodes an earlier run installed, unless asked), `--resume` of the cluster's last run, or
`pvcctl retry` of named nodes in a run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from controller.engine import StartPoint
from controller.journal import Journal
from controller.node.states import NodeState, Phase
from core.errors import UserError
from inventory.model import Cluster
from inventory.state import ClusterState, cluster_dir


@dataclass(frozen=True)
class DeployOptions:
    inventory: Path
    only: tuple[str, ...] = ()
    concurrency: int = -1  # -1: the inventory's
    resume: bool = False
    partial: bool = False
    json: bool = False
    retry: bool = False  # `pvcctl retry`: `only` names the nodes to start over
    reinstall: bool = False  # a fresh run may wipe nodes an earlier run installed
    run_dir: Path | None = None
    cluster: Cluster | None = None  # an already resolved cluster (bench/deploy.py's 1000 nodes)
    inspect: bool = False  # inspect only: preflight, media, boot, live, inspect, then power off; nothing written
    yes: bool = False  # the wipe is confirmed: no question asked


class NodeSelectionError(UserError):
    """--only or `retry` names a node the inventory (or the run) does not have."""


def _select(names: list[str], wanted: tuple[str, ...], where: str) -> list[str]:
    unknown = [n for n in wanted if n not in names]
    if unknown:
        raise NodeSelectionError(f"{', '.join(unknown)}: not a node of {where}; its nodes are {', '.join(names)}")
    return [n for n in names if not wanted or n in wanted]


def open_run(cluster: Cluster, opts: DeployOptions) -> tuple[Journal, list[str], dict[str, StartPoint]]:
    """The run's journal, the nodes in the run, and where each node to run starts."""
    all_names = [n.hostname for n in cluster.nodes]
    directory = cluster_dir(cluster)
    if not (opts.resume or opts.retry):
        run_nodes = _select(all_names, opts.only, f"inventory {opts.inventory}")
        if not opts.reinstall and not opts.inspect:  # an inspection wipes nothing
            _refuse_to_reinstall(cluster, run_nodes)
        meta = {"inventory": str(opts.inventory.resolve()), "cluster": cluster.name, "nodes": ",".join(run_nodes),
                "mode": "inspect" if opts.inspect else "deploy"}
        return Journal.create(directory, meta), run_nodes, {n: StartPoint(Phase.PREFLIGHT) for n in run_nodes}
    run_dir = opts.run_dir or Journal.latest(directory)
    if run_dir is None:
        raise NodeSelectionError(f"no earlier run of {cluster.name} in {directory} to resume; "
                                 "start one without --resume")
    journal = Journal(run_dir)
    run_nodes = [n for n in journal.meta().get("nodes", "").split(",") if n in all_names]
    records = journal.nodes()
    chosen = _select(run_nodes, opts.only, f"run {run_dir}")
    if opts.retry:
        inspection = journal.meta().get("mode") == "inspect"  # a finished inspection wiped nothing
        finished = [n for n in chosen if n in records and records[n].state is NodeState.DONE and not inspection]
        if finished and not opts.reinstall:
            journal.close()
            raise ReinstallError(f"{', '.join(finished)}: installed already by run {run_dir}; a retry starts a node "
                                 "over and wipes its disk: add --reinstall to do that, or name the nodes that failed")
        return journal, run_nodes, {n: StartPoint(Phase.PREFLIGHT, records[n].attempt + 1 if n in records else 1)
                                    for n in chosen}
    return journal, run_nodes, {n: StartPoint.resumed(records.get(n)) for n in chosen}


class ReinstallError(UserError):
    """A deploy or a retry would wipe nodes that are installed."""


def _refuse_to_reinstall(cluster: Cluster, names: list[str]) -> None:
    """Nodes the cluster's state records as installed hold a working system: a new run would wipe
    them. Say which, and by which run, unless the user said --reinstall."""
    installed = ClusterState.open(cluster).installed()
    by_run: dict[str, list[str]] = {}
    for name in names:
        if name in installed:
            by_run.setdefault(installed[name].run_id or "an earlier run", []).append(name)
    if by_run:
        runs = "; ".join(f"{', '.join(nodes)} by {cluster_dir(cluster) / run}" for run, nodes in by_run.items())
        raise ReinstallError(f"installed already: {runs}. A new deploy wipes their disks again: add --reinstall "
                             "to do that, pick other nodes with --only, or continue an unfinished run with --resume")
