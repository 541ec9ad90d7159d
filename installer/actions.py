"""The only way the install steps touch the machine: run a command, write a file.

In `Mode.REAL` both happen. In `Mode.DRY_RUN` every destructive action is announced as an event
("would run: ...", "would write: ...") and nothing is touched; read-only queries still run. In
`Mode.SIMULATE` nothing runs at all (not even queries): the actions go to the log only, so a
simulated cluster can run many installers at once without any device.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from installer.events import Reporter

CHROOT_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive",
              "LANG": "C.UTF-8", "HOME": "/root"}
OUTPUT_TAIL = 4000  # characters of a failed command's output carried in the failure event


class Mode(StrEnum):
    REAL = "real"
    DRY_RUN = "dry-run"
    SIMULATE = "simulate"


class StepFailed(Exception):
    """A command or check failed; `output` is what the command printed (its tail)."""

    def __init__(self, message: str, output: str = ""):
        super().__init__(message)
        self.output = output[-OUTPUT_TAIL:]


@dataclass
class Background:
    """A command `Actions.start` left running while the next steps go on (under TCG a machine's
    second vCPU is idle through most of the install); `wait` collects it like `Actions.run`."""

    line: str
    reporter: Reporter
    proc: subprocess.Popen[str] | None  # None: not really started (dry run, simulation)

    def wait(self) -> str:
        if self.proc is None:
            return ""
        out, err = self.proc.communicate()
        self.reporter.log(f"$ {self.line} (started in the background) ended with status {self.proc.returncode}")
        if (out + err).strip():
            self.reporter.log((out + err).rstrip())
        if self.proc.returncode != 0:
            raise StepFailed(f"`{self.line}` exited with status {self.proc.returncode}", out + err)
        return out

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


@dataclass
class Actions:
    mode: Mode
    reporter: Reporter
    step_delay: float = 0.0
    _background: list[Background] = field(default_factory=list)

    @property
    def real(self) -> bool:
        return self.mode is Mode.REAL

    def announce(self, text: str) -> None:
        """A destructive action that is not taken: an event in a dry run, a log line otherwise."""
        if self.mode is Mode.DRY_RUN:
            self.reporter.emit(f"would {text}")
        else:
            self.reporter.log(f"simulated: {text}")

    def run(self, argv: list[str], *, stdin: str | None = None, query: bool = False,
            env: dict[str, str] | None = None, check: bool = True) -> str:
        """Run a command and return its stdout. `query` marks a read-only command, which a dry run
        still executes; anything else is destructive and only announced outside REAL mode."""
        line = shlex.join(argv)
        if self.mode is Mode.SIMULATE or (self.mode is Mode.DRY_RUN and not query):
            self.announce(f"run: {line}" + (" (with input)" if stdin else ""))
            return ""
        self.reporter.log(f"$ {line}")
        try:
            proc = subprocess.run(argv, input=stdin, capture_output=True, text=True,
                                  env={**os.environ, **(env or {})})
        except OSError as err:
            raise StepFailed(f"cannot run {argv[0]}: {err}") from None
        output = proc.stdout + proc.stderr
        if output.strip():
            self.reporter.log(output.rstrip())
        if check and proc.returncode != 0:
            raise StepFailed(f"`{line}` exited with status {proc.returncode}", output)
        return proc.stdout

    def chroot(self, target: Path, argv: list[str], *, stdin: str | None = None) -> str:
        return self.run(["chroot", str(target), *argv], stdin=stdin, env=CHROOT_ENV)

    def start_chroot(self, target: Path, argv: list[str]) -> Background:
        """Start a destructive command in the target and go on; its `wait()` says how it went."""
        argv = ["chroot", str(target), *argv]
        line = shlex.join(argv)
        if not self.real:
            self.announce(f"run: {line} (in the background)")
            return Background(line, self.reporter, None)
        self.reporter.log(f"$ {line} (in the background)")
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, env={**os.environ, **CHROOT_ENV})
        except OSError as err:
            raise StepFailed(f"cannot run chroot: {err}") from None
        job = Background(line, self.reporter, proc)
        self._background.append(job)
        return job

    def kill_background(self) -> None:
        """A failed install leaves nothing running in the target it may unmount next time."""
        for job in self._background:
            job.kill()

    def write(self, path: Path, text: str, mode: int = 0o644) -> None:
        if not self.real:
            self.announce(f"write: {path} ({len(text.encode())} bytes, mode {mode:o})")
            self.reporter.log(f"content of {path}:\n{text}")
            return
        replace_file(path, text, mode)
        self.reporter.log(f"wrote {path}")

    def uuid_of(self, device: str) -> str:
        """A filesystem's UUID; a stable made-up one when nothing was really created."""
        if not self.real:
            digest = hashlib.sha256(device.encode()).hexdigest()
            return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
        if _has("udevadm"):
            self.run(["udevadm", "settle"], query=True, check=False)
        uuid = self.run(["blkid", "-s", "UUID", "-o", "value", device], query=True).strip()
        if not uuid:
            raise StepFailed(f"{device} has no filesystem UUID after mkfs")
        return uuid

    def pause(self) -> None:
        """Simulated runs can be slowed down (tests of crash and reattach)."""
        if self.step_delay > 0:
            time.sleep(self.step_delay)


def replace_file(path: Path, text: str, mode: int = 0o644) -> None:
    """Write `path` whole or not at all: a rerun (or a reboot) never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.pvc-tmp")
    tmp.write_text(text, encoding="utf-8")
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _has(program: str) -> bool:
    return any(os.access(os.path.join(d, program), os.X_OK)
               for d in os.environ.get("PATH", "/usr/sbin:/usr/bin").split(":"))
