"""The inspect step: on the live system, the installer's dry run and the hardware (nothing written),
judged against PVC's requirements; the disk the install will wipe, stated before it happens.

In a normal deploy a failed requirement or a disk `install.wipe: empty-only` refuses stops the node
here, before anything is written; in an inspect-only run (`deploy --inspect`) the node is powered
off and its media ejected instead, and the run shows what every node is.
"""

from __future__ import annotations

import json

from controller.bmc.ipmi import ipmi_answers
from controller.inspection import Check, Status, evaluate, failures, wipe_refusal, wipe_statement
from controller.live import LiveSession, RemoteInstall
from controller.node.results import InspectResult, LiveResult, PreflightResult
from controller.node.states import Phase
from controller.node.steps import NodeContext, _live_target
from core.errors import OperationError, UserError
from inventory.requirements import Level


class RequirementFailed(UserError):
    """The node lacks what PVC needs (inventory/requirements.py): nothing was written; fix and retry."""


class InstallCannotStart(OperationError):
    """The hint names no disk (or several), or the network's interface is missing, on this boot: a disk
    controller or NIC slow to show up may be there on the next, so the node is started over."""


INSTALL_OWN = frozenset({"disk", "network"})  # the install's own checks, beside PVC's requirements


async def inspect(ctx: NodeContext) -> InspectResult:
    where = ctx.result(Phase.LIVE, LiveResult)
    plan = ctx.services.plans[ctx.name]
    async with await LiveSession.open(_live_target(ctx, where.address, where.port), "inspect") as session:
        report = await RemoteInstall(session, ctx.remote_run).inspect(ctx.services.installer, plan.to_dict())
    preflight = ctx.results.get(Phase.PREFLIGHT)
    identity = preflight.identity if isinstance(preflight, PreflightResult) else None
    ipmi = None if ctx.node.requirements.ipmi is Level.OFF else await ipmi_answers(ctx.node.bmc.host)
    checks = evaluate(ctx.node, ctx.services.coordinators, report, identity, ipmi)
    result = InspectResult(report, tuple(c.as_dict() for c in checks), wipe_statement(ctx.name, report))
    _keep(ctx, result)
    for check in checks:
        if check.status in (Status.WARN, Status.FAIL):
            ctx.say(f"{check.status}: {check.line()}", Phase.INSPECT, level="warning")
    if ctx.services.inspect_only:
        await _power_off(ctx)
        return result
    ctx.say(result.statement, Phase.INSPECT, level="warning")  # on the terminal and in the node's log
    failed = failures(checks)
    if any(c.key in INSTALL_OWN for c in failed):
        raise InstallCannotStart(_failed_line([c for c in failed if c.key in INSTALL_OWN]),
                                 node=ctx.name, phase="inspect")
    if failed:
        raise RequirementFailed(_failed_line(failed))
    refusal = wipe_refusal(ctx.node, report)
    if refusal:
        raise RequirementFailed(refusal.removeprefix(f"{ctx.name}: "))
    return result


def _failed_line(failed: list[Check]) -> str:
    """The failed event's message: the node is named beside it, in every view."""
    first = failed[0].line()
    more = f" (and {len(failed) - 1} more: {', '.join(c.what for c in failed[1:])})" if len(failed) > 1 else ""
    return f"{first}{more}; nothing was written"


def _keep(ctx: NodeContext, result: InspectResult) -> None:
    """`nodes/<node>/inspect.json` in the run directory: what this attempt found."""
    folder = ctx.services.logs.parent / "nodes" / ctx.name
    folder.mkdir(parents=True, exist_ok=True)
    data = {"node": ctx.name, "attempt": ctx.attempt, "statement": result.statement, "checks": list(result.checks),
            **result.report}
    (folder / "inspect.json").write_text(json.dumps(data, indent=2) + "\n")


async def _power_off(ctx: NodeContext) -> None:
    ctx.say(f"inspected {ctx.name}: nothing written; powering it off and ejecting the ISO", Phase.INSPECT)
    async with ctx.bmc() as bmc:
        await bmc.force_off()
        await bmc.eject_all_media()
