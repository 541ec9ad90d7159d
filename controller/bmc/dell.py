"""Dell iDRAC OEM: the one-time boot from the virtual CD, by a Server Configuration Profile import.

NOTE(dell/idrac9 < 6.00, idrac8): on these firmwares the standard `BootSourceOverrideTarget: Cd`
boots the server's physical optical drive, not the virtual CD. Dell's way is to import a profile
that sets `ServerBoot.1#BootOnce` and `ServerBoot.1#FirstBootDevice = VCD-DVD`: the import answers
202 with a job, and the job's message says whether the setting took. See controller/bmc/quirks.py
(`cd_boot_dell_oem`) for when this is used and its sources.

The Lifecycle Controller takes one configuration job at a time. While another one runs, the import is
refused with RAC0679: pvcctl waits and sends it again. While configuration changes are pending until
the server restarts, it is refused with LC068: pvcctl restarts the server once (through the caller,
which announces it), then waits and sends it again as for RAC0679. Both waits end at a deadline of
their own (`refused_deadline`), after which the iDRAC's answer and what to do about it is the error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from controller.bmc.channel import RedfishChannel, Resource
from controller.bmc.errors import BmcRequestError, FailureClass, WriteOutcome

log = logging.getLogger(__name__)

IMPORT_ACTION = "#OemManager.ImportSystemConfiguration"
IDRAC_FQDD = "iDRAC.Embedded.1"
# The iDRAC fails the job if this XML has insignificant whitespace: keep it on one line, untouched.
BOOT_ONCE_VIRTUAL_CD = (
    '<SystemConfiguration><Component FQDD="{fqdd}">'
    '<Attribute Name="ServerBoot.1#BootOnce">Enabled</Attribute>'
    '<Attribute Name="ServerBoot.1#FirstBootDevice">VCD-DVD</Attribute>'
    "</Component></SystemConfiguration>"
)
# What a finished import job says when the setting is in place.
_APPLIED = ("Successfully imported", "No changes")
_JOB_DONE = frozenset({"Completed", "CompletedWithErrors", "Failed", "Cancelled", "Exception", "Killed",
                       "Interrupted", "RebootFailed"})
JOB_HINT = ("the iDRAC did not set the one-time boot to the virtual CD: check its Lifecycle Controller job "
            "queue (clear stale jobs) and retry")
# Why an iDRAC refuses a configuration import for now (sushy oem/dell constants.py).
JOB_RUNNING = "RAC0679"  # another configuration job is running
CONFIG_PENDING = "LC068"  # configuration changes are pending until the server restarts
RUNNING_HINT = ("another Lifecycle Controller configuration job kept running on the iDRAC: let it finish, or "
                "delete it in the iDRAC's Job Queue, then retry")
PENDING_HINT = ("the iDRAC has configuration changes pending that a restart did not apply: apply or delete them "
                "in the iDRAC's Job Queue, then retry")


@dataclass
class PendingRestart:
    """Restarts the server at most once per boot step, to apply the iDRAC's pending configuration (LC068).

    `restart` is the caller's: it restarts only the system the inventory's node names, and says so first.
    """

    restart: Callable[[str], Awaitable[None]]
    done: bool = False

    async def once(self, why: str) -> bool:
        """Restart unless this step has already; True if it restarted now."""
        if self.done:
            return False
        self.done = True  # once, even if the restart fails half-way
        await self.restart(why)
        return True


def import_target(manager: Resource) -> str:
    """The ImportSystemConfiguration action of this iDRAC: as advertised, else its usual place."""
    oem = ((manager.data.get("Actions") or {}).get("Oem")) or {}
    for key, action in oem.items():
        if key.endswith(IMPORT_ACTION) and isinstance(action, dict) and action.get("target"):
            return str(action["target"])
    return f"{manager.path.rstrip('/')}/Actions/Oem/EID_674_Manager.ImportSystemConfiguration"


def job_state(job: dict[str, Any]) -> str:
    dell = (job.get("Oem") or {}).get("Dell") or {}
    return str(dell.get("JobState") or job.get("TaskState") or "")


def job_message(job: dict[str, Any]) -> tuple[tuple[str, ...], str]:
    """The job's MessageIds and message: Oem.Dell.Message first, else the task's Messages."""
    dell = (job.get("Oem") or {}).get("Dell") or {}
    messages = [m for m in job.get("Messages") or () if isinstance(m, dict)]
    ids = tuple(str(i) for i in [dell.get("MessageId"), *(m.get("MessageId") for m in messages)] if i)
    text = str(dell.get("Message") or "; ".join(str(m.get("Message")) for m in messages if m.get("Message")))
    return tuple(dict.fromkeys(ids)), text


async def boot_once_virtual_cd(channel: RedfishChannel, manager: Resource, *, deadline: float,
                               poll_interval: float, refused_wait: float, refused_deadline: float,
                               restart: PendingRestart) -> str:
    """Import the one-time virtual CD boot and follow its job to the end; returns the job's message.

    Safe to repeat: an iDRAC already so set answers "No changes" in the job. `deadline` bounds the job,
    `refused_deadline` the waits while the iDRAC refuses the import for now (RAC0679, LC068), sent
    again every `refused_wait` seconds.
    """
    fqdd = str(manager.data.get("Id") or IDRAC_FQDD)
    body = {"ShareParameters": {"Target": "ALL"}, "ImportBuffer": BOOT_ONCE_VIRTUAL_CD.format(fqdd=fqdd)}
    action = import_target(manager)
    monitor = await _submit(channel, action, body, wait=refused_wait, deadline=refused_deadline, restart=restart)
    created = time.monotonic()
    job_id = monitor.rstrip("/").rsplit("/", 1)[-1]
    log.info("%s: ImportSystemConfiguration (one-time boot from VCD-DVD) is job %s", manager.path, job_id)
    try:
        state, ids, message = await _follow_job(channel, monitor, job_id, created, deadline, poll_interval)
    except BmcRequestError as err:
        err.outcome = WriteOutcome.ACCEPTED  # the job exists: importing again would queue a second one
        raise
    if state == "Completed" and any(ok.lower() in message.lower() for ok in _APPLIED):
        return message
    raise BmcRequestError(FailureClass.REJECTED, f"Dell job {job_id} (ImportSystemConfiguration of the one-time "
                          f"boot from VCD-DVD) ended {state}: " + " ".join(p for p in (", ".join(ids), message) if p),
                          message_ids=ids, detail=message, hint=JOB_HINT)


async def _follow_job(channel: RedfishChannel, monitor: str, job_id: str, created: float, deadline: float,
                      poll_interval: float) -> tuple[str, tuple[str, ...], str]:
    """Read the job until it is done: its state, MessageIds and message. A read that fails for now
    (busy, reset, timeout) is read again: the job runs on whatever the reads do."""
    until = created + deadline
    while True:
        try:
            _status, job = await channel.get_task(monitor, created=created)
        except BmcRequestError as err:
            if not err.failure.transient or time.monotonic() > until:
                raise
            log.info("%s: %s; reading the job again", monitor, err)
            await asyncio.sleep(poll_interval)
            continue
        state = job_state(job.data)
        ids, message = job_message(job.data)
        if state in _JOB_DONE:
            return state, ids, message
        if time.monotonic() > until:
            raise BmcRequestError(FailureClass.TIMEOUT, f"Dell job {job_id} (ImportSystemConfiguration) is still "
                                  f"{state or 'running'} after {deadline:g} s" + (f": {message}" if message else ""),
                                  hint=JOB_HINT)
        await asyncio.sleep(poll_interval)


async def _submit(channel: RedfishChannel, action: str, body: dict[str, Any], *, wait: float, deadline: float,
                  restart: PendingRestart) -> str:
    """POST the import until the iDRAC takes it; returns the job's monitor.

    NOTE(dell/idrac9 < 6.00, idrac8): RAC0679 (a job running) is waited out; LC068 (changes pending)
    restarts the server once, then is waited out too. Whatever the HTTP status they come with.
    """
    until = time.monotonic() + deadline
    while True:
        try:
            return await channel.submit("POST", action, body)
        except BmcRequestError as err:
            if not err.has_message(JOB_RUNNING, CONFIG_PENDING):
                raise
            answer = " ".join(p for p in (", ".join(err.message_ids), err.detail) if p) or str(err)
            if err.has_message(CONFIG_PENDING) and await restart.once(answer):
                continue  # the pending changes apply while the server starts: send the import again
            if time.monotonic() + wait > until:
                raise _still_refused(err, answer, deadline, restart.done) from None
            log.info("%s: the iDRAC refuses the import for now (%s); sending it again in %g s", action, answer, wait)
            await asyncio.sleep(wait)


def _still_refused(err: BmcRequestError, answer: str, deadline: float, restarted: bool) -> BmcRequestError:
    pending = err.has_message(CONFIG_PENDING)
    why = ("configuration changes are pending" + (" after pvcctl restarted the server once" if restarted else "")
           if pending else "another configuration job is running")
    return BmcRequestError(FailureClass.REJECTED, f"the iDRAC still refuses the ImportSystemConfiguration of the "
                           f"one-time boot from VCD-DVD after {deadline:g} s: {why} ({answer})",
                           status=err.status, message_ids=err.message_ids, detail=err.detail,
                           hint=PENDING_HINT if pending else RUNNING_HINT)
