"""The lab BMC's `Systems/{id}/SecureBoot` resource, served as each vendor family serves it.

DMTF SecureBoot.v1_1: SecureBootEnable is what the next boot uses, SecureBootCurrentBoot what the boot
running now enforces, SecureBootMode whether a platform key is enrolled. The emulated state follows
the standard: SecureBootEnable is what was PATCHed, and SecureBootCurrentBoot follows it only at a
reset (a power-on from off, or a restart), when the machine is told whether it boots with Secure
Boot (a QEMU machine then starts Debian's Secure Boot OVMF: lab/qemu.py).

How each personality serves it (`Personality.secure_boot`):

- standard: the PATCH shows at once in SecureBootEnable (sushy-tools' emulator, main.py secure_boot;
  NOTE(hpe/ilo5): answered 200 with iLO.2.x.SystemResetRequired, proliantutils secure_boot.py "Caller
  needs to reset the server"; NOTE(lenovo/xcc): 200 with RebootRequired, SecureBootCurrentBoot still
  Disabled in the answer, pubs.lenovo.com xcc2-restapi update_secure_boot_prop_patch).
- at-reset: NOTE(dell/idrac9): the change is a BIOS configuration job run at the next reset, so
  SecureBootEnable keeps reading the old value until then (ironic redfish/management.py
  _wait_for_secure_boot, commit 6487b958).
- licensed: NOTE(supermicro): 403 OemLicenseNotPassed without the DCMS/OOB licence (ironic commit
  62a44faf, story 2011154).
- none: no SecureBoot link on the System, as a BMC that does not offer it (404 if asked anyway).

`Faults.secure_boot_ignores_patch`: NOTE(lenovo/xcc): without Remote Physical Presence the PATCH is
answered 200 with PhysicalPresenceError and nothing changes (same Lenovo page).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from lab.faults import Refusal

if TYPE_CHECKING:
    from lab.bmc import LabBmc

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class SecureBootStyle(enum.StrEnum):
    STANDARD = "standard"
    AT_RESET = "at-reset"
    LICENSED = "licensed"
    NONE = "none"


@dataclass
class LabSecureBoot:
    """One system's Secure Boot switch as its BMC and firmware keep it."""

    style: SecureBootStyle
    mode: str = "DeployedMode"  # SetupMode: no platform key, so nothing is enforced whatever Enable says
    reset_message: str = ""  # a MessageId the PATCH is answered with (200), else 204
    enable: bool = False
    current: bool = False  # SecureBootCurrentBoot: set at a reset only
    staged: bool | None = None  # at-reset: the value the next reset applies

    def body(self, path: str, etag: str) -> dict[str, Any]:
        return {
            "@odata.id": path, "@odata.type": "#SecureBoot.v1_1_0.SecureBoot", "@odata.etag": etag,
            "Id": "SecureBoot", "Name": "UEFI Secure Boot", "SecureBootEnable": self.enable,
            "SecureBootCurrentBoot": "Enabled" if self.current else "Disabled", "SecureBootMode": self.mode,
            "Actions": {"#SecureBoot.ResetKeys": {"target": f"{path}/Actions/SecureBoot.ResetKeys"}},
        }

    def change(self, value: bool, *, ignored: bool) -> tuple[str, str] | None:
        """A PATCH of SecureBootEnable; the (MessageId, Message) a 200 answer carries, or None for 204."""
        if ignored:
            return ("Lenovo.1.0.PhysicalPresenceError",
                    "The operation failed because of Remote Physical Presence security requirements.")
        if self.style is SecureBootStyle.AT_RESET:
            self.staged = value
        else:
            self.enable = value
        if self.reset_message:
            return self.reset_message, "The change takes effect at the next system reset."
        return None

    def at_reset(self) -> bool:
        """The server starts: a staged change is applied, and the boot enforces Secure Boot or not."""
        if self.staged is not None:
            self.enable, self.staged = self.staged, None
        self.current = self.enable and self.mode != "SetupMode"
        return self.current


def secure_boot_path(bmc: LabBmc) -> str:
    return f"{bmc.system_path}/SecureBoot"


def system_link(bmc: LabBmc) -> dict[str, Any]:
    """What the System body says of it: a link, unless the personality has none."""
    if bmc.secure_boot.style is SecureBootStyle.NONE:
        return {}
    return {"SecureBoot": {"@odata.id": secure_boot_path(bmc)}}


def routes(bmc: LabBmc) -> dict[str, tuple[Handler, Handler]]:
    """The resource's GET and PATCH handlers by path (none where the personality has no resource)."""
    if bmc.secure_boot.style is SecureBootStyle.NONE:
        return {}
    path = secure_boot_path(bmc)

    def licence_gate() -> None:
        if bmc.secure_boot.style is SecureBootStyle.LICENSED:
            raise Refusal(403, "SMC.1.0.OemLicenseNotPassed", "Secure Boot needs a licence (SFT-DCMS-SINGLE)")

    async def get(request: web.Request) -> web.StreamResponse:
        licence_gate()
        etag = bmc.etag("secure_boot")
        return web.json_response(bmc.secure_boot.body(path, etag), headers={"ETag": etag})

    async def patch(request: web.Request) -> web.StreamResponse:
        body = _json_object(await request.read())
        licence_gate()
        bmc.check_if_match("secure_boot", request.headers.get("If-Match"))
        value = body.get("SecureBootEnable")
        if not isinstance(value, bool):
            raise Refusal(400, "Base.1.8.PropertyValueTypeError", f"SecureBootEnable {value!r} must be true or false")
        answer = bmc.secure_boot.change(value, ignored=bmc.faults.secure_boot_ignores_patch)
        bmc.actions.append(f"secure boot {'on' if value else 'off'}")
        bmc.bump("secure_boot")
        if answer is None:
            return web.Response(status=204)
        info = {"MessageId": answer[0], "Message": answer[1], "Severity": "Warning"}
        return web.json_response({"@Message.ExtendedInfo": [info]}, status=200)

    return {path: (get, patch)}


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        raise Refusal(400, "Base.1.8.MalformedJSON", "the body is not JSON") from None
    if not isinstance(data, dict):
        raise Refusal(400, "Base.1.8.MalformedJSON", "the body is not a JSON object")
    return data
