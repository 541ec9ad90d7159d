"""The lab BMC: one emulated Redfish BMC's state and behaviour, vendor quirks included.

`LabBmc` holds what a BMC knows (sessions, virtual media slots, ETags, tasks) and drives a `Machine`
(lab/machine.py); an iDRAC's configuration jobs are its `DellJobQueue` (lab/dell_jobs.py).
lab/bmc_http.py serves it over HTTPS. Refusals are `Refusal` exceptions (lab/faults.py) carrying
the status and Redfish MessageId a real BMC of that personality answers.
"""

from __future__ import annotations

import ipaddress
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from lab.dell_jobs import DELL_JOB_SECONDS, OTHER_JOB, DellJob, DellJobQueue
from lab.faults import Faults, Refusal
from lab.machine import PHYSICAL_OPTICAL, Machine
from lab.personalities import Personality, SlotSpec
from lab.secure_boot import LabSecureBoot

ISO_MAGIC_OFFSET = 0x8001  # "CD001" of the ISO 9660 primary volume descriptor (sector 16)

@dataclass
class SlotState:
    spec: SlotSpec
    image: str | None = None
    inserted: bool = False
    connected_via: str = "NotConnected"
    transfer_protocol: str | None = None
    credentials: tuple[str, str] | None = None  # UserName and Password the insert carried, for tests to read
    lingers_until: float = 0.0
    last_image: str | None = None  # what the last eject took out (Faults.media_back_after_restart)


@dataclass
class LabBmc:
    """One emulated BMC (see the module docstring)."""

    personality: Personality
    machine: Machine
    username: str
    password: str
    faults: Faults = field(default_factory=Faults)
    time_scale: float = 1.0
    seed: int = 0
    fetcher: aiohttp.ClientSession | None = None
    sessions: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    writes: list[str] = field(default_factory=list)  # "METHOD path" of every request but GET and HEAD, for tests
    actions: list[str] = field(default_factory=list)  # every state change, in order, for tests to read
    refusals: list[int] = field(default_factory=list)  # the status of every refused request
    _versions: dict[str, int] = field(default_factory=dict)
    _slots: dict[str, SlotState] = field(default_factory=dict)
    _tasks: dict[str, tuple[float, Callable[[], None]]] = field(default_factory=dict)
    # Dell: attribute changes staged without a job: an import answers LC068, a restart does not apply them
    pending_changes: bool = False
    _unseen: dict[str, int] = field(default_factory=dict)  # NOTE(dell/idrac10): 404s left per new task
    _next_id: int = 0
    # A multi-node chassis lists several systems: these are listed and read (powered off), never acted on
    other_systems: tuple[str, ...] = ()
    _last_off: float = -1e9
    _last_on: float = -1e9

    def __post_init__(self) -> None:
        self._slots = {s.id: SlotState(s) for s in self.personality.slots}
        p = self.personality
        self.secure_boot = LabSecureBoot(p.secure_boot, p.secure_boot_mode, p.secure_boot_reset_message)
        self.rng = random.Random(self.seed)
        self.dell = DellJobQueue(self)

    # -- paths and versions --------------------------------------------------------------------------

    @property
    def system_path(self) -> str:
        return f"/redfish/v1/Systems/{self.personality.system_id}"

    @property
    def manager_path(self) -> str:
        return f"/redfish/v1/Managers/{self.personality.manager_id}"

    @property
    def settings_path(self) -> str:
        """NOTE(dell/idrac10): the System's @Redfish.Settings object, where Boot is written."""
        return f"{self.system_path}/Settings"

    @property
    def import_path(self) -> str:
        return f"{self.manager_path}/Actions/Oem/EID_674_Manager.ImportSystemConfiguration"

    @property
    def media_path(self) -> str:
        owner = self.system_path if self.personality.media_under == "Systems" else self.manager_path
        return f"{owner}/VirtualMedia"

    def etag(self, resource: str) -> str:
        return f'"{resource}-{self._versions.get(resource, 0)}"'

    def bump(self, resource: str) -> None:
        self._versions[resource] = self._versions.get(resource, 0) + 1

    def check_if_match(self, resource: str, if_match: str | None) -> None:
        if if_match is None or if_match == "*":
            return
        if self.faults.reject_if_match or if_match.removeprefix("W/") != self.etag(resource):
            raise Refusal(412, "Base.1.8.PreconditionFailed", "the ETag in If-Match is not current")

    def _within(self, since: float, seconds: float) -> bool:
        return time.monotonic() - since < seconds * self.time_scale

    def new_id(self) -> int:
        """The next id: sessions, task monitors and Dell jobs share one counter, as on a real BMC."""
        self._next_id += 1
        return self._next_id

    # -- sessions --------------------------------------------------------------------------------------

    def open_session(self, username: str, password: str) -> tuple[str, str]:
        if self.faults.sessions_disabled:
            raise Refusal(404, "Base.1.8.ResourceMissingAtURI", "there is no SessionService")
        if not (secrets.compare_digest(username, self.username) and secrets.compare_digest(password, self.password)):
            raise Refusal(401, "Base.1.8.NoValidSession", "invalid user name or password")
        limit = self.faults.max_sessions or self.personality.max_sessions
        if len(self.sessions) >= limit:
            # NOTE(dell/idrac9): RAC0218 "The maximum number of user sessions is reached", as 503.
            raise Refusal(503, "Base.1.8.SessionLimitExceeded", f"the maximum of {limit} sessions is reached")
        session_id = self.new_id()
        token = secrets.token_hex(16)
        self.sessions[token] = str(session_id)
        return token, f"/redfish/v1/SessionService/Sessions/{session_id}"

    def close_session(self, session_id: str) -> None:
        for token, sid in list(self.sessions.items()):
            if sid == session_id:
                del self.sessions[token]
                return
        raise Refusal(404, "Base.1.8.ResourceMissingAtURI", f"no session {session_id}")

    def authorized(self, token: str | None, basic: tuple[str, str] | None) -> bool:
        if token is not None:
            return token in self.sessions
        if basic is not None:
            return secrets.compare_digest(basic[0], self.username) and secrets.compare_digest(basic[1], self.password)
        return False

    # -- power -----------------------------------------------------------------------------------------

    async def reset(self, reset_type: str) -> None:
        p = self.personality
        if reset_type in ("On", "ForceOn"):
            if self.machine.power_state == "On":
                return
            if self._within(self._last_off, p.poweron_conflict_after_off):
                raise Refusal(409, "Base.1.8.ActionParameterValueConflict",
                              "the server is still powering off; try again later")
            self._firmware_starts()
            await self.machine.power_on()
            self._last_on = time.monotonic()
        elif reset_type == "ForceOff":
            await self.machine.power_off()
            self._last_off = time.monotonic()
        elif reset_type == "GracefulShutdown":
            await self.machine.graceful_shutdown()
            self._last_off = time.monotonic()
        elif reset_type in ("ForceRestart", "GracefulRestart", "PowerCycle"):
            self._firmware_starts()
            await self.machine.restart()
            self._last_on = time.monotonic()
            if self.faults.media_back_after_restart:
                self._media_back()
        else:
            raise Refusal(400, "Base.1.8.ActionParameterNotSupported", f"ResetType {reset_type} not supported")
        self.actions.append(f"reset {reset_type}")
        self.boot_changed()
        if reset_type not in ("ForceOff", "GracefulShutdown"):
            self.dell.run_scheduled_jobs()  # the server starts: the jobs waiting for it run during its POST

    def _firmware_starts(self) -> None:
        """A reset: the firmware applies its settings (Secure Boot: lab/secure_boot.py) before it boots."""
        self.machine.secure_boot = self.secure_boot.at_reset()
        self.bump("secure_boot")

    def busy(self) -> bool:
        return self._within(self._last_off, self.faults.busy_after_power_off)

    # -- boot ------------------------------------------------------------------------------------------

    def boot_changed(self) -> None:
        self.bump("system")
        self.bump("settings")

    def boot_target_shown(self) -> str:
        """The override target as Redfish shows it: an old iDRAC says Cd for its physical drive too."""
        target = self.machine.boot.target
        return "Cd" if target == PHYSICAL_OPTICAL else target

    def patch_boot(self, boot: dict[str, Any], *, via_settings: bool = False) -> None:
        p = self.personality
        if p.boot_in_settings and not via_settings and boot:
            # NOTE(dell/idrac10): Boot is written through the Settings object (sushy bug 2121895).
            name = next(iter(boot))
            raise Refusal(400, "Base.1.12.PropertyNotWritable",
                          f"The property {name} is a read only property and cannot be assigned a value.")
        if self._within(self._last_on, p.refuse_during_post):
            # NOTE(hpe/ilo5): boot changes are refused while the server is in POST.
            raise Refusal(400, "iLO.2.14.UnableToModifyDuringSystemPOST",
                          "the value cannot be changed while the server is in POST")
        keys = ("BootSourceOverrideTarget", "BootSourceOverrideEnabled", "BootSourceOverrideMode")
        if p.full_boot_object and not all(k in boot for k in keys):
            missing = [k for k in keys if k not in boot]
            raise Refusal(400, "Base.1.8.PropertyMissing", f"the full Boot object is required: {missing} missing")
        target = boot.get("BootSourceOverrideTarget", self.boot_target_shown())
        if target not in p.boot_targets:
            raise Refusal(400, "Base.1.8.PropertyValueNotInList",
                          f"BootSourceOverrideTarget {target} is not one of {', '.join(p.boot_targets)}")
        enabled = boot.get("BootSourceOverrideEnabled", self.machine.boot.enabled)
        if enabled not in ("Disabled", "Once", "Continuous"):
            raise Refusal(400, "Base.1.8.PropertyValueNotInList", f"BootSourceOverrideEnabled {enabled}")
        # NOTE(dell/idrac9 < 6.00, idrac8): the standard Cd is the physical drive, not the virtual CD.
        device = PHYSICAL_OPTICAL if p.cd_override_boots_physical and target == "Cd" else target
        self.machine.boot.target = device
        self.machine.boot.enabled = enabled
        self.machine.boot.mode = boot.get("BootSourceOverrideMode", self.machine.boot.mode)
        self.actions.append(f"boot {device} {enabled}")
        self.boot_changed()

    # -- Dell OEM: Server Configuration Profile import (the jobs: lab/dell_jobs.py) ----------------------

    def import_system_configuration(self, body: dict[str, Any]) -> str:
        """Start an ImportSystemConfiguration job; returns its task path (answered 202 + Location)."""
        return self.dell.import_configuration(body)

    def start_config_job(self, name: str = OTHER_JOB, seconds: float | None = DELL_JOB_SECONDS) -> str:
        """Another configuration job (not pvcctl's), Running for `seconds` times time_scale, or until
        `finish_job` when None; returns its id."""
        return self.dell.start_config_job(name, seconds)

    def schedule_config_job(self, name: str = OTHER_JOB) -> str:
        """A configuration job waiting for the server's next restart; returns its id."""
        return self.dell.schedule_config_job(name)

    def finish_job(self, job_id: str) -> None:
        """A held Running job ends now (it completes at its next read)."""
        self.dell.finish_job(job_id)

    def job(self, job_id: str) -> DellJob:
        """A job as its Location shows it."""
        return self.dell.job(job_id)

    def hold_back(self, task_id: str) -> None:
        # NOTE(dell/idrac10): the Location of a task or job it has just created answers 404 for a while.
        self._unseen[task_id] = self.personality.new_task_404_reads

    def not_shown_yet(self, task_id: str, path: str) -> None:
        if self._unseen.get(task_id, 0) > 0:
            self._unseen[task_id] -= 1
            raise Refusal(404, "Base.1.12.ResourceMissingAtURI", f"The requested resource {path} was not found.")

    # -- virtual media ---------------------------------------------------------------------------------

    def slot(self, slot_id: str) -> SlotState:
        if slot_id not in self._slots:
            raise Refusal(404, "Base.1.8.ResourceMissingAtURI", f"no virtual media slot {slot_id}")
        if self.faults.license_missing:
            # NOTE(supermicro): without the DCMS/OOB licence virtual media answers 403.
            raise Refusal(403, "SMC.1.0.OemLicenseNotPassed", "virtual media needs a licence (SFT-DCMS-SINGLE)")
        return self._slots[slot_id]

    def slot_inserted(self, state: SlotState) -> bool:
        return state.inserted or time.monotonic() < state.lingers_until

    async def insert(self, slot_id: str, body: dict[str, Any], *, by_patch: bool = False) -> str | None:
        """Insert an image; returns a task monitor path when the personality answers 202."""
        state, p = self.slot(slot_id), self.personality
        url = str(body.get("Image") or "")
        self._check_insert(state, body, url, by_patch)
        await self.check_image(url)
        protocol = body.get("TransferProtocolType")
        credentials = (str(body["UserName"]), str(body.get("Password", ""))) if "UserName" in body else None

        def apply() -> None:
            state.image, state.inserted, state.connected_via = url, True, "URI"
            state.transfer_protocol = protocol
            state.credentials = credentials
            if slot_id == self._first_cd():
                self.machine.insert_cd(url)
            self.actions.append(f"insert {slot_id} {url}")
            self.bump(slot_id)

        if p.insert_returns_task and not by_patch:
            return self._start_task(apply)
        apply()
        return None

    def _check_insert(self, state: SlotState, body: dict[str, Any], url: str, by_patch: bool) -> None:
        p = self.personality
        if not state.spec.takes_images:
            raise Refusal(400, "Base.1.8.ActionNotSupported", f"slot {state.spec.id} is reserved for the KVM console")
        if time.monotonic() < state.lingers_until:
            # NOTE(dell/idrac9): the last eject is still in progress.
            raise Refusal(500, "IDRAC.2.9.RAC0904", "virtual media is detached or in use; retry later")
        if not by_patch and p.rejects_insert_flags and ("Inserted" in body or "WriteProtected" in body):
            raise Refusal(400, "Base.1.8.ActionParameterUnknown", "Inserted and WriteProtected are not supported")
        if not by_patch and p.needs_transfer_protocol and "TransferProtocolType" not in body:
            raise Refusal(400, "Base.1.8.ActionParameterMissing",
                          "the action requires the parameter TransferProtocolType")
        if not by_patch and p.insert_needs_credentials:
            missing = next((k for k in ("UserName", "Password") if not body.get(k)), None)
            if missing:
                # NOTE(nvidia/dgx): even for an anonymous HTTP image; no error.code (sushy bug 2071945).
                raise Refusal(400, "Base.1.15.ActionParameterMissing",
                              f"The action VirtualMedia.InsertMedia requires the parameter {missing} to be "
                              "present in the request body.", with_code=False)
        if not url:
            raise Refusal(400, "Base.1.8.ActionParameterMissing", "the action requires the parameter Image")
        if p.https_images_only and not url.startswith("https://"):
            raise Refusal(400, "Base.1.8.ActionParameterValueFormatError", "only https:// and smb:// images")
        if p.image_must_end_iso and not urlsplit(url).path.lower().endswith(".iso"):
            raise Refusal(400, "iLO.2.14.InvalidImageName", "the image name must end in .iso")
        if self.slot_inserted(state) and state.connected_via != "NotConnected":
            raise Refusal(409, "Base.1.8.ResourceInUse", f"slot {state.spec.id} holds media: eject it first")

    def eject(self, slot_id: str, *, has_body: bool, by_patch: bool = False) -> None:
        state, p = self.slot(slot_id), self.personality
        if not by_patch and p.eject_needs_body and not has_body:
            raise Refusal(415, "Base.1.8.UnsupportedMediaType", "a JSON body is required")
        if not state.inserted:
            return
        if p.not_connected_after_eject:
            state.connected_via = "NotConnected"  # NOTE(supermicro): Image and Inserted stay as they were
        else:
            state.last_image = state.image
            state.image, state.inserted, state.connected_via = None, False, "NotConnected"
            state.credentials = None
        state.lingers_until = time.monotonic() + p.eject_lingers * self.time_scale
        if slot_id == self._first_cd():
            self.machine.eject_cd()
        self.actions.append(f"eject {slot_id}")
        self.bump(slot_id)

    def _media_back(self) -> None:
        """The last ejected image shows as inserted again (after the machine chose what to boot)."""
        for slot_id, state in self._slots.items():
            if state.last_image and not state.inserted:
                state.image, state.inserted, state.connected_via = state.last_image, True, "URI"
                self.bump(slot_id)

    def _first_cd(self) -> str:
        return next((s.id for s in self.personality.slots if "CD" in s.media_types and s.takes_images), "")

    async def check_image(self, url: str) -> None:
        """Read the image as a BMC does: HEAD for its size, then a Range GET of its ISO 9660 header."""
        host = urlsplit(url).hostname or ""
        if not _on_this_machine(host):
            raise Refusal(400, "Oem.Lab.ImageNotLocal",
                          f"the lab BMC fetches images from this machine only (loopback or its own addresses), "
                          f"not {host}")
        assert self.fetcher is not None
        try:
            async with self.fetcher.head(url, ssl=False) as head:
                size = int(head.headers.get("Content-Length", "-1"))
                if head.status != 200 or size < ISO_MAGIC_OFFSET + 5:
                    raise Refusal(400, "Oem.Lab.ImageNotAccessible",
                                  f"HEAD {url} answered {head.status} with size {size}")
            wanted = f"bytes={ISO_MAGIC_OFFSET}-{ISO_MAGIC_OFFSET + 4}"
            async with self.fetcher.get(url, headers={"Range": wanted}, ssl=False) as part:
                data = await part.read()
                if part.status != 206 or data != b"CD001":
                    raise Refusal(400, "Oem.Lab.ImageNotAccessible",
                                  f"Range GET {url} answered {part.status}, not an ISO 9660 header")
        except (aiohttp.ClientError, TimeoutError) as err:
            raise Refusal(400, "Oem.Lab.ImageNotAccessible", f"cannot read {url}: {err.__class__.__name__}") from None

    # -- tasks -----------------------------------------------------------------------------------------

    def _start_task(self, apply: Callable[[], None]) -> str:
        task_id = str(self.new_id())
        self._tasks[task_id] = (time.monotonic() + 2.0 * self.time_scale, apply)
        self.hold_back(task_id)
        return f"/redfish/v1/TaskService/TaskMonitors/{task_id}"

    def task_state(self, task_id: str) -> str:
        if task_id not in self._tasks:
            raise Refusal(404, "Base.1.8.ResourceMissingAtURI", f"no task {task_id}")
        self.not_shown_yet(task_id, f"/redfish/v1/TaskService/TaskMonitors/{task_id}")
        done_at, apply = self._tasks[task_id]
        if time.monotonic() < done_at:
            return "Running"
        if apply is not _applied:
            apply()
            self._tasks[task_id] = (done_at, _applied)
        return "Completed"

    def fault_roll(self, rate: float) -> bool:
        return rate > 0 and self.rng.random() < rate


def _applied() -> None:
    """Marks a task whose effect has been applied."""


def _on_this_machine(host: str) -> bool:
    """Loopback, or an address of this machine (of its network namespace): lab traffic never leaves it."""
    import socket

    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost"
    if address.is_loopback:
        return True
    with socket.socket(socket.AF_INET6 if address.version == 6 else socket.AF_INET) as probe:
        try:
            probe.bind((host, 0))
        except OSError:
            return False
    return True
