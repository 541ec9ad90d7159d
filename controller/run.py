"""One deploy run, from the inventory to the pvc-ansible inventory.

The run wires what the engine needs and releases all of it, whatever happens, through one async exit
stack: the journal, the controller's HTTP server (ISO, check-ins, status), the BMCs' shared HTTP
session, the controller's log records as events, and the signal handlers. What it writes at the end
is decided from the jobs' outcomes; the terminal only shows them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp

from controller import inspect_view
from controller.bmc.base import Bmc
from controller.bmc.endpoint import BmcEndpoint
from controller.bmc.redfish import BmcTimings, RedfishBmc
from controller.bmc.retry import RetryPolicy
from controller.bmc.transport import new_http_session
from controller.consent import ask_on_terminal, needs_question
from controller.engine import Deployment
from controller.journal import Journal
from controller.live import build_installer_zipapp
from controller.node.events import Board, Event, EventBus, EventKind, NodeLogHandler
from controller.node.job import JobOutcome
from controller.node.results import CollectResult, VerifyResult
from controller.node.states import NodeState
from controller.node.steps import Limits, Services
from controller.plans import plan_for
from controller.preflight import preflight
from controller.selection import DeployOptions, open_run
from controller.server.api import RunInfo
from controller.server.app import Server, build_app
from controller.server.auth import RunToken
from controller.server.checkin import CheckinDesk
from controller.server.iso import IsoShare, bmc_addresses
from controller.terminal import Terminal
from controller.webhooks import Notifier
from controller.wipe_gate import WipeGate
from core.errors import PvcctlError
from core.keys import fingerprint
from installer.plan import Plan
from inventory.load import load_inventory
from inventory.model import Cluster, Node
from inventory.pvc_ansible import next_step, render
from inventory.state import ClusterState, InstallResult, controller_key
from iso.resolve import IsoSource, resolve_iso

__all__ = ["DeployOptions", "run_deploy"]

LAB_NAT_SOURCES = frozenset({"127.0.0.1", "::1"})


async def run_deploy(opts: DeployOptions) -> int:
    """The whole deploy; returns the exit status (0 only when every node of the run is done)."""
    cluster = opts.cluster or load_inventory(opts.inventory)
    await preflight(cluster)  # before any run directory is made or any BMC is asked anything
    ask = ask_on_terminal if needs_question(cluster, yes=opts.yes, inspect=opts.inspect) else None
    client_key, public_key = controller_key(cluster)
    state = ClusterState.open(cluster)
    journal, run_nodes, starts = open_run(cluster, opts)
    inspect_only = opts.inspect or journal.meta().get("mode") == "inspect"  # a resumed inspection stays one
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(journal.close)
        nodes = {n.hostname: n for n in cluster.nodes}
        plans = {name: plan_for(nodes[name], public_key) for name in starts}
        bus, board = EventBus(), _board_from(journal, run_nodes)
        terminal = Terminal(cluster.name, json_lines=opts.json, deadlines=cluster.deploy.deadlines)
        notifier = Notifier(cluster.controller.webhooks, cluster.name, journal.run_dir.name)
        for subscriber in (journal.record, board.apply, terminal.show, notifier.on_event):
            bus.subscribe(subscriber)
        iso = await _iso(cluster, public_key, bus)
        # a lab's machines may sit behind a NAT on this machine (QEMU's user network): their check-ins come from
        # loopback, whatever address they claim; anywhere else a claim must come from the address it names
        desk = CheckinDesk(fingerprint(iso.host_keys[0]), bus,
                           trusted_sources=LAB_NAT_SOURCES if cluster.controller.lab else frozenset())
        share = _iso_share(cluster, iso, [nodes[n] for n in run_nodes])
        if share is not None:
            bus.keep_secret(share.token)  # the ISO's path is for the BMCs: no event, log or journal line has it
        token = RunToken.for_run(journal.run_dir)
        steering = _Steering()
        server = Server(build_app(board, bus, desk, RunInfo(cluster.name, journal.run_dir), share, token, steering),
                        cluster.controller.listen_host, cluster.controller.listen_port)
        await server.start()
        stack.push_async_callback(server.stop)
        journal.set_meta("controller", cluster.controller.url)  # where `pvcctl retry` reaches this run
        terminal.dashboard(token.dashboard_url(cluster.controller.url))
        stack.enter_context(_log_into_events(bus, board))
        http = await stack.enter_async_context(new_http_session())
        await stack.enter_async_context(notifier.running(http))  # drained before the session closes
        concurrency = cluster.deploy.concurrency if opts.concurrency < 0 else opts.concurrency
        services = _services(cluster, http, iso, share, client_key, plans, desk, bus, journal, concurrency)
        services.on_installed = _recorder(state, journal.run_dir.name)
        services.simulated_ok = cluster.controller.lab
        services.inspect_only, services.coordinators = inspect_only, len(cluster.coordinators)
        services.gate = None if inspect_only else WipeGate(starts, ask)
        deployment = Deployment([nodes[n] for n in starts], services, deadlines=cluster.deploy.deadlines,
                                retries=cluster.deploy.retries)
        stack.enter_context(_signals(deployment.request_stop))
        steering.deployment = deployment
        bus.emit(Event("", EventKind.RUN, f"deploying {', '.join(starts)} from {journal.run_dir}"))
        async with terminal.live(board):
            outcomes = await deployment.run(starts)
        outcomes = _with_earlier(journal, run_nodes, outcomes)
        if inspect_only:
            code = _finish_inspection(opts, journal, board, terminal, outcomes)
        else:
            code = _finish(cluster, opts, journal, board, terminal, outcomes, state)
        journal.set_meta("exit_status", str(code))
        bus.emit(Event("", EventKind.RUN, f"deploy ended: exit status {code}", data={"exit_status": code}))
        notifier.ended(code)
        return code


class _Steering:
    """The API's way to the deployment (retry a node, stop), once there is one."""

    deployment: Deployment | None = None

    def retry(self, node: str) -> tuple[int, dict[str, object]]:
        if self.deployment is None:
            return 409, {"reason": "the run is still starting; try again in a moment"}
        return self.deployment.retry(node)

    def stop(self) -> tuple[int, dict[str, object]]:
        if self.deployment is None:
            return 409, {"reason": "the run is still starting; try again in a moment"}
        return self.deployment.stop()


async def _iso(cluster: Cluster, public_key: str, bus: EventBus) -> IsoSource:
    def say(message: str, **data: object) -> None:
        bus.emit(Event("", EventKind.RUN, message, data=dict(data)))

    try:
        return await resolve_iso(cluster, public_key, say)
    except PvcctlError as err:  # the command line reports it; the run's log keeps it too
        bus.emit(Event("", EventKind.MESSAGE, f"no ISO to serve, no node touched: {err}"))
        raise


def _iso_share(cluster: Cluster, iso: IsoSource, nodes: list[Node]) -> IsoShare | None:
    """The ISO this controller serves, to the BMCs of the run's nodes; loopback too for a lab only."""
    if iso.local is None:
        return None
    return IsoShare(iso.local, bmc_addresses([node.bmc.host for node in nodes]), allow_loopback=cluster.controller.lab)


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


@contextlib.contextmanager
def _log_into_events(bus: EventBus, board: Board) -> Iterator[None]:
    """While the block runs, the controller's log records (INFO and up) become events: a node's BMC
    steps, retries and announced restarts land in its log, and warnings on the terminal once."""
    logger = logging.getLogger("controller")
    handler = NodeLogHandler(bus, board)
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # no second copy through the root logger (or Python's last resort)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


@contextlib.contextmanager
def _signals(stop: Callable[[], None]) -> Iterator[None]:
    """Ctrl-C and SIGTERM ask the deployment to stop (see Deployment.request_stop) while the block runs."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    try:
        yield
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


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
                         task_deadline=min(600.0, boot * 0.4, media * 0.8),
                         secure_boot_deadline=min(600.0, boot * 0.5))

    def bmc_for(node: Node) -> Bmc:
        return RedfishBmc(BmcEndpoint.from_config(node.bmc), session=http, node=node.hostname, timings=timings)

    installer = build_installer_zipapp(journal.run_dir / "installer.pyz")
    iso_url = cluster.controller.url + share.url_path if share is not None else str(iso.url)
    many = max(1, len(plans))
    return Services(bmc_for, iso_url, iso.host_keys, client_key, installer, plans, desk, bus,
                    Limits.of(bmc=min(many, 256), install=concurrency or many), journal.logs,
                    run_id=journal.run_dir.name, poll=0.25)


def _with_earlier(journal: Journal, run_nodes: list[str], outcomes: dict[str, JobOutcome]) -> dict[str, JobOutcome]:
    """This run's outcomes, and for the run's nodes it did not start (a retry of others) the journal's."""
    records = journal.nodes()
    earlier = {name: JobOutcome(records[name].state, records[name].attempt, dict(records[name].steps),
                                records[name].error)
               for name in run_nodes if name not in outcomes and name in records}
    return {name: outcomes.get(name) or earlier.get(name) or JobOutcome(NodeState.PENDING, 0, {})
            for name in run_nodes}


def _recorder(state: ClusterState, run_id: str) -> Callable[[str, VerifyResult, CollectResult], None]:
    def record(node: str, verified: VerifyResult, collected: CollectResult) -> None:
        state.record_install(node, InstallResult(verified.address, verified.host_keys, collected.disk, None, run_id))
    return record


def _finish_inspection(opts: DeployOptions, journal: Journal, board: Board, terminal: Terminal,
                       outcomes: dict[str, JobOutcome]) -> int:
    """An inspection: no render, nothing recorded; each node's findings; 0 when every node passed."""
    journal.set_meta("finished", str(time.time()))
    if not opts.json:
        terminal.summary_table(board.snapshot())
    inspect_view.show(outcomes, journal.run_dir, json_lines=opts.json)
    return 0 if inspect_view.all_pass(outcomes) else 1


def _finish(cluster: Cluster, opts: DeployOptions, journal: Journal, board: Board, terminal: Terminal,
            outcomes: dict[str, JobOutcome], state: ClusterState) -> int:
    """The pvc-ansible inventory of the whole cluster when every node of the run is done (or --partial:
    the failed ones stay out of Ansible's reach); the summary; the exit status."""
    done = [name for name, outcome in outcomes.items() if outcome.state is NodeState.DONE]
    all_done = len(done) == len(outcomes)
    journal.set_meta("finished", str(time.time()))
    out: Path | None = None
    hint = ""
    if all_done or (opts.partial and done):
        out = journal.run_dir / "pvc-ansible"
        report = render(cluster, out, state=state)  # every node the cluster has installed, this run's among them
        for warning in report.warnings:
            terminal.warn(warning)
        hint = next_step(cluster, report)
        journal.set_meta("inventory_out", str(out))
    terminal.summary(board.snapshot(), journal.run_dir, out, [] if all_done else done, hint)
    return 0 if all_done else 1
