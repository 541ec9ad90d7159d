"""Progress events: one JSON object per line on stdout, the full log in a file.

See the schema in `installer/__init__.py`. `Reporter` also keeps the time each step took, for the
report. In console mode (`human=True`) the same events print as plain lines for a person.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TextIO


class Level(StrEnum):
    INFO = "info"
    ERROR = "error"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class Reporter:
    log_path: Path
    out: TextIO = field(default_factory=lambda: sys.stdout)
    human: bool = False
    phase: str = "plan"
    step: str = "start"
    percent: int = 0
    step_seconds: dict[str, float] = field(default_factory=dict)
    _started: float = 0.0

    def __post_init__(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("a", encoding="utf-8")

    def begin(self, phase: str, step: str, percent: int, message: str) -> None:
        self.phase, self.step, self.percent = phase, step, percent
        self._started = time.monotonic()
        self.emit(message)

    def end(self) -> None:
        self.step_seconds[self.step] = round(time.monotonic() - self._started, 3)

    def emit(self, message: str, level: Level = Level.INFO) -> None:
        event = {"time": now_iso(), "phase": self.phase, "step": self.step, "percent": self.percent,
                 "message": message, "level": level.value}
        self.log(f"[{event['phase']}/{event['step']} {event['percent']}%] {level.value}: {message}")
        if self.human:
            print(f"[{self.percent:3d}%] {message}", file=self.out, flush=True)
        else:
            print(json.dumps(event), file=self.out, flush=True)

    def final(self, event: dict[str, Any]) -> None:
        """The last stdout line: {"event": "done"|"failed", ...}; nothing is printed after it."""
        line = json.dumps({"time": now_iso(), **event})
        self.log(line)
        if not self.human:
            print(line, file=self.out, flush=True)

    def log(self, text: str) -> None:
        self._log.write(f"{now_iso()} {text}\n")
        self._log.flush()

    def close(self) -> None:
        self._log.close()
