"""Commands the installer leaves running while later steps go on (host keys, grub-mkconfig): real
processes under a real chroot (into this machine's own root), so what they print, how they fail
and what is left running are real."""

from __future__ import annotations

import io
import os
import subprocess
import time
from pathlib import Path

import pytest

from installer.actions import Actions, Mode, StepFailed
from installer.events import Reporter

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chroot needs root")
ROOT = Path("/")


def _actions(tmp_path: Path, mode: Mode = Mode.REAL) -> tuple[Actions, Path]:
    log = tmp_path / "install.log"
    return Actions(mode, Reporter(log, out=io.StringIO())), log


@needs_root
def test_a_background_command_runs_beside_the_next_and_its_output_is_logged(tmp_path: Path) -> None:
    root = ROOT
    actions, log = _actions(tmp_path)
    started = time.monotonic()
    job = actions.start_chroot(root, ["sh", "-c", "sleep 1; echo made the keys"])
    assert time.monotonic() - started < 0.5  # it did not wait
    actions.chroot(root, ["echo", "meanwhile"])
    assert job.wait() == "made the keys\n"
    text = log.read_text()
    assert "(in the background)" in text and "made the keys" in text
    assert text.index(" meanwhile\n") < text.rindex("made the keys")  # logged when it ended


@needs_root
def test_a_failed_background_command_fails_its_step_with_its_output(tmp_path: Path) -> None:
    actions, _ = _actions(tmp_path)
    job = actions.start_chroot(ROOT, ["sh", "-c", "echo no entropy >&2; exit 3"])
    with pytest.raises(StepFailed, match="exited with status 3") as failed:
        job.wait()
    assert "no entropy" in failed.value.output


@needs_root
def test_a_failed_install_leaves_nothing_running_in_the_target(tmp_path: Path) -> None:
    actions, _ = _actions(tmp_path)
    job = actions.start_chroot(ROOT, ["sleep", f"{60 + os.getpid() % 1000}.5"])  # a command line of its own
    assert job.proc is not None
    actions.kill_background()
    assert job.proc.poll() is not None
    line = " ".join(job.proc.args)  # type: ignore[arg-type]
    assert subprocess.run(["pgrep", "-f", line], capture_output=True).returncode == 1


def test_a_dry_run_only_announces_it(tmp_path: Path) -> None:
    actions, log = _actions(tmp_path, Mode.SIMULATE)
    assert actions.start_chroot(tmp_path, ["ssh-keygen", "-A"]).wait() == ""
    assert "simulated: run: chroot" in log.read_text() and "ssh-keygen -A (in the background)" in log.read_text()
