"""Reading a run from outside its deploy: `pvcctl status`, `watch` and `logs`.

From the run's journal on this machine, or (`watch URL`) from its controller's event stream with the
run's token. Each follows until the run ends and then exits with the run's own exit status.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rich.console import Console

from controller.journal import Journal
from controller.remote import Controller
from controller.view import summary_table
from core.errors import UserError

Echo = Callable[[str], None]


class NoLogError(UserError):
    """The node has no log in that run (yet)."""


def format_event(event: dict[str, Any]) -> str:
    """One event as one timestamped line: what a person reads in `watch` and in non-terminal output."""
    stamp = time.strftime("%H:%M:%S", time.localtime(event.get("time") or time.time()))
    node, phase = event.get("node") or "-", event.get("phase") or "-"
    message = event.get("message") or ""
    if event.get("state"):
        what = event["state"]
        message = message or ("started" if event["state"] not in ("done", "failed", "stopped") else "")
    elif event.get("kind") == "progress":
        what = f"{(event.get('data') or {}).get('percent', 0)}%"
    else:
        what = event.get("kind") or "event"
    return f"{stamp} {node} [{phase}] {what}: {message}".rstrip(": ").rstrip()


def status_rows(journal: Journal) -> list[dict[str, Any]]:
    rows = []
    for name, record in sorted(journal.nodes().items()):
        seconds = {p: s for a, p, s in journal.steps(name) if a == record.attempt}
        rows.append({"node": name, "state": record.state.value, "attempt": record.attempt, "phase": record.phase,
                     "error": record.error, "first_error": journal.first_error(name) or record.error,
                     "log": record.log or str(journal.log_path(name, record.attempt)), "phase_seconds": seconds})
    return rows


def print_status(journal: Journal, echo: Echo) -> None:
    """The summary table, never squashed (a pipe gets it whole), then each failed node's errors and log."""
    rows = status_rows(journal)
    console = Console() if sys.stdout.isatty() else Console(width=250, force_terminal=False)
    console.print(summary_table(journal.meta().get("cluster", ""), rows, width=console.width))
    for row in rows:
        if row["error"]:
            first = row["first_error"]
            echo(f"{row['node']}: last error: {row['error']}" + (f"; first: {first}" if first != row["error"] else ""))
            echo(f"{row['node']}: log: {row['log']}")
    meta = journal.meta()
    ended = f"ended, exit status {meta['exit_status']}" if "exit_status" in meta else "not ended"
    echo(f"run directory: {journal.run_dir} ({ended})")


def ended(journal: Journal) -> int | None:
    """The run's exit status once its deploy has ended."""
    value = journal.meta().get("exit_status")
    return int(value) if value is not None else None


def watch_journal(journal: Journal, echo: Echo, interval: float) -> int:
    """Print every event as it is journalled until the run ends; its exit status."""
    last = 0
    while True:
        code = ended(journal)  # read before the events, so none written before the end is missed
        for event_id, event in journal.events(last):
            last = event_id
            echo(format_event(event))
        if code is not None:
            return code
        time.sleep(interval)


async def watch_remote(controller: Controller, echo: Echo) -> int:
    """Print every event from the controller's stream until the run ends; its exit status."""
    async for event in controller.events():
        if event["stream"] == "snapshot":
            for node in event.get("nodes", []):
                echo(f"{node['node']}: {node['state']} (attempt {node['attempt']}) {node.get('message', '')}".rstrip())
            continue
        echo(format_event(event))
        data = event.get("data") or {}
        if event.get("kind") == "run" and "exit_status" in data:
            return int(data["exit_status"])
    raise UserError(f"{controller.url}: the controller closed its event stream before the run ended")


def watch(target: str | None, run: Path | None, echo: Echo, interval: float) -> int:
    from controller.runs import find_run

    if target is not None and target.startswith(("http://", "https://")):
        return asyncio.run(watch_remote(Controller.of_url(target), echo))
    journal = Journal(find_run(Path(target) if target else None, run))
    try:
        return watch_journal(journal, echo, interval)
    finally:
        journal.close()


def log_path(journal: Journal, node: str, attempt: int | None) -> Path:
    records = journal.nodes()
    if attempt is None:
        if node not in records:
            raise NoLogError(f"{node}: no log in run {journal.run_dir}; its nodes are "
                             f"{', '.join(sorted(records)) or 'none yet'}")
        attempt = records[node].attempt
    path = journal.log_path(node, attempt)
    if not path.is_file():
        raise NoLogError(f"{node}: no log for attempt {attempt} in {journal.logs}")
    return path


def follow_log(journal: Journal, path: Path, follow: bool, interval: float = 0.5) -> Iterator[str]:
    """The log's lines; with `follow`, and the run not ended, the lines written next too, until it ends."""
    with path.open(encoding="utf-8", errors="replace") as log:
        while True:
            code = ended(journal) if follow else 0
            while line := log.readline():
                yield line.rstrip("\n")
            if code is not None:
                return
            time.sleep(interval)
