"""Shell completion of run directories (`--run DIR`): the runs of the inventory's cluster named on the
line, else every run under ./runs (where a deploy keeps them by default). Never fails."""

from __future__ import annotations

from pathlib import Path

import typer

from controller.journal import JOURNAL_FILE
from controller.runs import DEFAULT_STATE


def _run_roots(inventory: object) -> list[Path]:
    if inventory:
        from inventory.load import load_inventory
        from inventory.state import cluster_dir

        try:
            return [cluster_dir(load_inventory(Path(str(inventory))))]
        except Exception:  # completion never fails
            return []
    return sorted(d for d in DEFAULT_STATE.glob("*") if d.is_dir())


def complete_runs(ctx: typer.Context, incomplete: str) -> list[str]:
    """Run directories (newest first) whose path starts with what is typed so far."""
    runs = [run for root in _run_roots(ctx.params.get("inventory")) for run in root.glob("*")
            if (run / JOURNAL_FILE).is_file()]
    return [str(run) for run in sorted(runs, key=lambda r: r.name, reverse=True) if str(run).startswith(incomplete)]
