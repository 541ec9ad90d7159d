"""Which run a command means: the one given with --run, the last run of the inventory's cluster, or
the last run of the only cluster under the working directory's state. Never a pointer shared by
every cluster a user has: a command about one cluster acts on that cluster's runs alone."""

from __future__ import annotations

from pathlib import Path

from controller.journal import JOURNAL_FILE, Journal
from core.errors import UserError
from inventory.load import load_inventory
from inventory.state import cluster_dir

DEFAULT_STATE = Path("runs")  # controller.state_dir's default, relative to where the inventory is


class NoRunError(UserError):
    """There is no run to continue, show or watch."""


def find_run(inventory: Path | None, run: Path | None) -> Path:
    if run is not None:
        if not (run / JOURNAL_FILE).is_file():
            raise NoRunError(f"{run} is not a run directory (no {JOURNAL_FILE} in it); give one under "
                             "<state_dir>/<cluster>/")
        return run
    if inventory is not None:
        cluster = load_inventory(inventory)
        latest = Journal.latest(cluster_dir(cluster))
        if latest is None:
            raise NoRunError(f"{inventory}: cluster {cluster.name} has no run in {cluster_dir(cluster)} yet; "
                             f"start one with pvcctl deploy {inventory}")
        return latest
    state = Path.cwd() / DEFAULT_STATE
    clusters = sorted(d for d in state.glob("*") if Journal.latest(d) is not None) if state.is_dir() else []
    if len(clusters) == 1:
        latest = Journal.latest(clusters[0])
        assert latest is not None
        return latest
    where = (f"clusters {', '.join(c.name for c in clusters)} have runs under ./{DEFAULT_STATE}" if clusters
             else f"./{DEFAULT_STATE} holds no cluster's runs")
    raise NoRunError(f"which run? {where}; give the cluster's inventory, or --run DIR")
