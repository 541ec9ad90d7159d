"""What a person sees on the terminal: the live table and the final summary, pure functions of a
snapshot (the board's), the time and the terminal's width, so they can be tested at any width.

Columns drop in order of importance as the terminal narrows (nothing wraps: a message is cut with an
ellipsis); the cluster line above the table says how many nodes are done, failed, running and waiting,
the overall progress, the time since the first node began and an ETA from the phases' measured times.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from controller.node.states import PHASES

_STYLE = {"done": "green", "failed": "red", "stopped": "yellow"}
_NAMES = [phase.value for phase in PHASES]
FINAL = ("done", "failed", "stopped")
DEADLINE_NEAR = 0.8  # a phase past this share of its deadline shows how long it has left


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


def progress(node: Mapping[str, Any]) -> float:
    """0..1: the phases behind the node, and the installer's own percent within the install."""
    state = node["state"]
    if state == "done":
        return 1.0
    phase = node.get("phase") or ""
    if phase not in _NAMES:
        return 0.0
    within = float(node.get("percent") or 0) / 100 if phase == "install" else 0.0
    return (_NAMES.index(phase) + within) / len(_NAMES)


def phase_averages(nodes: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Each phase's mean measured seconds over the nodes that finished it in this run."""
    seen: dict[str, list[float]] = {}
    for node in nodes:
        for phase, seconds in (node.get("phase_seconds") or {}).items():
            seen.setdefault(phase, []).append(float(seconds))
    return {phase: sum(values) / len(values) for phase, values in seen.items()}


def eta(nodes: Sequence[Mapping[str, Any]], now: float) -> float | None:
    """Seconds until the last node is done, from the phases' measured times; None while nothing is measured."""
    averages = phase_averages(nodes)
    if not averages:
        return None
    longest = 0.0
    for node in nodes:
        if node["state"] in FINAL:
            continue
        phase = node.get("phase") or _NAMES[0]
        index = _NAMES.index(phase) if phase in _NAMES else 0
        in_phase = now - node["phase_started"] if node.get("phase_started") else 0.0
        left = max(0.0, averages.get(_NAMES[index], 0.0) - in_phase)
        left += sum(averages.get(p, 0.0) for p in _NAMES[index + 1:])
        longest = max(longest, left)
    return longest


def cluster_line(cluster: str, nodes: Sequence[Mapping[str, Any]], now: float) -> Text:
    counts = {state: sum(1 for n in nodes if n["state"] == state) for state in ("done", "failed")}
    waiting = sum(1 for n in nodes if n["state"] in ("pending", "stopped"))
    running = len(nodes) - counts["done"] - counts["failed"] - waiting
    share = sum(progress(n) for n in nodes) / max(1, len(nodes))
    begun = [n["started"] for n in nodes if n.get("started")]
    elapsed = now - min(begun) if begun else 0.0
    left = eta(nodes, now)
    text = Text(f"{cluster}: ", style="bold")
    text.append(f"{counts['done']} done", style="green")
    text.append(" · ")
    text.append(f"{counts['failed']} failed", style="red" if counts["failed"] else "")
    text.append(f" · {running} running · {waiting} waiting · {share:.0%}"
                f" · ETA {clock(left) if left is not None and running + waiting else '-'} · {clock(elapsed)} elapsed")
    text.no_wrap, text.overflow = True, "ellipsis"
    return text


@dataclass(frozen=True)
class _Column:
    name: str
    width: int  # what it needs, with its padding
    importance: int  # the lower, the longer it stays as the terminal narrows


_COLUMNS = (_Column("node", 0, 0), _Column("state", 10, 0), _Column("progress", 12, 1), _Column("message", 0, 0),
            _Column("attempt", 9, 2), _Column("in phase", 10, 3), _Column("total", 9, 4), _Column("deadline", 10, 5))
MESSAGE_MIN = 24


def _columns(width: int, node_width: int) -> list[str]:
    """The columns that fit `width` with room for a readable message, the least important dropped first."""
    chosen = list(_COLUMNS)
    while True:
        used = sum(c.width or node_width for c in chosen if c.name != "message") + 3
        if used + MESSAGE_MIN <= width or max(c.importance for c in chosen) == 0:
            return [c.name for c in chosen]
        chosen.remove(max(chosen, key=lambda c: c.importance))


def progress_table(cluster: str, nodes: Sequence[Mapping[str, Any]], *, now: float | None = None, width: int = 120,
                   deadlines: Mapping[str, int] | None = None) -> RenderableType:
    """The live view: the cluster line, then a row per node; fits `width` without wrapping."""
    now = time.time() if now is None else now
    deadlines = deadlines or {}
    node_width = max([len("node"), *(len(n["node"]) for n in nodes)]) + 2
    columns = _columns(width, node_width)
    table = Table(box=None, expand=False, pad_edge=False, show_edge=False, width=width)
    for name in columns:
        table.add_column(name, no_wrap=True, overflow="ellipsis", ratio=1 if name == "message" else None,
                         min_width=MESSAGE_MIN if name == "message" else None)
    for node in nodes:
        cells = _cells(node, now, deadlines)
        table.add_row(*(cells[name] for name in columns))
    return Group(cluster_line(cluster, nodes, now), table)


def _cells(node: Mapping[str, Any], now: float, deadlines: Mapping[str, int]) -> dict[str, RenderableType]:
    state = node["state"]
    style = _STYLE.get(state, "cyan")
    working = state not in FINAL and state != "pending"
    in_phase = now - node["phase_started"] if working and node.get("phase_started") else None
    total_end = node.get("finished") or now
    total = total_end - node["started"] if node.get("started") else None
    limit = deadlines.get(node.get("phase") or "")
    deadline = Text("")
    if in_phase is not None and limit and in_phase >= DEADLINE_NEAR * limit:
        deadline = Text(f"{clock(limit - in_phase)} left", style="red")
    message = Text(node.get("error") or node.get("message") or "", style="red" if node.get("error") else "")
    shown = str(node.get("phase") or state) if working else state
    return {"node": Text(node["node"]), "state": Text(shown, style=style),
            "progress": ProgressBar(total=1.0, completed=progress(node), width=10),
            "message": message, "attempt": Text(str(node.get("attempt") or "")),
            "in phase": Text(clock(in_phase)), "total": Text(clock(total)), "deadline": deadline}


def summary_table(cluster: str, nodes: Sequence[Mapping[str, Any]], width: int = 160) -> Table:
    """Each node: result, attempts, seconds per phase (when the width has room; else the total)."""
    table = Table(title=f"{cluster}: deploy summary")
    table.add_column("node", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("attempts", justify="right", no_wrap=True)
    measured = [p for p in _NAMES if any(p in (n.get("phase_seconds") or {}) for n in nodes)]
    per_phase = width >= 40 + 9 * len(measured)
    for phase in measured if per_phase else ():
        table.add_column(phase, justify="right", no_wrap=True)
    table.add_column("seconds", justify="right", no_wrap=True)
    for node in nodes:
        seconds = node.get("phase_seconds") or {}
        state = node["state"]
        phases = [f"{seconds[p]:.1f}" if p in seconds else "-" for p in measured] if per_phase else []
        table.add_row(node["node"], f"[{_STYLE.get(state, 'cyan')}]{state}[/]", str(node["attempt"]), *phases,
                      f"{sum(seconds.values()):.1f}")
    return table


def failure_lines(nodes: Sequence[Mapping[str, Any]]) -> list[str]:
    """A failed node's error and its log path, whole, on lines of their own (under the summary)."""
    lines = []
    for node in nodes:
        if node["state"] == "failed":
            lines.append(f"{node['node']}: {node.get('error') or 'failed'}")
            lines.append(f"{node['node']}: log {node.get('log') or '-'}")
    return lines
