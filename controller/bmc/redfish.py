"""`RedfishBmc`: the `Bmc` interface over `redfish.aio.AsyncRedfishClient` on one shared aiohttp session.

    async with RedfishBmc(endpoint, session=http, node="hv1") as bmc:
        ident = await bmc.identity()
        await bmc.eject_all_media(); await bmc.insert_media(url)
        await bmc.set_boot_once_cd(); await bmc.power_on()

Session login, Basic only when the BMC has no sessions (controller/bmc/login.py), logout always.
Each step is check-then-act, runs under the retry helper (transient failures only) and reads back
its result before it returns. A restart or a graceful shutdown whose answer was lost is never sent
again (see `force_restart`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from redfish.aio import AsyncRedfishClient, RedfishError

from controller.bmc import secure_boot
from controller.bmc.base import Bmc, BootStatus, BootTarget, Identity, MediaStatus, PowerState, SecureBootStatus
from controller.bmc.boot import boot_status_of, read_boot, set_boot
from controller.bmc.channel import RedfishChannel, Resource, library_error
from controller.bmc.dell import PendingRestart, boot_once_virtual_cd
from controller.bmc.endpoint import BmcEndpoint
from controller.bmc.errors import BmcRequestError, FailureClass, WriteOutcome
from controller.bmc.login import SESSIONS, log_in
from controller.bmc.media import VirtualMedia, check_image_url
from controller.bmc.power import REPEATABLE_RESETS, power_of, restart_sign, summaries_of
from controller.bmc.quirks import STANDARD, VendorProfile, select_profile
from controller.bmc.retry import StepContext, failure_error, retrying
from controller.bmc.timings import BmcTimings as BmcTimings  # where callers have always found it
from controller.bmc.transport import BmcTransport

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class _Discovered:
    root: Resource
    system: Resource
    manager: Resource | None
    profile: VendorProfile
    systems: tuple[str, ...] = ()  # the Id of every system the BMC lists (a multi-node chassis has several)


_PROFILES_TOLD: set[tuple[str, str]] = set()  # (BMC URL, profile) already logged by this process


class RedfishBmc:
    """One node's BMC over Redfish (see the module docstring)."""

    def __init__(self, endpoint: BmcEndpoint, *, session: aiohttp.ClientSession, node: str = "",
                 timings: BmcTimings | None = None, system_id: str | None = None):
        self.endpoint = endpoint
        self.system_id = system_id  # which system, when the BMC lists several (else the first)
        self.node = node or endpoint.url
        self.timings = timings or BmcTimings()
        self.transport = BmcTransport(session, endpoint.ssl_setting())
        self._client = AsyncRedfishClient(
            endpoint.url, endpoint.username, endpoint.password.get_secret_value(),
            session=self.transport, timeout=self.timings.request_timeout,
        )
        self.channel = RedfishChannel(self._client, poll_interval=self.timings.poll_interval,
                                      task_deadline=self.timings.task_deadline, relogin=self._relogin,
                                      task_missing_grace=self.timings.task_missing_grace)
        self.auth = ""
        self._found: _Discovered | None = None
        self._where = StepContext(node=self.node, bmc=endpoint.url)

    def __repr__(self) -> str:
        return f"RedfishBmc(node={self.node!r}, url={self.endpoint.url!r}, user={self.endpoint.username!r})"

    async def __aenter__(self) -> RedfishBmc:
        await self._step("log in", self._login)
        try:
            self._found = await self._step("discover", self._discover)
        except BaseException:
            await self._logout()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._logout()

    async def _step(self, step: str, operation: Callable[[], Awaitable[T]]) -> T:
        return await retrying(self._where, step, operation, self.timings.step)

    # -- session ---------------------------------------------------------------------------------

    async def _login(self) -> None:
        self.auth = await log_in(self._client, self.channel, self.endpoint.url)

    async def _relogin(self) -> None:
        if self.auth != "session":
            raise BmcRequestError(FailureClass.AUTH, "the BMC refused the credentials")
        try:
            await self._client.login(auth="session")
        except RedfishError as err:
            raise library_error("POST", SESSIONS, err) from None

    async def _logout(self) -> None:
        if self.auth == "session":
            try:
                await self._client.logout()
            except RedfishError as err:
                log.warning("%s: logout failed (%s); the BMC will expire the session",
                            self.endpoint.url, library_error("DELETE", "session", err))
        self.auth = ""

    async def _discover(self) -> _Discovered:
        root = await self.channel.get("/redfish/v1/")
        systems = await self.channel.get(_link(root.data, "Systems", "/redfish/v1/Systems"))
        members = systems.data.get("Members") or []
        if not members:
            raise BmcRequestError(FailureClass.PROTOCOL, "the BMC lists no system")
        paths = [str(m["@odata.id"]) for m in members]
        ids = tuple(p.rstrip("/").rsplit("/", 1)[-1] for p in paths)
        chosen = [p for p, i in zip(paths, ids, strict=True) if i == self.system_id] if self.system_id else paths
        if not chosen:
            raise BmcRequestError(FailureClass.REJECTED,
                                  f"the BMC lists no system {self.system_id}; its systems: {', '.join(ids)}")
        system = await self.channel.get(chosen[0])
        manager = await self._manager_of(root, system)
        profile = select_profile(
            service_vendor=str(root.data.get("Vendor") or ""),
            manufacturer=str(system.data.get("Manufacturer") or ""),
            model=str(system.data.get("Model") or (manager.data.get("Model") if manager else "") or ""),
            firmware=str(manager.data.get("FirmwareVersion") or "") if manager else "",
            manager_model=str(manager.data.get("Model") or "") if manager else "",
        )
        if (self.endpoint.url, profile.name) not in _PROFILES_TOLD:  # each step logs in anew: say it once
            _PROFILES_TOLD.add((self.endpoint.url, profile.name))
            log.info("%s: vendor profile %s (%s %s, firmware %s)", self.endpoint.url, profile.name,
                     system.data.get("Manufacturer") or "?", system.data.get("Model") or "?",
                     (manager.data.get("FirmwareVersion") if manager else None) or "?")
        return _Discovered(root, system, manager, profile, ids)

    async def _manager_of(self, root: Resource, system: Resource) -> Resource | None:
        managed_by = (system.data.get("Links") or {}).get("ManagedBy") or []
        if not managed_by:
            collection = await self.channel.get(_link(root.data, "Managers", "/redfish/v1/Managers"))
            managed_by = collection.data.get("Members") or []
        return await self.channel.get(str(managed_by[0]["@odata.id"])) if managed_by else None

    @property
    def found(self) -> _Discovered:
        if self._found is None:
            raise RuntimeError("use RedfishBmc as `async with` before calling it")
        return self._found

    @property
    def system_ids(self) -> tuple[str, ...]:
        """The Id of every system the BMC lists; this object acts on `system_id` (else the first)."""
        return self.found.systems

    @property
    def profile(self) -> VendorProfile:
        return self._found.profile if self._found else STANDARD

    # -- identity -----------------------------------------------------------------------------------

    async def identity(self) -> Identity:
        return await self._step("read identity", self._identity)

    async def _identity(self) -> Identity:
        system = await self.channel.get(self.found.system.path)
        data, manager = system.data, self.found.manager
        sku = str(data.get("SKU") or "")
        return Identity(
            manufacturer=str(data.get("Manufacturer") or ""),
            model=str(data.get("Model") or ""),
            firmware=str(manager.data.get("FirmwareVersion") or "") if manager else "",
            # NOTE(dell/idrac9): the service tag (SKU) is what the OS sees as the system serial.
            serial=sku if self.profile.service_tag_in_sku and sku else str(data.get("SerialNumber") or ""),
            sku=sku,
            service_tag=sku if self.profile.service_tag_in_sku else "",
            macs=await self._macs(data),
            power=power_of(data),
            boot_mode=str((data.get("Boot") or {}).get("BootSourceOverrideMode") or ""),
            profile=self.profile.name,
            secure_boot=(await secure_boot.read_secure_boot(self.channel, data))[0],
            **summaries_of(data),
        )

    async def _macs(self, system: dict[str, Any]) -> tuple[str, ...]:
        link = (system.get("EthernetInterfaces") or {}).get("@odata.id")
        if not link:
            return ()
        members = (await self.channel.get(str(link))).data.get("Members") or []
        nics = await asyncio.gather(*(self.channel.get(str(m["@odata.id"])) for m in members))
        macs = (str(n.data.get("MACAddress") or n.data.get("PermanentMACAddress") or "") for n in nics)
        return tuple(m.lower() for m in macs if m)

    # -- power ----------------------------------------------------------------------------------------

    async def power_state(self) -> PowerState:
        return await self._step("read power state", self._power_state)

    async def _power_state(self) -> PowerState:
        return power_of((await self.channel.get(self.found.system.path)).data)

    async def power_on(self) -> None:
        await self._power_change("power on", "On", PowerState.ON)

    async def force_off(self) -> None:
        await self._power_change("force off", "ForceOff", PowerState.OFF)

    async def graceful_shutdown(self) -> None:
        await self._power_change("graceful shutdown", "GracefulShutdown", PowerState.OFF)

    async def force_restart(self, reason: str = "") -> None:
        """Restart the server (power it on if it is off). A ForceRestart whose answer was lost is not sent
        again: a second restart could cut the first one's boot short; `_confirm_restart` looks for a sign
        that it happened instead, and fails the step if there is none."""
        log.warning("%s: BMC %s: force restart%s", self.node, self.endpoint.url, f" ({reason})" if reason else "")
        sent_on: list[bool] = []
        lost: list[tuple[dict[str, Any], BmcRequestError]] = []  # the System before, the lost answer

        async def restart() -> None:
            system = (await self.channel.get(self.found.system.path)).data
            power = power_of(system)
            if sent_on and power in (PowerState.ON, PowerState.POWERING_ON):
                return  # an earlier On worked, though its answer did not arrive
            if power in (PowerState.OFF, PowerState.POWERING_OFF):
                sent_on.append(True)
                await self._reset("On")  # a restart of a server that is off is a no-op on some BMCs
                return
            try:
                await self._reset("ForceRestart")
            except BmcRequestError as err:
                if err.outcome is not WriteOutcome.UNKNOWN:
                    raise
                lost.append((system, err))

        await self._step("force restart", restart)
        if lost:
            await self._confirm_restart(*lost[0])
        await self._waitpower_of("force restart", PowerState.ON)

    async def _confirm_restart(self, before: dict[str, Any], lost: BmcRequestError) -> None:
        """After a ForceRestart whose answer was lost: a sign that the server restarted, or a BmcError."""
        deadline = time.monotonic() + self.timings.restart_confirm
        while True:
            now = await self._step("read power state", lambda: self.channel.get(self.found.system.path))
            sign = restart_sign(before, now.data)
            if sign:
                log.info("%s: BMC %s: the answer to ForceRestart was lost (%s), but %s: not sending it again",
                         self.node, self.endpoint.url, lost, sign)
                return
            if time.monotonic() > deadline:
                raise failure_error(
                    self._where, "force restart",
                    f"the answer to ForceRestart was lost ({lost}) and for {self.timings.restart_confirm:g} s the "
                    "BMC showed no sign of a restart (power state, boot progress, one-time boot override); pvcctl "
                    "does not send it again, since a second restart could cut the first one's boot short",
                    FailureClass.TIMEOUT,
                    hint="look at the node's console: if it did not restart, run the deploy again")
            await asyncio.sleep(self.timings.poll_interval)

    async def _power_change(self, step: str, reset_type: str, goal: PowerState) -> None:
        if goal is PowerState.OFF:
            log.warning("%s: BMC %s: %s", self.node, self.endpoint.url, step)
        sent_unknown: list[BmcRequestError] = []

        async def change() -> None:
            state = await self._power_state()
            if state is goal or state.value == f"Powering{goal.value}" or sent_unknown:
                return
            try:
                await self._reset(reset_type)
            except BmcRequestError as err:
                # On and ForceOff are checked and sent again; a graceful shutdown shows nothing until the
                # OS has shut down, so one whose answer was lost is waited for, not sent twice.
                if err.outcome is not WriteOutcome.UNKNOWN or reset_type in REPEATABLE_RESETS:
                    raise
                log.info("%s: BMC %s: the answer to %s was lost (%s); waiting for power %s, not sending it again",
                         self.node, self.endpoint.url, reset_type, err, goal.value)
                sent_unknown.append(err)

        await self._step(step, change)
        await self._waitpower_of(step, goal)

    async def _reset(self, reset_type: str) -> None:
        actions = self.found.system.data.get("Actions") or {}
        reset = actions.get("#ComputerSystem.Reset") or {}
        target = reset.get("target") or f"{self.found.system.path.rstrip('/')}/Actions/ComputerSystem.Reset"
        allowed = reset.get("ResetType@Redfish.AllowableValues") or ()
        if allowed and reset_type not in allowed and f"Force{reset_type}" in allowed:
            reset_type = f"Force{reset_type}"  # e.g. only ForceOn offered
        await self.channel.write("POST", str(target), {"ResetType": reset_type})

    async def _waitpower_of(self, step: str, goal: PowerState) -> None:
        deadline = time.monotonic() + self.timings.power_deadline
        while (state := await self.power_state()) is not goal:
            if time.monotonic() > deadline:
                raise failure_error(self._where, step, f"power state still {state.value} after "
                                    f"{self.timings.power_deadline:.0f} s, not {goal.value}",
                                    FailureClass.TIMEOUT)
            await asyncio.sleep(self.timings.poll_interval)

    # -- virtual media --------------------------------------------------------------------------------

    def _media(self) -> VirtualMedia:
        collections = [_link(self.found.system.data, "VirtualMedia", "")]
        if self.found.manager is not None:
            collections.append(_link(self.found.manager.data, "VirtualMedia", ""))
        unique = list(dict.fromkeys(c for c in collections if c))
        return VirtualMedia(self.channel, self.profile, unique, deadline=self.timings.media_deadline,
                            poll_interval=self.timings.poll_interval)

    async def media_status(self) -> MediaStatus:
        return await self._step("read virtual media", self._media().status)

    async def eject_all_media(self) -> None:
        await self._step("eject virtual media", self._media().eject_all)

    async def insert_media(self, url: str) -> MediaStatus:
        refusal = check_image_url(url, self.profile)
        if refusal:
            raise failure_error(self._where, "insert virtual media", refusal, FailureClass.REJECTED,
                                hint="change the controller's ISO URL for this node")
        media = self._media()
        return await self._step("insert virtual media", lambda: media.insert(url))

    # -- boot ---------------------------------------------------------------------------------------

    async def boot_status(self) -> BootStatus:
        async def read() -> BootStatus:
            return boot_status_of(await read_boot(self.channel, self.found.system.path, self.profile))

        return await self._step("read boot override", read)

    async def _set_boot(self, step: str, target: BootTarget, enabled: str) -> BootStatus:
        return await self._step(step, lambda: set_boot(
            self.channel, self.found.system.path, self.profile, target, enabled,
            deadline=self.timings.media_deadline, poll_interval=self.timings.poll_interval))

    async def set_boot_once_cd(self) -> BootStatus:
        if self.profile.cd_boot_dell_oem:
            # One restart at most for this boot step, however often the step is tried.
            restart = PendingRestart(self._restart_for_pending_configuration)
            return await self._step("boot once from virtual CD", lambda: self._dell_boot_once_cd(restart))
        return await self._set_boot("boot once from virtual CD", BootTarget.CD, "Once")

    async def _restart_for_pending_configuration(self, answer: str) -> None:
        # NOTE(dell/idrac9 < 6.00, idrac8): LC068: the pending changes apply only while the server starts.
        # This node's own system, the one discovery chose; force_restart says so before it acts.
        await self.force_restart(f"its iDRAC refuses the one-time boot import until pending configuration "
                                 f"changes are applied by a restart: {answer}")

    async def _dell_boot_once_cd(self, restart: PendingRestart) -> BootStatus:
        # NOTE(dell/idrac9 < 6.00, idrac8): the standard Cd would boot the physical drive.
        manager = self.found.manager
        if manager is None:
            raise BmcRequestError(FailureClass.UNSUPPORTED, "no iDRAC manager for the Dell one-time boot import")
        message = await boot_once_virtual_cd(self.channel, manager, deadline=self.timings.task_deadline,
                                             poll_interval=self.timings.poll_interval,
                                             refused_wait=self.timings.config_job_wait,
                                             refused_deadline=self.timings.config_job_deadline, restart=restart)
        log.info("%s: BMC %s: one-time boot from the virtual CD (VCD-DVD): %s", self.node, self.endpoint.url, message)
        # The job's message is the read-back: the standard Boot properties cannot tell VCD-DVD from CD-DVD.
        status = boot_status_of(await read_boot(self.channel, self.found.system.path, self.profile))
        return BootStatus(target=BootTarget.CD, target_name="VCD-DVD", enabled="Once", mode=status.mode,
                          allowed=status.allowed)

    async def set_boot_disk(self) -> BootStatus:
        return await self._set_boot("boot from disk", BootTarget.DISK, "Continuous")

    async def clear_boot_override(self) -> BootStatus:
        return await self._set_boot("clear boot override", BootTarget.NONE, "Disabled")

    # -- Secure Boot (controller/bmc/secure_boot.py) ----------------------------------------------------

    async def secure_boot_status(self) -> SecureBootStatus:
        async def read() -> SecureBootStatus:
            system = await self.channel.get(self.found.system.path)
            return (await secure_boot.read_secure_boot(self.channel, system.data))[0]

        return await self._step("read Secure Boot", read)

    async def set_secure_boot(self, enable: bool) -> SecureBootStatus:
        """PATCH SecureBootEnable if it differs, once however often the step is tried; read back. It takes
        effect at the next reset: the caller restarts the server, then calls `wait_secure_boot`."""
        sent: list[bool] = []
        return await self._step(f"set Secure Boot {'on' if enable else 'off'}", lambda: secure_boot.set_secure_boot(
            self.channel, self.found.system.path, enable, sent))

    async def wait_secure_boot(self, enable: bool) -> SecureBootStatus:
        """SecureBootEnable as read once it shows `enable`, or after `secure_boot_deadline` (the caller judges)."""
        return await secure_boot.wait_secure_boot(self.channel, self.found.system.path, enable,
                                                  deadline=self.timings.secure_boot_deadline,
                                                  poll_interval=self.timings.poll_interval)


def _link(data: dict[str, Any], name: str, default: str) -> str:
    value = data.get(name)
    return str(value.get("@odata.id")) if isinstance(value, dict) and value.get("@odata.id") else default


def as_bmc(bmc: RedfishBmc) -> Bmc:
    """RedfishBmc is a Bmc: mypy checks the protocol here."""
    return bmc
