"""`pvcctl deploy`, `retry`, `status` and `watch`: the deploy engine's commands."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import typer

from controller.journal import Journal
from controller.run import DeployOptions, run_deploy
from controller.runs import find_run
from controller.view import summary_table


def deploy(
    inventory: Path = typer.Argument(..., help="the inventory file"),
    only: str = typer.Option("", "--only", help="comma-separated node names to deploy (default: all)"),
    concurrency: int = typer.Option(-1, "--concurrency", help="installs at once (default: the inventory's; 0 = all)"),
    resume: bool = typer.Option(False, "--resume", help="continue the last run of this cluster"),
    partial: bool = typer.Option(False, "--partial", help="write the inventory for the nodes that finished"),
    as_json: bool = typer.Option(False, "--json", help="print every event as a JSON line"),
    reinstall: bool = typer.Option(False, "--reinstall",
                                   help="also wipe and install nodes that an earlier run installed"),
    inspect: bool = typer.Option(False, "--inspect",
                                 help="boot each node's live system, show its hardware, the disk it would wipe and "
                                      "PVC's requirements, then power it off: nothing is written"),
    yes: bool = typer.Option(False, "--yes", "-y", help="confirm the wipe of every chosen disk without asking"),
) -> None:
    """Install every node of INVENTORY at once; write the pvc-ansible inventory when all are done."""
    nodes = tuple(n.strip() for n in only.split(",") if n.strip())
    options = DeployOptions(inventory, nodes, concurrency, resume, partial, as_json, reinstall=reinstall,
                            inspect=inspect, yes=yes)
    code = asyncio.run(run_deploy(options))
    raise typer.Exit(code)


def retry(
    nodes: list[str] = typer.Argument(..., help="the nodes to start over"),
    inventory: Path | None = typer.Option(None, "--inventory", "-i", help="the cluster's inventory: its last run"),
    run: Path | None = typer.Option(None, "--run", help="the run directory"),
    reinstall: bool = typer.Option(False, "--reinstall", help="also wipe and install nodes that are done"),
    partial: bool = typer.Option(False, "--partial", help="write the inventory for the nodes that finished"),
    as_json: bool = typer.Option(False, "--json", help="print every event as a JSON line"),
) -> None:
    """Start NODES over in the cluster's last run (after fixing what failed); the others keep their state."""
    run_dir = find_run(inventory, run)
    journal = Journal(run_dir)
    source = Path(journal.meta()["inventory"])
    journal.close()
    options = DeployOptions(source, tuple(nodes), -1, True, partial, as_json, retry=True, reinstall=reinstall,
                            run_dir=run_dir)
    raise typer.Exit(asyncio.run(run_deploy(options)))


def status(
    inventory: Path | None = typer.Argument(None, help="the cluster's inventory (default: the only cluster in ./runs)"),
    run: Path | None = typer.Option(None, "--run", help="the run directory (default: the cluster's last run)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Each node's state in the cluster's last run, from its journal."""
    from rich.console import Console

    run_dir = find_run(inventory, run)
    journal = Journal(run_dir)
    rows = []
    for name, record in sorted(journal.nodes().items()):
        seconds = {p: s for a, p, s in journal.steps(name) if a == record.attempt}
        rows.append({"node": name, "state": record.state.value, "attempt": record.attempt,
                     "phase": record.phase, "error": record.error, "log": record.log, "phase_seconds": seconds})
    cluster = journal.meta().get("cluster", "")
    if as_json:
        typer.echo(json.dumps({"cluster": cluster, "run_dir": str(run_dir), "nodes": rows}))
    else:
        Console().print(summary_table(cluster, rows))
        typer.echo(f"run directory: {run_dir}")


def watch(
    inventory: Path | None = typer.Argument(None, help="the cluster's inventory (default: the only cluster in ./runs)"),
    run: Path | None = typer.Option(None, "--run", help="the run directory (default: the cluster's last run)"),
    interval: float = typer.Option(1.0, "--interval", help="seconds between looks"),
) -> None:
    """Print the cluster's last run's events as they are journalled, until Ctrl-C."""
    journal = Journal(find_run(inventory, run))
    last = 0
    try:
        while True:
            for event_id, event in journal.events(last):
                last = event_id
                stamp = time.strftime("%H:%M:%S", time.localtime(event["time"]))
                what = event["state"] or event["kind"]
                typer.echo(f"{stamp} {event['node'] or '-'} [{event['phase'] or '-'}] {what}: {event['message']}")
            time.sleep(interval)
    except KeyboardInterrupt:
        pass


def register(app: typer.Typer) -> None:
    """Add the deploy engine's commands to the top-level app."""
    app.command("deploy")(deploy)
    app.command("retry")(retry)
    app.command("status")(status)
    app.command("watch")(watch)
