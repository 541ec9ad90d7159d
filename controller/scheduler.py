"""Deployment: every selected node's job at once, in one task group, with limiters per phase.

Each node's job runs in its own task and never raises (but on cancel), so one node cannot take
the others down. `--concurrency` bounds how many nodes run at all; the limiters bound BMC
operations, ISO transfers and installs. A stop (Ctrl-C) lets no new destructive step start:
jobs in a waiting step are cancelled and journalled as stopped, where `--resume` picks them up.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from rich.console import Console
from rich.live import Live

from controller.bmc.base import Bmc
from controller.bmc.endpoint import BmcEndpoint
from controller.bmc.redfish import BmcTimings, RedfishBmc
from controller.bmc.retry import RetryPolicy
from controller.journal import JOURNAL_FILE, Journal, NodeRecord, last_run_pointer
from controller.live import build_installer_zipapp
from controller.node.events import CURRENT_NODE, Board, Event, EventBus, EventKind, NodeLogHandler
from controller.node.job import JobOutcome, NodeJob
from controller.node.states import NodeState, Phase
from controller.node.steps import Limits, Services
from controller.plans import IsoSource, check_controller_address, plan_for, resolve_iso
from controller.server.api import RunInfo
from controller.server.app import Server, build_app
from controller.server.checkin import CheckinDesk
from controller.server.iso import IsoShare, bmc_addresses
from controller.view import progress_table, summary_table
from core.errors import PvcctlError, UserError
from core.keys import fingerprint
from installer.plan import Plan
from inventory.load import load_inventory
from inventory.model import Cluster, Node
from inventory.pvc_ansible import InstallResult, render
from inventory.state import controller_key


@dataclass(frozen=True)
class StartPoint:
    """Where a node's job begins: fresh, or from the journal of an earlier run."""

    phase: Phase | None  # None: nothing to do (done)
    attempt: int = 1
    results: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def resumed(cls, record: NodeRecord | None) -> StartPoint:
        if record is None:
            return cls(Phase.PREFLIGHT)
        phase = record.resume_phase()
        if phase is None:
            return cls(None, record.attempt, dict(record.steps))
        if phase is Phase.PREFLIGHT:
            # starting over: a new attempt number keeps the earlier attempt's log apart
            return cls(phase, record.attempt + 1)
        return cls(phase, record.attempt, dict(record.steps))


IN_FLIGHT_BMC = frozenset({NodeState.MEDIA, NodeState.BOOT, NodeState.FINALIZE})


class Deployment:
    def __init__(self, nodes: list[Node], services: Services, *, deadlines: dict[str, int], retries: int,
                 concurrency: int = 0):
        self.nodes = nodes
        self.services = services
        self.deadlines = deadlines
        self.retries = retries
        self.gate = asyncio.Semaphore(concurrency if concurrency > 0 else max(1, len(nodes)))
        self.stop_requested = False
        self._tasks: dict[str, asyncio.Task[JobOutcome]] = {}
        self._jobs: dict[str, NodeJob] = {}

    def request_stop(self) -> None:
        """Ctrl-C: no new destructive step starts. A node waiting (for a check-in, an install it follows,
        an SSH login) stops now; a BMC step in flight (media, boot, finalize) finishes first, so the
        machine is left in a state the journal knows. A second Ctrl-C stops those too."""
        again = self.stop_requested
        self.stop_requested = True
        for name, task in self._tasks.items():
            job = self._jobs.get(name)
            if again or job is None or job.state not in IN_FLIGHT_BMC:
                task.cancel()

    async def _one(self, node: Node, start: StartPoint) -> JobOutcome:
        job = NodeJob(node, self.services, deadlines=self.deadlines, retries=self.retries,
                      stopping=lambda: self.stop_requested)
        self._jobs[node.hostname] = job
        CURRENT_NODE.set(node.hostname)  # this task's log records go to this node's log
        async with self.gate:
            assert start.phase is not None
            return await job.run(start.phase, start.attempt, start.results)

    async def run(self, starts: dict[str, StartPoint]) -> dict[str, JobOutcome]:
        outcomes: dict[str, JobOutcome] = {}
        for node in self.nodes:
            start = starts.get(node.hostname, StartPoint(Phase.PREFLIGHT))
            if start.phase is None:
                outcomes[node.hostname] = JobOutcome(NodeState.DONE, start.attempt, start.results)
                continue
            self._tasks[node.hostname] = asyncio.create_task(self._one(node, start), name=node.hostname)
        for name, task in self._tasks.items():
            with contextlib.suppress(asyncio.CancelledError):
                outcomes[name] = await task
            if name not in outcomes:
                outcomes[name] = JobOutcome(NodeState.STOPPED, 0, {}, "interrupted")
        return outcomes


# -- one run, from the inventory to the pvc-ansible inventory ------------------------------------------


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


class NodeSelectionError(UserError):
    """--only or `retry` names a node the inventory (or the run) does not have."""


def _select(names: list[str], wanted: tuple[str, ...], where: str) -> list[str]:
    unknown = [n for n in wanted if n not in names]
    if unknown:
        raise NodeSelectionError(f"{', '.join(unknown)}: not a node of {where}; its nodes are {', '.join(names)}")
    return [n for n in names if not wanted or n in wanted]


def _open_journal(cluster: Cluster, opts: DeployOptions) -> tuple[Journal, list[str], dict[str, StartPoint]]:
    """The run's journal, the nodes in the run, and where each node to run starts."""
    all_names = [n.hostname for n in cluster.nodes]
    cluster_dir = cluster.controller.state_dir / cluster.name
    if not (opts.resume or opts.retry):
        run_nodes = _select(all_names, opts.only, f"inventory {opts.inventory}")
        if not opts.reinstall:
            _refuse_to_reinstall(cluster_dir, run_nodes)
        meta = {"inventory": str(opts.inventory.resolve()), "cluster": cluster.name, "nodes": ",".join(run_nodes)}
        return Journal.create(cluster_dir, meta), run_nodes, {n: StartPoint(Phase.PREFLIGHT) for n in run_nodes}
    run_dir = opts.run_dir or Journal.latest(cluster_dir)
    if run_dir is None:
        raise NodeSelectionError(f"no earlier run of {cluster.name} in {cluster_dir} to resume; "
                                 "start one without --resume")
    journal = Journal(run_dir)
    run_nodes = [n for n in journal.meta().get("nodes", "").split(",") if n in all_names]
    records = journal.nodes()
    chosen = _select(run_nodes, opts.only, f"run {run_dir}")
    if opts.retry:
        return journal, run_nodes, {n: StartPoint(Phase.PREFLIGHT, records[n].attempt + 1 if n in records else 1)
                                    for n in chosen}
    return journal, run_nodes, {n: StartPoint.resumed(records.get(n)) for n in chosen}


class ReinstallError(UserError):
    """A fresh deploy would wipe nodes that an earlier run installed."""


def _refuse_to_reinstall(cluster_dir: Path, names: list[str]) -> None:
    """Nodes whose latest record in an earlier run is `done` hold a working system: a new run would
    wipe them. Say which, and by which run, unless the user said --reinstall."""
    installed: dict[Path, list[str]] = {}
    seen: set[str] = set()
    for path in sorted(cluster_dir.glob(f"*/{JOURNAL_FILE}"), reverse=True):  # newest run first
        journal = Journal(path.parent)
        try:
            records = journal.nodes()
        finally:
            journal.close()
        for name in names:
            if name in seen or name not in records:
                continue
            seen.add(name)
            if records[name].state is NodeState.DONE:
                installed.setdefault(path.parent, []).append(name)
    if installed:
        by_run = "; ".join(f"{', '.join(nodes)} by {run}" for run, nodes in installed.items())
        raise ReinstallError(f"installed already: {by_run}. A new deploy wipes their disks again: add --reinstall "
                             "to do that, pick other nodes with --only, or continue an unfinished run with --resume")


def _board_from(journal: Journal, names: list[str]) -> Board:
    """The board as the journal left it: nodes not run now still show their state."""
    board = Board(names)
    for name, record in journal.nodes().items():
        status = board.nodes.get(name)
        if status is None:
            continue
        status.state, status.attempt, status.error, status.log = (record.state, record.attempt, record.error,
                                                                  record.log)
        status.phase_seconds = {p: round(s, 3) for a, p, s in journal.steps(name) if a == record.attempt}
    return board


def _printer(opts: DeployOptions, *, states: bool) -> Callable[[Event], None]:
    """Every event as a JSON line (--json); else the run's own lines (building the ISO, where the run
    is, check-ins from machines the inventory does not name: often a node whose MAC or serial is
    written wrong) and, unless the live view shows them, each node's state changes."""
    def show(event: Event) -> None:
        if opts.json:
            print(json.dumps(event.as_dict(), default=str), flush=True)
        elif event.kind is EventKind.RUN or (event.kind is EventKind.MESSAGE and not event.node
                                             and event.phase == "live"):
            print(event.message, flush=True)
        elif event.kind is EventKind.MESSAGE and event.data.get("level") in ("warning", "error"):
            # a destructive BMC step announced before it is done (a restart, a power-off), or trouble
            mine = not event.node or event.message.startswith(f"{event.node}:")
            print(event.message if mine else f"{event.node}: {event.message}", flush=True)
        elif states and event.kind is EventKind.STATE and event.state is not None:
            extra = f": {event.message}" if event.message else ""
            print(f"{event.node}: {event.state} (attempt {event.attempt}){extra}", flush=True)
    return show


async def run_deploy(opts: DeployOptions) -> int:
    """The whole deploy; returns the exit status (0 only when every node of the run is done)."""
    cluster = opts.cluster or load_inventory(opts.inventory)
    check_controller_address(cluster)
    client_key, public_key = controller_key(cluster)
    journal, run_nodes, starts = _open_journal(cluster, opts)
    last_run_pointer().parent.mkdir(parents=True, exist_ok=True)
    last_run_pointer().write_text(str(journal.run_dir) + "\n")
    nodes = {n.hostname: n for n in cluster.nodes}
    plans = {name: plan_for(nodes[name], public_key) for name in starts}
    bus, board = EventBus(), _board_from(journal, run_nodes)
    bus.subscribe(journal.record)
    bus.subscribe(board.apply)
    live_view = not opts.json and sys.stdout.isatty()
    bus.subscribe(_printer(opts, states=not live_view))  # the live view shows the states itself
    try:
        iso = await resolve_iso(cluster, public_key,
                                lambda message, **data: bus.emit(Event("", EventKind.RUN, message, data=data)))
    except PvcctlError as err:  # the command line reports it; the run's log keeps it too
        bus.emit(Event("", EventKind.MESSAGE, f"no ISO to serve, no node touched: {err}"))
        raise
    desk = CheckinDesk(fingerprint(iso.host_keys[0]), bus)
    share = IsoShare(iso.local, bmc_addresses([nodes[n].bmc.host for n in run_nodes])) if iso.local else None
    server = Server(build_app(board, bus, desk, RunInfo(cluster.name, journal.run_dir), share),
                    cluster.controller.listen_host, cluster.controller.listen_port)
    await server.start()
    concurrency = cluster.deploy.concurrency if opts.concurrency < 0 else opts.concurrency
    restore_logging = _log_into_events(bus, board)
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            services = _services(cluster, http, iso, share, client_key, plans, desk, bus, journal, concurrency)
            deployment = Deployment([nodes[n] for n in starts], services, deadlines=cluster.deploy.deadlines,
                                    retries=cluster.deploy.retries)
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, deployment.request_stop)
            bus.emit(Event("", EventKind.RUN, f"deploying {', '.join(starts)} from {journal.run_dir}"))
            if live_view:
                with Live(progress_table(cluster.name, board.snapshot()), refresh_per_second=4) as screen:
                    redraw = asyncio.create_task(_redraw(screen, cluster.name, board))
                    outcomes = await deployment.run(starts)
                    redraw.cancel()
            else:
                outcomes = await deployment.run(starts)
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
    finally:
        restore_logging()
        await server.stop()
    return _finish(cluster, opts, journal, board, run_nodes, outcomes, public_key)


def _log_into_events(bus: EventBus, board: Board) -> Callable[[], None]:
    """Until the returned function is called, the controller's log records (INFO and up) become events:
    a node's BMC steps, retries and announced restarts land in its log, and warnings on the terminal once."""
    logger = logging.getLogger("controller")
    handler = NodeLogHandler(bus, board)
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # no second copy through the root logger (or Python's last resort)

    def restore() -> None:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate

    return restore


async def _redraw(screen: Live, cluster: str, board: Board) -> None:
    """The terminal view: redrawn from the board's snapshot, never holding state of its own."""
    while True:
        await asyncio.sleep(0.5)
        screen.update(progress_table(cluster, board.snapshot()))


def _services(cluster: Cluster, http: aiohttp.ClientSession, iso: IsoSource, share: IsoShare | None,
              client_key: Path, plans: dict[str, Plan], desk: CheckinDesk, bus: EventBus, journal: Journal,
              concurrency: int) -> Services:
    preflight = cluster.deploy.deadlines.get("preflight", 180)
    boot = cluster.deploy.deadlines.get("boot", 600)
    media = cluster.deploy.deadlines.get("media", 300)
    # the BMC layer gives up (with its first and last error) before the phase deadline cuts it off:
    # in boot, an old iDRAC may wait out another job (config_job_deadline) and then follow its own
    timings = BmcTimings(step=RetryPolicy(deadline=min(120.0, preflight * 0.4)),
                         request_timeout=min(30.0, preflight / 3), config_job_deadline=min(300.0, boot * 0.5),
                         task_deadline=min(600.0, boot * 0.4, media * 0.8))

    def bmc_for(node: Node) -> Bmc:
        return RedfishBmc(BmcEndpoint.from_config(node.bmc), session=http, node=node.hostname, timings=timings)

    installer = build_installer_zipapp(journal.run_dir / "installer.pyz")
    iso_url = cluster.controller.url + share.url_path if share is not None else str(iso.url)
    many = max(1, len(plans))
    return Services(bmc_for, iso_url, iso.host_keys, client_key, installer, plans, desk, bus,
                    Limits.of(bmc=min(many, 256), iso=min(many, 256), install=concurrency or many), journal.logs,
                    run_id=journal.run_dir.name, poll=0.25)


def _finish(cluster: Cluster, opts: DeployOptions, journal: Journal, board: Board, run_nodes: list[str],
            outcomes: dict[str, JobOutcome], public_key: str) -> int:
    """The summary; the pvc-ansible inventory when every node is done (or --partial); the exit status."""
    rows = board.snapshot()
    done = [r["node"] for r in rows if r["state"] == NodeState.DONE.value]
    all_done = len(done) == len(run_nodes)
    journal.set_meta("finished", str(time.time()))
    out: Path | None = None
    if all_done or (opts.partial and done):
        out = journal.run_dir / "pvc-ansible"
        # only the nodes this run installed: with --partial the failed ones stay out of Ansible's reach
        finished = dataclasses.replace(cluster, nodes=tuple(n for n in cluster.nodes if n.hostname in done))
        render(finished, out, controller_key=public_key, results=_install_results(journal, done))
        journal.set_meta("inventory_out", str(out))
    journal.close()
    # a new cluster: pvc-ansible bootstraps it with do_bootstrap (never again on a running cluster)
    playbook = f"ansible-playbook -i {out}/hosts -l {cluster.name} -e do_bootstrap=yes pvc.yml"
    if opts.json:
        print(json.dumps({"summary": rows, "run_dir": str(journal.run_dir), "inventory": str(out) if out else None,
                          "next": playbook if out else None}), flush=True)
    else:
        Console(width=max(Console().width, 160)).print(summary_table(cluster.name, rows))
        if out is not None:
            print(f"pvc-ansible inventory written to {out}" + ("" if all_done else f" (partial: {', '.join(done)})"))
            print(f"next, from a pvc-ansible checkout: {playbook}   (do_bootstrap on the first run only)")
        else:
            print(f"not every node is done: no pvc-ansible inventory written (use --partial for one anyway); "
                  f"run directory {journal.run_dir}; start failed nodes over with pvcctl retry NODE...")
    return 0 if all_done else 1


def _install_results(journal: Journal, done: list[str]) -> dict[str, InstallResult]:
    records = journal.nodes()
    results = {}
    for name in done:
        verified = records[name].steps.get(Phase.VERIFY.value, {})
        results[name] = InstallResult(verified["address"], tuple(verified["host_keys"]))
    return results
