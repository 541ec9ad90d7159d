"""What a deploy shows on the terminal: its events as lines (or JSON lines), the live table while it
runs, and the summary at the end. Every view is drawn from the board's snapshot (controller/view.py),
never from state of its own."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from rich.console import Console, RenderableType
from rich.live import Live

from controller.node.events import Board, Event, EventKind
from controller.view import failure_lines, progress_table, summary_table

REDRAW_SECONDS = 0.5


class Terminal:
    """The deploy's terminal: JSON lines with `--json`, a live table on a terminal, plain lines otherwise."""

    def __init__(self, cluster: str, *, json_lines: bool, deadlines: dict[str, int] | None = None):
        self.cluster = cluster
        self.json_lines = json_lines
        self.deadlines = deadlines or {}
        self.live_view = not json_lines and sys.stdout.isatty()
        self.console = Console()

    def _line(self, text: str) -> None:
        """A line of the run's story: timestamped when it goes to a log or a pipe (not a live terminal)."""
        stamp = "" if self.live_view else time.strftime("%H:%M:%S ")
        print(stamp + text, flush=True)

    def show(self, event: Event) -> None:
        """Every event as a JSON line (--json); else the run's own lines (building the ISO, where the run
        is, check-ins from machines the inventory does not name: often a node whose MAC or serial is
        written wrong) and, unless the live view shows them, each node's state changes."""
        if event.kind is EventKind.RUN and "exit_status" in event.data:
            return  # the run's end: for watchers and the journal; the summary says it here
        if self.json_lines:
            print(json.dumps(event.as_dict(), default=str), flush=True)
        elif event.kind is EventKind.RUN or (event.kind is EventKind.MESSAGE and not event.node
                                             and event.phase == "live"):
            self._line(event.message)
        elif event.kind is EventKind.MESSAGE and event.data.get("level") in ("warning", "error"):
            # a destructive BMC step announced before it is done (a restart, a power-off), or trouble
            mine = not event.node or event.message.startswith(f"{event.node}:")
            self._line(event.message if mine else f"{event.node}: {event.message}")
        elif not self.live_view and event.kind is EventKind.STATE and event.state is not None:
            extra = f": {event.message}" if event.message else ""
            self._line(f"{event.node}: {event.state} (attempt {event.attempt}){extra}")

    def dashboard(self, url: str) -> None:
        """The dashboard URL with the run's token: said once, here only (never an event, so never in the
        journal, the logs or the event stream)."""
        if self.json_lines:
            print(json.dumps({"dashboard": url}), flush=True)
        else:
            print(f"dashboard: {url}  (its token reads and steers this run: share it with care)", flush=True)

    @contextlib.asynccontextmanager
    async def live(self, board: Board) -> AsyncIterator[None]:
        """The live table, redrawn from the board while the block runs (on a terminal only)."""
        if not self.live_view:
            yield
            return
        # transient: the last live frame goes when the run ends; the summary takes its place
        with Live(self._frame(board), console=self.console, refresh_per_second=4, transient=True) as screen:
            redraw = asyncio.create_task(self._redraw(screen, board))
            try:
                yield
            finally:
                redraw.cancel()

    async def _redraw(self, screen: Live, board: Board) -> None:
        while True:
            await asyncio.sleep(REDRAW_SECONDS)
            screen.update(self._frame(board))

    def _frame(self, board: Board) -> RenderableType:
        return progress_table(self.cluster, board.snapshot(), now=time.time(), width=self.console.width,
                              deadlines=self.deadlines)

    def warn(self, message: str) -> None:
        """A line the user must read once (a node left out of the render), on stderr."""
        print(f"warning: {message}", file=sys.stderr, flush=True)

    def summary_table(self, rows: list[dict[str, Any]]) -> None:
        """Every node's result and seconds per phase (an inspection's end shows its findings after it)."""
        self._summary(rows)

    def _summary(self, rows: list[dict[str, Any]]) -> None:
        """The table at the terminal's width (a pipe gets it whole), then each failure's error and log."""
        console = self.console if self.console.is_terminal else Console(width=250)
        console.print(summary_table(self.cluster, rows, width=console.width))
        for line in failure_lines(rows):
            print(line, flush=True)

    def summary(self, rows: list[dict[str, Any]], run_dir: Path, out: Path | None, partial: list[str],
                hint: str) -> None:
        """The end of the run: every node's result, where the pvc-ansible inventory went, what next."""
        if self.json_lines:
            print(json.dumps({"summary": rows, "run_dir": str(run_dir), "inventory": str(out) if out else None,
                              "next": hint or None}), flush=True)
            return
        self._summary(rows)
        if out is not None:
            print(f"pvc-ansible inventory written to {out}" + (f" (partial: {', '.join(partial)})" if partial else ""))
            print(hint)
        else:
            print(f"not every node is done: no pvc-ansible inventory written (use --partial for one anyway); "
                  f"run directory {run_dir}; start failed nodes over with pvcctl retry NODE...")
