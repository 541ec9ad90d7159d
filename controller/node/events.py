"""What happens to nodes, as events; and the board: every node's current status, built from them.

Events go one way (DESIGN.md §1): a job emits them on the `EventBus`, which hands each to its
subscribers (the journal, the board, the server's event stream, the JSON-lines printer).
The board is the one snapshot every view renders: views never keep state of their own.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from controller.node.states import NodeState


class EventKind(enum.StrEnum):
    STATE = "state"  # the node entered a state (data: error, log for failures)
    STEP = "step"  # a step finished (data: seconds, result)
    PROGRESS = "progress"  # the installer's progress line (data: percent, step)
    MESSAGE = "message"  # anything worth a line in the node's log
    RUN = "run"  # the run itself: started, finished, interrupted


@dataclass(frozen=True)
class Event:
    node: str
    kind: EventKind
    message: str = ""
    state: NodeState | None = None
    phase: str = ""
    attempt: int = 0
    data: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["kind"] = self.kind.value
        out["state"] = self.state.value if self.state else None
        return out


@dataclass
class NodeStatus:
    """One node as the views show it."""

    node: str
    state: NodeState = NodeState.PENDING
    phase: str = ""
    attempt: int = 0
    percent: int = 0
    message: str = ""
    error: str = ""
    log: str = ""
    started: float | None = None
    finished: float | None = None
    phase_seconds: dict[str, float] = field(default_factory=dict)
    phase_started: float | None = None  # when the current phase began
    # every phase this run began for the node: {"attempt", "phase", "start", "seconds"} (None while running)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    disk: str = ""  # the disk the install wipes (or wiped), as the node's inspection or report said

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["state"] = self.state.value
        return out


class Board:
    """Every node's status: a pure fold of the events."""

    def __init__(self, nodes: list[str]):
        self.nodes = {name: NodeStatus(name) for name in nodes}

    def apply(self, event: Event) -> None:
        status = self.nodes.get(event.node)
        if status is None:
            return
        if event.attempt:
            status.attempt = event.attempt
        if event.kind is EventKind.STATE and event.state is not None:
            status.state = event.state
            if event.state.working:
                status.phase = event.state.value
                status.started = status.started or event.time
                status.phase_started = event.time
                status.timeline.append({"attempt": event.attempt, "phase": event.state.value, "start": event.time,
                                        "seconds": None})
                status.error = ""
            status.finished = event.time if event.state.final else None
            if event.state is NodeState.FAILED:
                status.error = event.message
                status.log = str(event.data.get("log", status.log))
        elif event.kind is EventKind.STEP:
            seconds = round(float(event.data.get("seconds", 0.0)), 3)
            status.phase_seconds[event.phase] = seconds
            for entry in reversed(status.timeline):
                if entry["phase"] == event.phase and entry["seconds"] is None:
                    entry["seconds"] = seconds
                    break
            status.disk = _disk_of(event.data.get("result")) or status.disk
        elif event.kind is EventKind.PROGRESS:
            status.percent = int(event.data.get("percent", status.percent))
        if event.message and event.kind is not EventKind.RUN:
            status.message = event.message

    def snapshot(self) -> list[dict[str, Any]]:
        return [status.as_dict() for status in self.nodes.values()]


def _disk_of(result: Any) -> str:
    """'/dev/sda (model, serial)' from an inspect or collect result's report, or ''."""
    report = result.get("report") if isinstance(result, dict) else None
    disk = ((report.get("disk") or report.get("chosen")) if isinstance(report, dict) else None)  # collect / inspect
    if not isinstance(disk, dict) or not disk.get("path"):
        return ""
    about = ", ".join(str(disk[k]) for k in ("model", "serial") if disk.get(k))
    return f"{disk['path']} ({about})" if about else str(disk["path"])


Subscriber = Callable[[Event], None]


REDACTED = "<secret>"


def _redact(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, dict):
        return {key: _redact(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(item, secrets) for item in value]
    return value


class EventBus:
    """Hands every event to every subscriber, in order, synchronously (so the journal is never behind).

    Strings the run keeps secret (the ISO's unguessable path) are cut out of every event first, so no
    subscriber (journal, logs, terminal, event stream) ever holds them, whoever wrote the message: a
    BMC echoing the image URL back, an error quoting it."""

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        self._subscribers: list[Subscriber] = []
        self._queues: set[asyncio.Queue[Event]] = set()
        self.secrets = tuple(s for s in secrets if s)

    def keep_secret(self, secret: str) -> None:
        if secret:
            self.secrets = (*self.secrets, secret)

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def queue(self) -> asyncio.Queue[Event]:
        """A queue that receives every later event (the server's event stream uses one per client)."""
        queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=10_000)
        self._queues.add(queue)
        return queue

    def drop(self, queue: asyncio.Queue[Event]) -> None:
        self._queues.discard(queue)

    def emit(self, event: Event) -> None:
        if self.secrets:
            event = dataclasses.replace(event, message=_redact(event.message, self.secrets),
                                        data=_redact(event.data, self.secrets))
        for subscriber in self._subscribers:
            subscriber(event)
        for queue in list(self._queues):
            if queue.full():
                self._queues.discard(queue)  # a stalled client loses its stream, not our memory
            else:
                queue.put_nowait(event)


# The node whose job runs in this task (each node's job is a task of its own, with its own context).
CURRENT_NODE: contextvars.ContextVar[str] = contextvars.ContextVar("pvcctl_current_node", default="")


class NodeLogHandler(logging.Handler):
    """The controller's own log records (BMC steps, retries, quirks, a restart announced before it is
    done) as events: in the log of the node whose job wrote them, or in the run's log."""

    def __init__(self, bus: EventBus, board: Board):
        super().__init__(logging.INFO)
        self.bus, self.board = bus, board

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:
            self.handleError(record)
            return
        status = self.board.nodes.get(CURRENT_NODE.get())
        self.bus.emit(Event(status.node if status else "", EventKind.MESSAGE, message,
                            phase=status.phase if status else "", attempt=status.attempt if status else 0,
                            data={"level": record.levelname.lower()}))
