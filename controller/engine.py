"""The deploy engine: every selected node's job at once, in one task group.

Each node's job runs in its own task and never raises (but on cancel), so one node cannot take the
others down. A stop (Ctrl-C) lets no new destructive step start: jobs in a waiting step are
cancelled and journalled as stopped, where `--resume` picks them up. The engine knows nothing of
terminals, servers or journals: it turns start points into outcomes, and events go to the bus.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from controller.journal import NodeRecord
from controller.node.events import CURRENT_NODE
from controller.node.job import JobOutcome, NodeJob
from controller.node.results import StepResult
from controller.node.states import NodeState, Phase
from controller.node.steps import Services
from inventory.model import Node


@dataclass(frozen=True)
class StartPoint:
    """Where a node's job begins: fresh, or from the journal of an earlier run."""

    phase: Phase | None  # None: nothing to do (done)
    attempt: int = 1
    results: dict[Phase, StepResult] = field(default_factory=dict)

    @classmethod
    def resumed(cls, record: NodeRecord | None) -> StartPoint:
        if record is None:
            return cls(Phase.PREFLIGHT)
        phase = record.resume_phase()
        if phase is None:
            return cls(None, record.attempt, dict(record.steps))
        if phase is Phase.PREFLIGHT:
            # starting over: a new attempt number keeps the earlier attempt's log apart
            return cls(phase, record.attempt + 1)
        return cls(phase, record.attempt, dict(record.steps))


IN_FLIGHT_BMC = frozenset({NodeState.MEDIA, NodeState.BOOT, NodeState.FINALIZE})
INTERRUPTED = "interrupted"


class Deployment:
    def __init__(self, nodes: list[Node], services: Services, *, deadlines: dict[str, int], retries: int):
        self.nodes = nodes
        self.services = services
        self.deadlines = deadlines
        self.retries = retries
        self.stop_requested = False
        self._tasks: dict[str, asyncio.Task[JobOutcome]] = {}
        self._jobs: dict[str, NodeJob] = {}
        self._nodes = {node.hostname: node for node in nodes}
        self._group: asyncio.TaskGroup | None = None

    def request_stop(self) -> None:
        """Ctrl-C: no new destructive step starts. A node waiting (for a check-in, an install it follows,
        an SSH login) stops now; a BMC step in flight (media, boot, finalize) finishes first, so the
        machine is left in a state the journal knows. A second Ctrl-C stops those too."""
        again = self.stop_requested
        self.stop_requested = True
        for name, task in self._tasks.items():
            job = self._jobs.get(name)
            if again or job is None or job.state not in IN_FLIGHT_BMC:
                task.cancel()

    # -- steering, while the run goes on (controller/server/steering.py) ------------------------------

    def retry(self, name: str) -> tuple[int, dict[str, Any]]:
        """Start a failed or stopped node over, from preflight with a new attempt, beside the others."""
        task = self._tasks.get(name)
        if name not in self._nodes or task is None:
            return 404, {"reason": f"{name} is not a node this run deploys"}
        if self._group is None or self.stop_requested:
            return 409, {"reason": "the run is stopping; start the node over with pvcctl retry NODE after it"}
        if not task.done():
            return 409, {"reason": f"{name} is still running (its job retries by itself when it can)"}
        outcome = _outcome_of(task)
        if outcome.state is NodeState.DONE:
            return 409, {"reason": f"{name} is installed; a reinstall wipes it: pvcctl retry {name} --reinstall "
                                   "after this run"}
        attempt = max(outcome.attempt, self._jobs[name].attempt) + 1
        self._tasks[name] = self._group.create_task(self._one(self._nodes[name], StartPoint(Phase.PREFLIGHT, attempt)),
                                                    name=name)
        return 202, {"retrying": name, "attempt": attempt}

    def stop(self) -> tuple[int, dict[str, Any]]:
        self.request_stop()
        return 202, {"stopping": True}

    async def _one(self, node: Node, start: StartPoint) -> JobOutcome:
        assert start.phase is not None
        job = NodeJob(node, self.services, deadlines=self.deadlines, retries=self.retries,
                      stopping=lambda: self.stop_requested)
        self._jobs[node.hostname] = job
        CURRENT_NODE.set(node.hostname)  # this task's log records go to this node's log
        return await job.run(start.phase, start.attempt, start.results)

    async def run(self, starts: dict[str, StartPoint]) -> dict[str, JobOutcome]:
        """Every node's outcome. A node whose job `request_stop` cancelled is `stopped`; a cancel of
        this call itself is not ours to swallow: the task group passes it on after cancelling the jobs."""
        outcomes: dict[str, JobOutcome] = {}
        async with asyncio.TaskGroup() as group:
            self._group = group
            for node in self.nodes:
                start = starts.get(node.hostname, StartPoint(Phase.PREFLIGHT))
                if start.phase is None:
                    outcomes[node.hostname] = JobOutcome(NodeState.DONE, start.attempt, start.results)
                    continue
                self._tasks[node.hostname] = group.create_task(self._one(node, start), name=node.hostname)
            await self._settled()  # a retry's new task joins the group while others still run
            self._group = None
        for name, task in self._tasks.items():
            outcomes[name] = _outcome_of(task)
        return outcomes

    async def _settled(self) -> None:
        """Until every node's latest task is done (a retry may replace a finished task with a new one)."""
        while pending := [task for task in self._tasks.values() if not task.done()]:
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)


def _outcome_of(task: asyncio.Task[JobOutcome]) -> JobOutcome:
    return JobOutcome(NodeState.STOPPED, 0, {}, INTERRUPTED) if task.cancelled() else task.result()
