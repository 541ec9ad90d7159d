"""NodeJob: one node's pipeline, from a given phase, with a deadline per step and node-level retries.

A job never raises (but on cancel): every failure becomes a `failed` event with the error and the
log path, so one node cannot take the others down. A failure that starting over can cure (the node
never came up, the install failed, the link broke) starts the node over from preflight, up to
`retries` more times, each attempt with its own log. A BMC that failed for good (its own step
retries are spent), a bad plan, a host key that is not the pinned one, or an installed system that
does not prove the install (controller/node/proof.py: it needs a person's look) is not retried.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from controller.bmc.errors import BmcError
from controller.live import HostKeyMismatch, LoginRefused
from controller.node.events import Event, EventKind
from controller.node.inspect_step import inspect
from controller.node.proof import NotProven
from controller.node.results import InspectResult, StepResult, encode
from controller.node.secure_boot import SecureBootNotApplied
from controller.node.states import PHASES, NodeState, Phase, advance
from controller.node.steps import STEPS, NodeContext, NotInstalled, Services
from core.errors import OperationError, UserError
from inventory.model import Node

NOT_RETRIED = (BmcError, UserError, HostKeyMismatch, LoginRefused, NotInstalled, NotProven, SecureBootNotApplied)
BMC_PHASES = frozenset({Phase.PREFLIGHT, Phase.MEDIA, Phase.FINALIZE})
ALL_STEPS = {**STEPS, Phase.INSPECT: inspect}


@dataclass(frozen=True)
class JobOutcome:
    """How a node's job ended: the run decides its output from these, never from a view."""

    state: NodeState
    attempt: int
    results: dict[Phase, StepResult]
    error: str = ""


class NodeJob:
    def __init__(self, node: Node, services: Services, *, deadlines: dict[str, int], retries: int,
                 stopping: Callable[[], bool]):
        self.node = node
        self.services = services
        self.deadlines = deadlines
        self.retries = retries
        self.stopping = stopping
        self.state = NodeState.PENDING
        self.attempt = 0  # the attempt it is on (or ended with)

    def _emit(self, state: NodeState, attempt: int, message: str = "", phase: str = "", **data: Any) -> None:
        self.state = advance(self.state, state)
        self.attempt = attempt
        self.services.bus.emit(Event(self.node.hostname, EventKind.STATE, message, state=state,
                                     phase=phase or (state.value if state.working else ""), attempt=attempt,
                                     data=data))

    async def run(self, start: Phase = Phase.PREFLIGHT, attempt: int = 1,
                  results: dict[Phase, StepResult] | None = None, state: NodeState = NodeState.PENDING,
                  ) -> JobOutcome:
        self.state = state
        ctx = NodeContext(self.node, attempt, self.services, dict(results or {}))
        first_attempt = attempt
        try:
            while True:
                outcome = await self._attempt(ctx, start)
                if outcome.state is not NodeState.FAILED or not self._retryable(outcome, ctx.attempt - first_attempt):
                    return outcome
                ctx = self._again(ctx)
                start = Phase.PREFLIGHT
        finally:
            if self.services.gate is not None:
                self.services.gate.withdraw(self.node.hostname)  # the run's question waits for it no longer

    def _again(self, ctx: NodeContext) -> NodeContext:
        ctx = NodeContext(self.node, ctx.attempt + 1, self.services)
        self.services.bus.emit(Event(self.node.hostname, EventKind.MESSAGE,
                                     f"starting over (attempt {ctx.attempt})", attempt=ctx.attempt))
        return ctx

    def _retryable(self, outcome: JobOutcome, retried: int) -> bool:
        return retried < self.retries and not self.stopping() and self._cause_retryable

    async def _attempt(self, ctx: NodeContext, start: Phase) -> JobOutcome:
        phase = start
        try:
            for phase in PHASES[start.order:]:
                if phase is Phase.INSTALL and self.services.inspect_only:
                    break  # an inspection ends here, the node powered off
                if phase is Phase.INSTALL and Phase.INSPECT in ctx.results and start.order <= Phase.INSPECT.order:
                    await self._confirm_wipe(ctx)
                if self.stopping() and phase.destructive:
                    self._emit(NodeState.STOPPED, ctx.attempt, f"stopped before {phase}", phase=phase.value)
                    return JobOutcome(NodeState.STOPPED, ctx.attempt, ctx.results)
                self._emit(NodeState.of(phase), ctx.attempt)
                began = time.monotonic()
                async with asyncio.timeout(self.deadlines.get(phase.value, 3600)):
                    result = await ALL_STEPS[phase](ctx)
                ctx.results[phase] = result
                self.services.bus.emit(Event(self.node.hostname, EventKind.STEP, f"{phase} done", phase=phase.value,
                                             attempt=ctx.attempt, data={"seconds": time.monotonic() - began,
                                                                        "result": encode(phase, result)}))
        except asyncio.CancelledError:
            self._emit(NodeState.STOPPED, ctx.attempt, f"interrupted during {phase}", phase=phase.value)
            raise
        except Exception as err:  # a node's failure is reported, never spread
            return self._failed(ctx, phase, err)
        self._emit(NodeState.DONE, ctx.attempt)
        return JobOutcome(NodeState.DONE, ctx.attempt, ctx.results)

    async def _confirm_wipe(self, ctx: NodeContext) -> None:
        """Wait for the run's one question (outside any step's deadline: a person may take a while)."""
        if self.services.gate is not None:
            inspected = ctx.results[Phase.INSPECT]
            assert isinstance(inspected, InspectResult)
            await self.services.gate.confirm(self.node.hostname, inspected.statement)

    def _failed(self, ctx: NodeContext, phase: Phase, err: Exception) -> JobOutcome:
        if isinstance(err, TimeoutError):
            message = f"{phase} did not finish within its deadline of {self.deadlines.get(phase.value)}s"
            rejected = self.services.desk.rejections(self.node.hostname) if phase is Phase.LIVE else []
            if rejected:
                message += f"; rejected as possible impostors: {'; '.join(rejected)}"
        elif isinstance(err, OperationError):  # the event names node and phase already
            message = str(err.args[0]) + (f" ({err.hint})" if err.hint else "")
        else:
            message = str(err) or type(err).__name__
        # a BMC that stops answering is not cured by starting over; a node that never came up may be
        bmc_timeout = isinstance(err, TimeoutError) and phase in BMC_PHASES
        self._cause_retryable = not isinstance(err, NOT_RETRIED) and not bmc_timeout
        log = self.services.logs / f"{self.node.hostname}.{ctx.attempt}.log"
        self._emit(NodeState.FAILED, ctx.attempt, message, phase=phase.value, log=str(log),
                   error_type=type(err).__name__)
        return JobOutcome(NodeState.FAILED, ctx.attempt, ctx.results, message)

    _cause_retryable = True
