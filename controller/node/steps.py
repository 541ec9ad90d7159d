"""The steps of one node's pipeline (DESIGN.md §3): each checks before it acts, each returns a result.

A step gets the node's `NodeContext` (this attempt) and the run's shared `Services`; what a step
returns (its phase's dataclass in controller/node/results.py) is journalled, and later steps (or a
resumed run) read it back from `ctx.results`.
Steps that change a machine say what they are about to do, in an event, before they do it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncssh

from controller.bmc.base import Bmc, PowerState
from controller.live import (
    HostKeyMismatch,
    InstallOutcome,
    LiveError,
    LiveSession,
    LoginRefused,
    RemoteInstall,
    SshTarget,
)
from controller.node import proof, secure_boot
from controller.node.events import Event, EventBus, EventKind
from controller.node.results import (
    BootResult,
    CollectResult,
    FinalizeResult,
    InstallResult,
    LiveResult,
    MediaResult,
    PreflightResult,
    StepResult,
    VerifyResult,
    result_of,
)
from controller.node.states import Phase
from controller.server.checkin import Checkin, CheckinDesk
from controller.wipe_gate import WipeGate
from core.errors import OperationError
from installer.plan import Plan
from inventory.model import Node

R = TypeVar("R")
PROBE_INTERVAL = 5.0  # seconds between looks for a live system at its static address
CANDIDATE_SECONDS = 30.0  # how long a place a check-in named may take to answer SSH before it is rejected
LIVE_SSH_PORT = 22
CD_TARGETS = frozenset({"Cd", "UsbCd", "Dvd"})  # Redfish BootSourceOverrideTarget values for a virtual CD


class InstallFailed(OperationError):
    """The installer ended with a failure (its final line says where)."""


class NotInstalled(OperationError):
    """The installer's report shows no real install (a simulation outside a lab)."""


@dataclass(frozen=True)
class Limits:
    """Per-phase limiters: BMC operations at once, installs at once (`--concurrency`)."""

    bmc: asyncio.Semaphore
    install: asyncio.Semaphore

    @classmethod
    def of(cls, bmc: int, install: int) -> Limits:
        return cls(asyncio.Semaphore(bmc), asyncio.Semaphore(install))


@dataclass
class Services:
    """What every node's steps share in one run."""

    bmc_for: Callable[[Node], Bmc]
    iso_url: str
    live_host_keys: tuple[str, ...]
    client_key: Path
    installer: Path
    plans: dict[str, Plan]
    desk: CheckinDesk
    bus: EventBus
    limits: Limits
    logs: Path
    run_id: str
    poll: float = 1.0  # how often to look again (progress file, a rebooting node's SSH)
    # told when a node's installed system answered: the run keeps it in the cluster's state at once, so
    # a later run knows the node is installed even if this controller dies before the run ends
    on_installed: Callable[[str, VerifyResult, CollectResult], None] = lambda node, verified, collected: None
    simulated_ok: bool = False  # a lab's inventory: an installer that only simulated (lab/sim_node.py) counts
    inspect_only: bool = False  # `deploy --inspect`: each node ends after its inspection, powered off
    gate: WipeGate | None = None  # the one question before any wipe (controller/wipe_gate.py)
    coordinators: int = 0  # the cluster's coordinator count (a requirement)


@dataclass
class NodeContext:
    node: Node
    attempt: int
    services: Services
    results: dict[Phase, StepResult] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.node.hostname

    @property
    def remote_run(self) -> str:
        return f"{self.services.run_id}-{self.attempt}"

    def result(self, phase: Phase, kind: type[R]) -> R:
        """What an earlier step of this attempt returned."""
        return result_of(self.results, phase, kind)

    def say(self, message: str, phase: Phase, **data: Any) -> None:
        self.services.bus.emit(Event(self.name, EventKind.MESSAGE, message, phase=phase.value,
                                     attempt=self.attempt, data=data))

    @contextlib.asynccontextmanager
    async def bmc(self) -> AsyncIterator[Bmc]:
        async with self.services.limits.bmc, self.services.bmc_for(self.node) as bmc:
            yield bmc


async def preflight(ctx: NodeContext) -> PreflightResult:
    async with ctx.bmc() as bmc:
        identity = await bmc.identity()
        media = await bmc.media_status()
        boot_status = await bmc.boot_status()
        secure = await secure_boot.at_preflight(ctx, bmc, identity.secure_boot)
    if boot_status.allowed and not CD_TARGETS & set(boot_status.allowed):
        raise OperationError(f"the BMC offers no virtual-CD boot target (allowed: {', '.join(boot_status.allowed)})",
                             node=ctx.name, phase="preflight", hint="check the BMC's firmware and licence")
    ctx.services.desk.expect(ctx.name, serial=identity.serial, macs=identity.macs,
                             address=ctx.node.management_address, attempt=ctx.attempt)
    ctx.say(f"{identity.manufacturer} {identity.model} serial {identity.serial}, power {identity.power}",
            Phase.PREFLIGHT)
    return PreflightResult(identity, media, boot_status, secure if secure_boot.wish(ctx.node) is not None else None)


async def media(ctx: NodeContext) -> MediaResult:
    ctx.say(f"ejecting all virtual media of {ctx.node.bmc.address}, then inserting the ISO", Phase.MEDIA)
    async with ctx.bmc() as bmc:
        await bmc.eject_all_media()
        status = await bmc.insert_media(ctx.services.iso_url)
    if not status.inserted:
        raise OperationError("the BMC does not show the ISO as inserted", node=ctx.name, phase="media")
    return MediaResult(status)


async def boot(ctx: NodeContext) -> BootResult:
    ctx.services.desk.forget(ctx.name)  # only a check-in after this boot counts
    async with ctx.bmc() as bmc:
        override = await bmc.set_boot_once_cd()
        power = await bmc.power_state()
        if power is PowerState.ON:
            ctx.say(f"force-restarting {ctx.name} (it is on) to boot the ISO", Phase.BOOT)
            await bmc.force_restart()
        else:
            ctx.say(f"powering on {ctx.name} to boot the ISO", Phase.BOOT)
            await bmc.power_on()
        secure = await secure_boot.after_restart(ctx, bmc)
    return BootResult(override, power, secure)


async def live(ctx: NodeContext) -> LiveResult:
    """The node's live system, proven by SSH with the pinned host key: at a place its check-ins name
    (each a hint: an impostor's is rejected and the wait goes on) or at its static inventory address."""
    found = [asyncio.create_task(_from_checkins(ctx)), asyncio.create_task(_probe_known_address(ctx))]
    try:
        done, _ = await asyncio.wait(found, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in found:
            task.cancel()
    target = done.pop().result()
    ctx.say(f"live system up at {target.host}:{target.port}, host key verified", Phase.LIVE)
    return LiveResult(target.host, target.port)


async def _from_checkins(ctx: NodeContext) -> SshTarget:
    """The first place a check-in names where SSH answers with the pinned host key and takes our key.
    Each candidate is tried on its own, at once: an impostor's place that never answers delays nobody."""
    desk = ctx.services.desk
    winner: asyncio.Future[SshTarget] = asyncio.get_running_loop().create_future()

    async def attempt(checkin: Checkin, remote: str) -> None:
        target = _live_target(ctx, checkin.ssh_address, checkin.ssh_port)
        try:
            async with asyncio.timeout(CANDIDATE_SECONDS):  # a live system's sshd is up before it checks in
                await _until_ssh_answers(ctx, target, "live")
        except HostKeyMismatch:
            why = "SSH answers with a host key that is not the pinned one"
        except LoginRefused:
            why = "SSH refuses the controller's key, which the live system trusts"
        except TimeoutError:
            why = f"nothing answered SSH within {CANDIDATE_SECONDS:.0f}s"
        else:
            if not winner.done():
                winner.set_result(target)
            return
        desk.reject(ctx.name, checkin, remote, why)

    async def feed() -> None:
        async for checkin, remote in desk.candidates(ctx.name):
            attempts.add(asyncio.create_task(attempt(checkin, remote)))

    attempts: set[asyncio.Task[None]] = set()
    feeder = asyncio.create_task(feed())
    try:
        return await winner
    finally:
        for task in (feeder, *attempts):
            task.cancel()


async def _probe_known_address(ctx: NodeContext) -> SshTarget:
    """A live system whose check-in never arrives (a firewall, a proxy) is still found at the
    inventory's static address, if it answers there with the pinned host key."""
    address = ctx.node.management_address
    if address is None:
        await asyncio.Event().wait()  # DHCP: only a check-in can tell where the node is
    target = _live_target(ctx, str(address), LIVE_SSH_PORT)
    warned = False
    while True:
        await asyncio.sleep(PROBE_INTERVAL)
        try:
            async with await LiveSession.open(target) as session:
                await session.run("true")
            return target
        except HostKeyMismatch as err:
            if not warned:
                ctx.say(f"{target} answers with another host key; waiting for the node's check-in ({err})",
                        Phase.LIVE)
                warned = True
        except LiveError:
            continue


def _live_target(ctx: NodeContext, host: str, port: int) -> SshTarget:
    return SshTarget(host, port, "root", ctx.services.live_host_keys, ctx.services.client_key, ctx.name)


async def install(ctx: NodeContext) -> InstallResult:
    """Start the installer once, follow it; after a dropped link, reconnect and reattach to the same run."""
    where = ctx.result(Phase.LIVE, LiveResult)
    target = _live_target(ctx, where.address, where.port)
    async with ctx.services.limits.install:
        while True:
            try:
                outcome = await _install_once(ctx, target)
                break
            except (HostKeyMismatch, LoginRefused):
                raise
            except (LiveError, asyncssh.Error, OSError) as err:
                ctx.say(f"lost the SSH link during the install ({err or type(err).__name__}); reconnecting",
                        Phase.INSTALL)
                await asyncio.sleep(ctx.services.poll)  # the phase deadline bounds this loop
    if outcome.exit_code != 0:
        final = outcome.final
        raise InstallFailed(f"installer exit {outcome.exit_code} at {final.get('step', '?')}: "
                            f"{final.get('message', '')}", node=ctx.name, phase="install")
    return InstallResult(f"pvcctl/{ctx.remote_run}", 0)


async def _install_once(ctx: NodeContext, target: SshTarget) -> InstallOutcome:
    services = ctx.services
    async with await LiveSession.open(target, "install") as session:
        remote = RemoteInstall(session, ctx.remote_run)
        if await remote.started():
            ctx.say(f"reattaching to the install already running in {remote.dir}", Phase.INSTALL)
        else:
            ctx.say(f"starting the installer: it WIPES the disk matching {services.plans[ctx.name].disk}",
                    Phase.INSTALL)
            # the plan names this attempt's run: the install marker on the target keeps it, verify checks it
            plan = dataclasses.replace(services.plans[ctx.name], run=ctx.remote_run)
            await remote.start(services.installer, plan.to_dict())
        outcome = await remote.follow(lambda line: _progress(ctx, line), services.poll)
        if outcome.exit_code != 0:
            await remote.fetch(_attempt_dir(ctx))  # the log of a failed attempt is kept
        return outcome


def _progress(ctx: NodeContext, line: dict[str, Any]) -> None:
    ctx.services.bus.emit(Event(ctx.name, EventKind.PROGRESS, str(line.get("message", "")), phase="install",
                                attempt=ctx.attempt, data={"percent": line.get("percent", 0),
                                                           "step": line.get("step", "")}))


def _attempt_dir(ctx: NodeContext) -> Path:
    return ctx.services.logs / f"{ctx.name}.{ctx.attempt}"


async def collect(ctx: NodeContext) -> CollectResult:
    where = ctx.result(Phase.LIVE, LiveResult)
    async with await LiveSession.open(_live_target(ctx, where.address, where.port), "collect") as session:
        report = await RemoteInstall(session, ctx.remote_run).fetch(_attempt_dir(ctx))
    if not report.get("ssh_host_keys"):
        raise OperationError("the installer's report names no SSH host keys", node=ctx.name, phase="collect")
    if report.get("simulated") and not ctx.services.simulated_ok:
        raise NotInstalled("the installer's report says it only simulated the install: nothing was written to "
                           "the disk", node=ctx.name, phase="collect",
                           hint="a real live system never simulates; check what answers at this node's address")
    return CollectResult(report, str(_attempt_dir(ctx)))


async def finalize(ctx: NodeContext) -> FinalizeResult:
    ctx.say(f"ejecting the ISO and restarting {ctx.name} from its disk", Phase.FINALIZE)
    async with ctx.bmc() as bmc:
        await bmc.eject_all_media()
        override = await bmc.set_boot_disk()
        await bmc.force_restart()
    return FinalizeResult(override)


async def verify(ctx: NodeContext) -> VerifyResult:
    """SSH in as the deploy user, trusting only the host keys the installer reported, and prove the
    install (controller/node/proof.py): complete marker of this run, root on the chosen disk, media out."""
    where = ctx.result(Phase.LIVE, LiveResult)
    collected = ctx.result(Phase.COLLECT, CollectResult)
    host_keys = collected.host_keys
    address = ctx.node.management_address or where.address
    target = SshTarget(address, where.port, ctx.node.install.deploy_user, host_keys, ctx.services.client_key,
                       ctx.name)
    started = time.monotonic()
    hostname = (await _until_ssh_answers(ctx, target, "verify", "hostname")).strip()
    ctx.say(f"installed system answers at {address} as {hostname} ({time.monotonic() - started:.1f}s)",
            Phase.VERIFY)
    async with await LiveSession.open(target, "verify") as session:
        answer = await session.conn.run(proof.PROBE_COMMAND, input=proof.PROBE_SOURCE, check=False, timeout=60)
    found = proof.parse_probe(str(answer.stdout or "") + str(answer.stderr or ""), ctx.name)
    proved = proof.judge(found, collected.report.get("disk") or {}, ctx.remote_run, ctx.name)
    ctx.say(f"install marker complete (run {proved.marker_run}); root {proved.root_source} is on "
            f"{proved.root_disk} ({proved.matched_by} {proved.root_serial or proved.root_disk}), the chosen disk",
            Phase.VERIFY)
    async with ctx.bmc() as bmc:
        media = await bmc.media_status()
    proof.check_media(media, ctx.name)
    ctx.say(f"the BMC shows no virtual media inserted ({media.slot})", Phase.VERIFY)
    verified = VerifyResult(address, host_keys, hostname, proved.marker_run, proved.root_source, proved.root_disk,
                            proved.root_serial, proved.matched_by, media_ejected=True)
    ctx.services.on_installed(ctx.name, verified, collected)
    return verified


async def _until_ssh_answers(ctx: NodeContext, target: SshTarget, phase: str, command: str = "true") -> str:
    """Run `command` once SSH answers: a node still booting (or slow to answer) is waited for, up to
    the phase deadline; a wrong host key or a refused login ends the wait at once."""
    while True:
        try:
            async with await LiveSession.open(target, phase) as session:
                return await session.run(command)
        except (HostKeyMismatch, LoginRefused):
            raise
        except (LiveError, asyncssh.Error, OSError):
            await asyncio.sleep(ctx.services.poll)


STEPS: dict[Phase, Callable[[NodeContext], Awaitable[StepResult]]] = {
    Phase.PREFLIGHT: preflight,
    Phase.MEDIA: media,
    Phase.BOOT: boot,
    Phase.LIVE: live,
    Phase.INSTALL: install,
    Phase.COLLECT: collect,
    Phase.FINALIZE: finalize,
    Phase.VERIFY: verify,
}
