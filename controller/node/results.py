"""What each step of a node's pipeline returns: one frozen dataclass per phase, and the one codec that
stores them in the journal and reads them back (pydantic's TypeAdapter over the dataclasses, so a
journal row that does not fit its type is an error, not a KeyError three steps later)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import TypeAdapter

from controller.bmc.base import BootStatus, Identity, MediaStatus, PowerState, SecureBootStatus
from controller.node.states import Phase


@dataclass(frozen=True)
class PreflightResult:
    identity: Identity  # its secure_boot: as found
    media: MediaStatus
    boot: BootStatus
    secure_boot: SecureBootStatus | None = None  # as read back after preflight set it (bmc.secure_boot on/off)


@dataclass(frozen=True)
class MediaResult:
    media: MediaStatus


@dataclass(frozen=True)
class BootResult:
    boot: BootStatus
    was: PowerState  # the power state the node was in: on means it was force-restarted
    secure_boot: SecureBootStatus | None = None  # as read after the restart, when the inventory asked on/off


@dataclass(frozen=True)
class LiveResult:
    """Where the live system answered SSH with the pinned host key."""

    address: str
    port: int


@dataclass(frozen=True)
class InspectResult:
    """What the live system is and what the install would do there (nothing written)."""

    report: dict[str, Any]  # installer/inspect.py's report: hardware, the chosen disk and what it holds
    checks: tuple[dict[str, Any], ...]  # controller/inspection.py's Check.as_dict(), one per requirement
    statement: str  # the wipe, in one line

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [c for c in self.checks if c.get("status") == "fail"]


@dataclass(frozen=True)
class InstallResult:
    remote: str  # the installer's directory on the live system
    exit_code: int


@dataclass(frozen=True)
class CollectResult:
    report: dict[str, Any]  # the installer's final report, as it wrote it
    logs: str  # where its logs were fetched to

    @property
    def host_keys(self) -> tuple[str, ...]:
        return tuple(self.report.get("ssh_host_keys") or ())

    @property
    def disk(self) -> str | None:
        """The disk the installer chose: its stable /dev/disk/by-id name where it has one."""
        disk = self.report.get("disk") or {}
        by_id = [str(link) for link in disk.get("links") or () if str(link).startswith("/dev/disk/by-id/")]
        return by_id[0] if by_id else disk.get("path")


@dataclass(frozen=True)
class FinalizeResult:
    boot: BootStatus


@dataclass(frozen=True)
class VerifyResult:
    """The installed system answered as the deploy user, with the host keys the installer reported,
    and proved the install (controller/node/proof.py): its install marker says complete for this run,
    its root filesystem is on the disk the install chose, and the BMC shows no virtual media inserted.
    (A journal row from before the proof decodes with the proof fields empty.)"""

    address: str
    host_keys: tuple[str, ...]
    hostname: str
    marker_run: str = ""  # the run the complete marker names (this attempt's)
    root_source: str = ""  # the device mounted at / (the root LV)
    root_disk: str = ""  # the whole disk under it, as the installed system names it
    root_serial: str = ""  # that disk's serial (or WWN) as the installed system reads it
    matched_by: str = ""  # serial | wwn | path: how it was matched to the chosen disk
    media_ejected: bool = False  # the BMC showed no virtual media inserted


StepResult = (PreflightResult | MediaResult | BootResult | LiveResult | InspectResult | InstallResult | CollectResult
              | FinalizeResult | VerifyResult)
Results = Mapping[Phase, StepResult]  # one attempt's finished steps

RESULT_TYPES: dict[Phase, type[Any]] = {
    Phase.PREFLIGHT: PreflightResult,
    Phase.MEDIA: MediaResult,
    Phase.BOOT: BootResult,
    Phase.LIVE: LiveResult,
    Phase.INSPECT: InspectResult,
    Phase.INSTALL: InstallResult,
    Phase.COLLECT: CollectResult,
    Phase.FINALIZE: FinalizeResult,
    Phase.VERIFY: VerifyResult,
}
_ADAPTERS = {phase: TypeAdapter(kind) for phase, kind in RESULT_TYPES.items()}

R = TypeVar("R")


class ResultCodecError(ValueError):
    """A stored step result that does not fit its phase's type (a journal from another version)."""


def encode(phase: Phase, result: StepResult) -> dict[str, Any]:
    """The JSON-ready form of a step result (for the journal and the event stream)."""
    if not isinstance(result, RESULT_TYPES[phase]):
        raise TypeError(f"{phase} returned a {type(result).__name__}, not a {RESULT_TYPES[phase].__name__}")
    data: dict[str, Any] = _ADAPTERS[phase].dump_python(result, mode="json")
    return data


def decode(phase: Phase, data: Any) -> StepResult:
    """A step result read back from its JSON form."""
    try:
        result: StepResult = _ADAPTERS[phase].validate_python(data)
    except ValueError as err:
        raise ResultCodecError(f"the journal's {phase} result does not fit: {err}") from None
    return result


def result_of(results: Results, phase: Phase, kind: type[R]) -> R:
    """The result an earlier step of this attempt returned, as its own type."""
    result = results[phase]
    if not isinstance(result, kind):
        raise TypeError(f"the {phase} result is a {type(result).__name__}, not a {kind.__name__}")
    return result
