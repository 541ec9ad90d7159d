"""A node's UEFI Secure Boot in the deploy: reported at preflight, set there when the inventory asks.

`bmc.secure_boot: keep` (the default) only reads and reports it. `on` or `off`: preflight PATCHes
SecureBootEnable when it differs (once), saying first that the change takes effect at the next
reset and that the boot step's restart (or power-on) is that reset, and reads it back. Some BMCs
show the new value at once (the DMTF meaning of SecureBootEnable: what the next boot uses), some only
after the reset (NOTE(dell/idrac9): a BIOS job, ironic _wait_for_secure_boot), so the value is
judged after that restart: if the BMC still reports the old one, the node fails, in one line naming
what was asked, what was read and what to do. No extra restart is spent: the one that boots the
ISO applies the change, so the live system already runs under the Secure Boot state asked for.

A BMC without the resource (or one that refuses it: NOTE(supermicro) OemLicenseNotPassed) is
reported as unknown; with `on`/`off` the node fails at preflight, before anything is touched.
`deploy --inspect` writes nothing: it says what the deploy would set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from controller.bmc.base import Bmc, SecureBootStatus
from controller.bmc.secure_boot import as_read
from controller.node.states import Phase
from core.errors import OperationError
from inventory.model import Node, SecureBootSwitch

if TYPE_CHECKING:  # steps.py calls this module
    from controller.node.steps import NodeContext

SETUP_HINT = ("set it in the server's firmware setup or the BMC's web interface (some BMCs need a licence or "
              "physical presence for it), then pvcctl retry {node}; or write bmc.secure_boot: keep")


class SecureBootNotApplied(OperationError):
    """The BMC does not show the Secure Boot state the inventory asks for (a person has to look)."""


def wish(node: Node) -> bool | None:
    """SecureBootEnable as the inventory asks it, or None for keep."""
    return None if node.bmc.secure_boot is SecureBootSwitch.KEEP else node.bmc.secure_boot is SecureBootSwitch.ON


def _word(enable: bool | None) -> str:
    return "unknown" if enable is None else ("on" if enable else "off")


async def at_preflight(ctx: NodeContext, bmc: Bmc, status: SecureBootStatus) -> SecureBootStatus:
    """Report the node's Secure Boot; set it when the inventory asks for a change (see the module)."""
    ctx.say(f"Secure Boot: {status.summary}", Phase.PREFLIGHT, secure_boot=status.as_dict())
    wanted = wish(ctx.node)
    if wanted is None:
        return status
    if not status.known:
        raise SecureBootNotApplied(f"secure_boot: {_word(wanted)} asked, but Secure Boot is unknown here: "
                                   f"{status.reason}", node=ctx.name, phase=Phase.PREFLIGHT.value,
                                   hint=SETUP_HINT.format(node=ctx.name))
    if status.enable == wanted:
        return status
    if ctx.services.inspect_only:
        ctx.say(f"secure_boot: {_word(wanted)} asked: a deploy sets SecureBootEnable {str(wanted).lower()} here "
                "(--inspect writes nothing)", Phase.PREFLIGHT)
        return status
    ctx.say(f"secure_boot: {_word(wanted)} asked: setting SecureBootEnable {str(wanted).lower()}; it needs a "
            f"restart to take effect: the boot step's restart (or power-on) of {ctx.name} applies it",
            Phase.PREFLIGHT)
    after = await bmc.set_secure_boot(wanted)
    shown = "it shows the change" if after.enable == wanted else "it shows the old value until the restart"
    ctx.say(f"Secure Boot set; the BMC reads SecureBootEnable {str(after.enable).lower()} ({shown})",
            Phase.PREFLIGHT, secure_boot=after.as_dict())
    return after


async def after_restart(ctx: NodeContext, bmc: Bmc) -> SecureBootStatus | None:
    """After the boot step's restart: SecureBootEnable must read what was asked (waited for a while: a
    BIOS job runs during POST); else the node fails with the one-line reason."""
    wanted = wish(ctx.node)
    if wanted is None or ctx.services.inspect_only:
        return None
    status = await bmc.wait_secure_boot(wanted)
    if status.known and status.enable == wanted:
        ctx.say(f"Secure Boot {_word(wanted)} as asked: {status.summary}", Phase.BOOT, secure_boot=status.as_dict())
        if wanted and status.state != "on":
            # A BMC may update SecureBootCurrentBoot only once the server has started; in SetupMode (no
            # platform key) the firmware enforces nothing whatever SecureBootEnable says.
            ctx.say(f"note: SecureBootCurrentBoot reads {status.current_boot or 'nothing'} (SecureBootMode "
                    f"{status.mode or 'not given'}); in SetupMode nothing is enforced until keys are enrolled",
                    Phase.BOOT)
        return status
    raise SecureBootNotApplied(f"secure_boot: {_word(wanted)} asked, but after the restart the BMC still reads "
                               f"{as_read(status)}", node=ctx.name, phase=Phase.BOOT.value,
                               hint=SETUP_HINT.format(node=ctx.name))

