"""`pvcctl deploy`, `retry`, `status`, `watch` and `logs`: the deploy engine's commands."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import typer

from controller import follow
from controller.completion import complete_runs
from controller.journal import Journal
from controller.remote import Controller
from controller.run import DeployOptions, run_deploy
from controller.runs import find_run
from controller.serve import serve
from inventory.completion import complete_node_list, complete_nodes


def deploy(
    inventory: Path = typer.Argument(..., metavar="INVENTORY", help="The inventory file (inventory.yml)."),
    only: str = typer.Option("", "--only", metavar="NODES", show_default=False, autocompletion=complete_node_list,
                             help="Only these nodes, comma-separated (default: every node)."),
    concurrency: int = typer.Option(-1, "--concurrency", metavar="N", show_default=False,
                                    help="Installs at once (default: the inventory's; 0: all)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the cluster's last run."),
    partial: bool = typer.Option(False, "--partial", help="Write the inventory for the nodes that finished."),
    as_json: bool = typer.Option(False, "--json", help="Print every event as a JSON line."),
    reinstall: bool = typer.Option(False, "--reinstall",
                                   help="Also wipe and install nodes that an earlier run installed."),
    inspect: bool = typer.Option(False, "--inspect",
                                 help="Boot each node's live system, show its hardware, the disk it would wipe "
                                      "and PVC's requirements, then power it off: nothing is written."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Confirm the wipe of every chosen disk without asking."),
) -> None:
    """Install every node of the inventory at once, then write the pvc-ansible inventory."""
    nodes = tuple(n.strip() for n in only.split(",") if n.strip())
    options = DeployOptions(inventory, nodes, concurrency, resume, partial, as_json, reinstall=reinstall,
                            inspect=inspect, yes=yes)
    code = asyncio.run(run_deploy(options))
    raise typer.Exit(code)


def retry(
    nodes: list[str] = typer.Argument(..., metavar="NODE...", help="The nodes to start over.",
                                      autocompletion=complete_nodes),
    inventory: Path | None = typer.Option(None, "--inventory", "-i", metavar="FILE",
                                          help="The cluster's inventory: retry in its last run."),
    run: Path | None = typer.Option(None, "--run", metavar="DIR", help="The run directory.",
                                    autocompletion=complete_runs),
    reinstall: bool = typer.Option(False, "--reinstall", help="Also wipe and install nodes that are done."),
    partial: bool = typer.Option(False, "--partial", help="Write the inventory for the nodes that finished."),
    as_json: bool = typer.Option(False, "--json", help="Print every event as a JSON line."),
) -> None:
    """Start nodes over in the cluster's last run, after fixing what failed; the others keep their state.
    While that run's deploy still runs, it is asked through its API and starts them beside the others."""
    run_dir = find_run(inventory, run)
    journal = Journal(run_dir)
    source = Path(journal.meta()["inventory"])
    controller = Controller.of_run(journal)
    journal.close()
    if controller is not None and not reinstall:
        said = asyncio.run(controller.retry(nodes))
        if said is not None:
            for line in said:
                typer.echo(line)
            return
    options = DeployOptions(source, tuple(nodes), -1, True, partial, as_json, retry=True, reinstall=reinstall,
                            run_dir=run_dir)
    raise typer.Exit(asyncio.run(run_deploy(options)))


def status(
    inventory: Path | None = typer.Argument(None, metavar="[INVENTORY]",
                                            help="The cluster's inventory (default: the only cluster in ./runs)."),
    run: Path | None = typer.Option(None, "--run", metavar="DIR", autocompletion=complete_runs,
                                    help="The run directory (default: the cluster's last run)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show each node's state in the cluster's last run, from its journal."""
    journal = Journal(find_run(inventory, run))
    try:
        if as_json:
            meta = journal.meta()
            typer.echo(json.dumps({"cluster": meta.get("cluster", ""), "run_dir": str(journal.run_dir),
                                   "exit_status": follow.ended(journal), "nodes": follow.status_rows(journal)}))
        else:
            follow.print_status(journal, typer.echo)
    finally:
        journal.close()


def watch(
    target: str | None = typer.Argument(None, metavar="[INVENTORY|URL]",
                                        help="The cluster's inventory, or the dashboard URL a deploy printed."),
    run: Path | None = typer.Option(None, "--run", metavar="DIR", autocompletion=complete_runs,
                                    help="The run directory (default: the cluster's last run)."),
    interval: float = typer.Option(1.0, "--interval", metavar="SECONDS", help="Seconds between looks."),
) -> None:
    """Follow a run's events until it ends; exit with the run's exit status."""
    try:
        code = follow.watch(target, run, typer.echo, interval)
    except KeyboardInterrupt:
        code = 130
    raise typer.Exit(code)


def logs(
    node: str = typer.Argument(..., metavar="NODE", autocompletion=complete_nodes, help="The node."),
    inventory: Path | None = typer.Option(None, "--inventory", "-i", metavar="FILE",
                                          help="The cluster's inventory: its last run."),
    run: Path | None = typer.Option(None, "--run", metavar="DIR", autocompletion=complete_runs,
                                    help="The run directory."),
    attempt: int | None = typer.Option(None, "--attempt", metavar="N", help="Which attempt (default: the last)."),
    follow_it: bool = typer.Option(False, "--follow", "-f", help="Keep printing what is written, until the run ends."),
) -> None:
    """Print a node's log (its BMC steps, check-ins and the installer's progress) in the cluster's last run."""
    journal = Journal(find_run(inventory, run))
    try:
        for line in follow.follow_log(journal, follow.log_path(journal, node, attempt), follow_it):
            typer.echo(line)
    except KeyboardInterrupt:
        pass
    finally:
        journal.close()


def register(app: typer.Typer) -> None:
    """Add the deploy engine's commands to the top-level app."""
    app.command("deploy", epilog="Examples:\n\n  pvcctl deploy inventory.yml\n\n"
                                 "  pvcctl deploy inventory.yml --only hv4 --json")(deploy)
    app.command("retry", epilog="Example:\n\n  pvcctl retry hv3 -i inventory.yml")(retry)
    app.command("status", epilog="Example:\n\n  pvcctl status inventory.yml --json")(status)
    app.command("watch", epilog="Examples:\n\n  pvcctl watch inventory.yml\n\n"
                                "  pvcctl watch 'http://10.100.0.5:8740/?token=...'")(watch)
    app.command("logs", epilog="Example:\n\n  pvcctl logs hv3 -i inventory.yml -f")(logs)
    app.command("serve", epilog="Example:\n\n  pvcctl serve inventory.yml --listen 127.0.0.1:8080")(serve)
