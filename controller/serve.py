"""`pvcctl serve`: the deploy's dashboard for a run that has ended, read-only, from its journal.

The same page and routes as the running controller's (controller/server/app.py), on a board rebuilt
by folding the journal's events back through `Board.apply` (so the timeline, attempts and disk are
what the deploy showed). There is no deployment to steer: retry and stop answer 409, and the event
stream gives the snapshot, then keepalives. The token is the run's own (its `token` file).
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from urllib.parse import urlsplit

import typer

from controller.completion import complete_runs
from controller.journal import Journal
from controller.node.events import Board, Event, EventBus, EventKind
from controller.node.states import NodeState
from controller.runs import find_run
from controller.server.api import RunInfo
from controller.server.app import ListenError, Server, build_app
from controller.server.auth import RunToken
from controller.server.checkin import CheckinDesk
from core.errors import UserError

DEFAULT_LISTEN = "127.0.0.1:0"  # when the run does not say where its controller was


def board_from_journal(journal: Journal) -> Board:
    """Every node of the run as its events left it (the run's nodes first, then any other the journal names)."""
    meta_nodes = [n for n in journal.meta().get("nodes", "").split(",") if n]
    events = [event for _, event in journal.events()]
    # the events alone (not journal.nodes(), which decodes every step's result: an old journal's may not fit)
    names = list(dict.fromkeys([*meta_nodes, *(e["node"] for e in events if e["node"])]))
    board = Board(names)
    for row in events:
        board.apply(Event(row["node"], EventKind(row["kind"]), row["message"] or "",
                          NodeState(row["state"]) if row["state"] else None, row["phase"] or "",
                          row["attempt"] or 0, row["data"] or {}, row["time"]))
    return board


def parse_listen(value: str) -> tuple[str, int]:
    """'HOST:PORT' (or '[v6]:PORT') as (host, port); a UserError naming --listen otherwise."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise UserError(f"--listen {value!r}: give HOST:PORT, e.g. 127.0.0.1:8080 (port 0: any free port)")
    return host, int(port)


def _listen_of(journal: Journal) -> str:
    """Where the run's controller listened (its URL in the journal), so the dashboard's address stays the same."""
    url = urlsplit(journal.meta().get("controller", ""))
    if not url.hostname or url.port is None:
        return DEFAULT_LISTEN
    return f"[{url.hostname}]:{url.port}" if ":" in url.hostname else f"{url.hostname}:{url.port}"


async def _serve(run_dir: Path, listen: str) -> None:
    journal = Journal(run_dir)
    try:
        board, cluster = board_from_journal(journal), journal.meta().get("cluster", "")
        host, port = parse_listen(listen or _listen_of(journal))
    finally:
        journal.close()
    bus = EventBus()  # nothing emits: the stream gives the snapshot, then keepalives
    token = RunToken.for_run(run_dir)
    app = build_app(board, bus, CheckinDesk("", bus), RunInfo(cluster, run_dir), None, token, steering=None)
    server = Server(app, host, port)
    try:
        port = await server.start()
    except ListenError:
        raise UserError(f"cannot listen on {host}:{port} (in use, or not an address of this machine; is the "
                        "deploy still running? its own dashboard shows it); give another with --listen HOST:PORT") \
            from None
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"dashboard (read-only): {token.dashboard_url(f'http://{shown}:{port}')}  "
               "(its token reads this run: share it with care)")
    typer.echo("serving until Ctrl-C")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await server.stop()


def serve(
    inventory: Path | None = typer.Argument(None, metavar="[INVENTORY]",
                                            help="The cluster's inventory (default: the only cluster in ./runs)."),
    run: Path | None = typer.Option(None, "--run", metavar="DIR", autocompletion=complete_runs,
                                    help="The run directory (default: the cluster's last run)."),
    listen: str = typer.Option("", "--listen", metavar="HOST:PORT", show_default=False,
                               help="Where to listen (default: where the run's controller listened)."),
) -> None:
    """Serve the deploy's dashboard for a finished run, read-only, from its journal, until Ctrl-C."""
    asyncio.run(_serve(find_run(inventory, run), listen))
