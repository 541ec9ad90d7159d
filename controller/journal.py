"""The run journal: every event and every finished step of one run, in SQLite.

A run lives in `<state_dir>/<cluster>/<timestamp>/`: `journal.sqlite`, `logs/<node>.<attempt>.log`
(one node's attempt, its check-ins included), `logs/run.log` (the run's own events: the ISO it
builds, its start, check-ins from machines that are no node of the run) and, at the end, the
pvc-ansible inventory. `--resume` and `pvcctl retry` read the journal back: which nodes are done,
which were installing (and under which remote run id), which failed.
Each write is its own transaction, so a SIGKILL leaves it consistent up to the last event.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.node.events import Event
from controller.node.results import StepResult, decode
from controller.node.states import PHASES, NodeState, Phase

JOURNAL_FILE = "journal.sqlite"
RUN_LOG = "run.log"  # in logs/, beside the nodes' <node>.<attempt>.log (a node's log always has its attempt)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, time REAL, node TEXT, kind TEXT, state TEXT, phase TEXT,
    attempt INTEGER, message TEXT, data TEXT);
CREATE TABLE IF NOT EXISTS steps (
    node TEXT, attempt INTEGER, phase TEXT, seconds REAL, result TEXT, time REAL,
    PRIMARY KEY (node, attempt, phase));
CREATE TABLE IF NOT EXISTS nodes (
    node TEXT PRIMARY KEY, state TEXT, phase TEXT, attempt INTEGER, error TEXT, log TEXT);
"""


@dataclass(frozen=True)
class NodeRecord:
    """What the journal knows of one node: enough to decide where a resumed run goes on."""

    node: str
    state: NodeState
    phase: str
    attempt: int
    error: str
    log: str
    steps: dict[Phase, StepResult]  # this attempt's finished steps

    def resume_phase(self) -> Phase | None:
        """Where to go on: None when done; a failed node starts over; an install in flight is reattached."""
        if self.state is NodeState.DONE:
            return None
        if self.state is NodeState.FAILED:
            return Phase.PREFLIGHT
        if Phase.INSTALL in self.steps or self.phase == Phase.INSTALL.value:
            # the install ran (or runs) on the node: reattach or go on after it, never reinstall
            return next((p for p in PHASES[Phase.INSTALL.order:] if p not in self.steps), None)
        return Phase.PREFLIGHT


class Journal:
    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.logs = run_dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(run_dir / JOURNAL_FILE, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    @classmethod
    def create(cls, cluster_dir: Path, meta: dict[str, str]) -> Journal:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run_dir = cluster_dir / stamp
        n = 1
        while run_dir.exists():
            n += 1
            run_dir = cluster_dir / f"{stamp}-{n}"
        run_dir.mkdir(parents=True)
        journal = cls(run_dir)
        for key, value in meta.items():
            journal.set_meta(key, value)
        return journal

    @staticmethod
    def latest(cluster_dir: Path) -> Path | None:
        runs = sorted(p for p in cluster_dir.glob("*/" + JOURNAL_FILE)) if cluster_dir.is_dir() else []
        return runs[-1].parent if runs else None

    def close(self) -> None:
        self._db.close()

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def meta(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT key, value FROM meta").fetchall())

    def log_path(self, node: str, attempt: int) -> Path:
        return self.logs / f"{node}.{attempt}.log"

    @property
    def run_log(self) -> Path:
        return self.logs / RUN_LOG

    def record(self, event: Event) -> None:
        """Store one event; state events also update the node's row, step events the steps table."""
        data = json.dumps(event.data, default=str)
        state = event.state.value if event.state else None
        with self._db:
            self._db.execute(
                "INSERT INTO events (time, node, kind, state, phase, attempt, message, data) VALUES (?,?,?,?,?,?,?,?)",
                (event.time, event.node, event.kind.value, state, event.phase, event.attempt, event.message, data),
            )
            if state is not None and event.node:
                phase = event.phase or (state if event.state and event.state.working else "")
                self._db.execute(
                    "INSERT INTO nodes VALUES (?,?,?,?,?,?) ON CONFLICT(node) DO UPDATE SET state=excluded.state,"
                    " phase=CASE WHEN excluded.phase != '' THEN excluded.phase ELSE nodes.phase END,"
                    " attempt=excluded.attempt, error=excluded.error,"
                    " log=CASE WHEN excluded.log != '' THEN excluded.log ELSE nodes.log END",
                    (event.node, state, phase, event.attempt,
                     event.message if state == NodeState.FAILED else "", str(event.data.get("log", ""))),
                )
            if event.kind.value == "step":
                self._db.execute(
                    "INSERT OR REPLACE INTO steps VALUES (?,?,?,?,?,?)",
                    (event.node, event.attempt, event.phase, float(event.data.get("seconds", 0.0)),
                     json.dumps(event.data.get("result", {}), default=str), event.time),
                )
        self._append_log(event)

    def _append_log(self, event: Event) -> None:
        """A node's event goes to its attempt's log (none before it has an attempt); the run's to run.log."""
        if event.node and not event.attempt:
            return
        path = self.log_path(event.node, event.attempt) if event.node else self.run_log
        stamp = time.strftime("%H:%M:%S", time.localtime(event.time))
        what = event.state.value if event.state else event.kind.value
        with path.open("a", encoding="utf-8") as log:
            text = event.message or ("started" if event.state and event.state.working else "")
            log.write(f"{stamp} [{event.phase or '-'}] {what}: {text}\n")

    def nodes(self) -> dict[str, NodeRecord]:
        rows = self._db.execute("SELECT node, state, phase, attempt, error, log FROM nodes").fetchall()
        out = {}
        for node, state, phase, attempt, error, log in rows:
            steps = {
                Phase(p): decode(Phase(p), json.loads(r))
                for p, r in self._db.execute(
                    "SELECT phase, result FROM steps WHERE node=? AND attempt=?", (node, attempt)
                ).fetchall()
            }
            out[node] = NodeRecord(node, NodeState(state), phase or "", attempt, error or "", log or "", steps)
        return out

    def first_error(self, node: str) -> str:
        """The first failure the node met in this run (its last is in its record)."""
        row = self._db.execute("SELECT message FROM events WHERE node=? AND state='failed' ORDER BY id LIMIT 1",
                               (node,)).fetchone()
        return str(row[0]) if row else ""

    def steps(self, node: str) -> list[tuple[int, str, float]]:
        """(attempt, phase, seconds) of every finished step of a node, in order."""
        return [
            (a, p, s) for a, p, s in self._db.execute(
                "SELECT attempt, phase, seconds FROM steps WHERE node=? ORDER BY time", (node,)).fetchall()
        ]

    def events(self, since: int = 0) -> list[tuple[int, dict[str, Any]]]:
        rows = self._db.execute(
            "SELECT id, time, node, kind, state, phase, attempt, message, data FROM events WHERE id > ? ORDER BY id",
            (since,),
        ).fetchall()
        return [
            (row[0], {"time": row[1], "node": row[2], "kind": row[3], "state": row[4], "phase": row[5],
                      "attempt": row[6], "message": row[7], "data": json.loads(row[8] or "{}")})
            for row in rows
        ]
