"""Dell's Lifecycle Controller job queue on a lab iDRAC: Server Configuration Profile imports as jobs.

An ImportSystemConfiguration starts a job that runs for seconds, then applies the profile's
ServerBoot attributes to the machine and says how that went (SYS053 applied, SYS069 nothing to
change, or Failed). An import is refused while another configuration job runs (RAC0679) or while
changes wait for the server's next restart (LC068); a restart runs the jobs that wait for it.
`LabBmc` (lab/bmc.py) owns one queue and is its `JobHost`.
"""

from __future__ import annotations

import math
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from lab.faults import Faults, Refusal
from lab.machine import PHYSICAL_OPTICAL, BootOverride, Machine
from lab.personalities import Personality

# Dell's ServerBoot.1#FirstBootDevice values and what they boot here: VCD-DVD is the virtual CD,
# CD-DVD the machine's own optical drive.
SCP_BOOT_DEVICES = {"VCD-DVD": "Cd", "CD-DVD": PHYSICAL_OPTICAL, "HDD": "Hdd", "PXE": "Pxe", "Normal": "None",
                    "BIOS": "BiosSetup"}
SCP_TARGETS = ("ALL", "IDRAC", "BIOS", "NIC", "RAID", "FC", "LifecycleController", "System", "EventFilters")
DELL_JOB_SECONDS = 4.0  # a Lifecycle Controller configuration job runs for seconds (times time_scale)
OTHER_JOB = "Configure: BIOS.Setup.1-1"  # a configuration job that is not pvcctl's (tests start them)


class JobFailed(Exception):
    """A Dell job that ends Failed, with its MessageId and Message."""

    def __init__(self, message_id: str, message: str):
        self.message_id = message_id
        self.message = message
        super().__init__(f"{message_id}: {message}")


@dataclass
class DellJob:
    """A Lifecycle Controller job: Running for a while, then it applies and says how that went.

    A configuration job that waits for the server's next restart is Scheduled until then: what the
    iDRAC calls pending configuration. A Running job ends at `done_at` (inf: when a test says so).
    """

    id: str
    done_at: float
    run: Callable[[], tuple[str, str]]  # applies; returns (MessageId, Message) or raises JobFailed
    state: str = "Running"  # Scheduled, Running, then Completed or Failed
    message_id: str = ""
    message: str = "Importing Server Configuration Profile."
    name: str = "Import Configuration"
    job_type: str = "ImportConfiguration"


class JobHost(Protocol):
    """What the queue needs of its BMC (lab.bmc.LabBmc); read at each use, as tests change them."""

    machine: Machine
    personality: Personality
    faults: Faults
    time_scale: float
    pending_changes: bool  # attribute changes staged without a job: an import answers LC068
    actions: list[str]

    def new_id(self) -> int:
        """The BMC's next id (sessions, tasks and jobs share one counter)."""

    def boot_changed(self) -> None:
        """The machine's boot override changed: new ETags."""

    def hold_back(self, task_id: str) -> None:
        """NOTE(dell/idrac10): a task it has just created is not shown for a few reads."""

    def not_shown_yet(self, task_id: str, path: str) -> None:
        """Raises the 404 of a task still held back."""


@dataclass
class DellJobQueue:
    """One iDRAC's configuration jobs, by id."""

    host: JobHost = field(repr=False)
    jobs: dict[str, DellJob] = field(default_factory=dict)

    def import_configuration(self, body: dict[str, Any]) -> str:
        """Start an ImportSystemConfiguration job; returns its task path (answered 202 + Location)."""
        share = body.get("ShareParameters")
        target = share.get("Target") if isinstance(share, dict) else None
        targets = [target] if isinstance(target, str) else target if isinstance(target, list) else []
        if not targets:
            raise Refusal(400, "Base.1.12.ActionParameterMissing",
                          "The action ImportSystemConfiguration requires the parameter ShareParameters/Target.")
        unknown = [t for t in targets if t not in SCP_TARGETS]
        if unknown:
            raise Refusal(400, "Base.1.12.ActionParameterValueNotInList",
                          f"The value {unknown[0]} for the parameter Target is not in the list of acceptable values.")
        buffer = body.get("ImportBuffer")
        if not isinstance(buffer, str) or not buffer:
            raise Refusal(400, "Base.1.12.ActionParameterMissing",
                          "The action ImportSystemConfiguration requires the parameter ImportBuffer.")
        self._refuse_while_configuring()
        applies = "ALL" in targets or "IDRAC" in targets
        job_id = self._new_job_id()
        self.jobs[job_id] = DellJob(job_id, time.monotonic() + DELL_JOB_SECONDS * self.host.time_scale,
                                     lambda: self._apply_profile(buffer, applies))
        self.host.hold_back(job_id)
        return f"/redfish/v1/TaskService/Tasks/{job_id}"

    def _refuse_while_configuring(self) -> None:
        """An import waits for the Lifecycle Controller: another configuration job running (RAC0679),
        or changes pending until the server restarts (LC068). The wording is the lab's own."""
        running = next((j for j in self.jobs.values() if self._refresh(j).state == "Running"), None)
        if running is not None:
            raise Refusal(503, "IDRAC.2.9.RAC0679",
                          f"Unable to start the import because the configuration job {running.id} is already "
                          "running. Wait for it to complete, then retry.")
        scheduled = next((j for j in self.jobs.values() if j.state == "Scheduled"), None)
        if scheduled is not None or self.host.pending_changes:
            what = f"the job {scheduled.id} waits for" if scheduled is not None else "staged changes wait for"
            raise Refusal(400, "IDRAC.2.9.LC068",
                          f"Unable to start the import because configuration changes are pending ({what} a "
                          "server restart). Apply them by restarting the server, or delete them, then retry.")

    def _new_job_id(self) -> str:
        return f"JID_{int(time.time()) % 10**9:09d}{self.host.new_id():03d}"

    def start_config_job(self, name: str = OTHER_JOB, seconds: float | None = DELL_JOB_SECONDS) -> str:
        """Another configuration job (not pvcctl's), Running for `seconds` times time_scale, or until
        `finish_job` when None; returns its id."""
        job_id = self._new_job_id()
        done_at = math.inf if seconds is None else time.monotonic() + seconds * self.host.time_scale
        self.jobs[job_id] = DellJob(job_id, done_at, _configured, message="Job in progress.", name=name,
                                     job_type="BIOSConfiguration")
        self.host.actions.append(f"job {job_id} {name} Running")
        return job_id

    def schedule_config_job(self, name: str = OTHER_JOB) -> str:
        """A configuration job waiting for the server's next restart (pending configuration); the
        restart runs it for DELL_JOB_SECONDS times time_scale. Returns its id."""
        job_id = self._new_job_id()
        self.jobs[job_id] = DellJob(job_id, math.inf, _configured, state="Scheduled",
                                     message="Task successfully scheduled.", name=name, job_type="BIOSConfiguration")
        self.host.actions.append(f"job {job_id} {name} Scheduled")
        return job_id

    def finish_job(self, job_id: str) -> None:
        """A held Running job ends now (it completes at its next read)."""
        self.jobs[job_id].done_at = time.monotonic()

    def run_scheduled_jobs(self) -> None:
        """The server (re)starts: the jobs waiting for it run during its POST."""
        for job in self.jobs.values():
            if job.state == "Scheduled":
                job.state, job.message = "Running", "Job in progress."
                job.done_at = time.monotonic() + DELL_JOB_SECONDS * self.host.time_scale
                self.host.actions.append(f"job {job.id} {job.name} Running")

    def _apply_profile(self, buffer: str, applies: bool) -> tuple[str, str]:
        if self.host.faults.config_jobs_fail:  # the lab's stand-in for a Lifecycle Controller that cannot apply
            raise JobFailed("Oem.Lab.ConfigJobFailed", "Unable to complete application of configuration profile "
                                                       "values.")
        if re.search(r">\s|\s<", buffer):
            # The iDRAC job fails on insignificant whitespace in the XML (sushy oem/dell manager.py).
            raise JobFailed("Oem.Lab.ProfileNotParsed", "Unable to parse the configuration profile: "
                                                        "it has whitespace between or around its elements.")
        try:
            root = ET.fromstring(buffer)
        except ET.ParseError as err:
            raise JobFailed("Oem.Lab.ProfileNotParsed", f"Unable to parse the configuration profile: {err}") from None
        if root.tag != "SystemConfiguration":
            raise JobFailed("Oem.Lab.ProfileNotParsed", f"the profile root is {root.tag}, not SystemConfiguration")
        wanted: dict[str, str] = {}
        for component in root.iter("Component"):
            if not applies or component.get("FQDD") != self.host.personality.manager_id:
                continue
            for attribute in component.iter("Attribute"):
                wanted[str(attribute.get("Name"))] = attribute.text or ""
        boot = self.host.machine.boot
        current_device = next((d for d, t in SCP_BOOT_DEVICES.items() if t == boot.target), "Normal")
        once = wanted.pop("ServerBoot.1#BootOnce", "Enabled" if boot.enabled == "Once" else "Disabled")
        device = wanted.pop("ServerBoot.1#FirstBootDevice", current_device)
        if wanted:
            raise JobFailed("Oem.Lab.AttributeUnknown", f"the lab does not know the attribute {next(iter(wanted))}")
        if once not in ("Enabled", "Disabled") or device not in SCP_BOOT_DEVICES:
            raise JobFailed("Oem.Lab.AttributeValueInvalid",
                            f"ServerBoot.1#BootOnce {once} / ServerBoot.1#FirstBootDevice {device} is not valid")
        target = SCP_BOOT_DEVICES[device]
        enabled = "Disabled" if target == "None" else "Once" if once == "Enabled" else "Continuous"
        if (target, enabled) == (boot.target, boot.enabled):
            return "SYS069", ("No changes were applied since the current component configuration matched the "
                              "requested configuration.")
        self.host.machine.boot = BootOverride(target=target, enabled=enabled, mode=boot.mode)
        self.host.actions.append(f"boot {target} {enabled} by ImportSystemConfiguration {device}")
        self.host.boot_changed()
        return "SYS053", "Successfully imported and applied Server Configuration Profile."

    def job(self, job_id: str) -> DellJob:
        """A job as its Location shows it."""
        if job_id not in self.jobs:
            raise Refusal(404, "Base.1.12.ResourceMissingAtURI", f"no job {job_id}")
        self.host.not_shown_yet(job_id, f"/redfish/v1/TaskService/Tasks/{job_id}")
        return self._refresh(self.jobs[job_id])

    def _refresh(self, job: DellJob) -> DellJob:
        if job.state == "Running" and time.monotonic() >= job.done_at:
            try:
                job.message_id, job.message = job.run()
                job.state = "Completed"
            except JobFailed as failed:
                job.message_id, job.message, job.state = failed.message_id, failed.message, "Failed"
        return job


def _configured() -> tuple[str, str]:
    """What a configuration job that is not pvcctl's says when it is done."""
    return "SYS053", "Successfully applied the configuration."
