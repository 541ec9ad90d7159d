"""What a person sees: the live progress table and the final summary, pure functions of snapshots."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from controller.node.states import PHASES

_STYLE = {"done": "green", "failed": "red", "stopped": "yellow"}


def progress_table(cluster: str, nodes: list[dict[str, Any]]) -> Table:
    table = Table(title=f"pvcctl deploy {cluster}", expand=False)
    for column in ("node", "state", "attempt", "%", "message"):
        table.add_column(column)
    for node in nodes:
        state = node["state"]
        table.add_row(node["node"], f"[{_STYLE.get(state, 'cyan')}]{state}[/]", str(node["attempt"] or ""),
                      str(node["percent"] or ""), (node["error"] or node["message"])[:80])
    return table


def summary_table(cluster: str, nodes: list[dict[str, Any]]) -> Table:
    """Each node: result, seconds per phase, attempts, and for a failure its error and log."""
    table = Table(title=f"{cluster}: deploy summary")
    table.add_column("node")
    table.add_column("result")
    table.add_column("attempts")
    for phase in PHASES:
        table.add_column(phase.value, justify="right")
    table.add_column("error / log")
    for node in nodes:
        seconds = node.get("phase_seconds", {})
        state = node["state"]
        detail = f"{node['error']} (log: {node['log']})" if state == "failed" else ""
        table.add_row(node["node"], f"[{_STYLE.get(state, 'cyan')}]{state}[/]", str(node["attempt"]),
                      *[f"{seconds[p.value]:.1f}" if p.value in seconds else "-" for p in PHASES], detail)
    return table


def summary_lines(nodes: list[dict[str, Any]]) -> list[str]:
    """The same summary as plain lines (for --json runs and logs)."""
    lines = []
    for node in nodes:
        line = f"{node['node']}: {node['state']} after {node['attempt']} attempt(s)"
        if node["state"] == "failed":
            line += f": {node['error']} (log: {node['log']})"
        lines.append(line)
    return lines
