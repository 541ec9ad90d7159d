"""The console mode, driven through a real terminal (tmux) as a person would: wrong answers are
refused where they are typed, the last question shows the disk's model, size and serial, and the
install then runs (simulated, on recorded disks: nothing here is wiped)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "installer" / "virtio.json"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx5dGVzdGtleWZvcnRoZWluc3RhbGxlcnRlc3RzMDAw admin@pvcctl"

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (scripts/apt)")


class Terminal:
    def __init__(self, name: str, command: str):
        self.name = name
        subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "200", "-y", "60",
                        f"{command}; echo EXIT-STATUS=$?; sleep 600"], check=True)

    def screen(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-J", "-t", self.name, "-S", "-2000"],
                              capture_output=True, text=True, check=True).stdout

    def wait_for(self, text: str, timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared; screen:\n{self.screen()}")

    def answer(self, prompt: str, text: str) -> None:
        """Wait for a prompt (counted, so a repeated question is seen anew), then type the answer."""
        self.wait_for(prompt)
        subprocess.run(["tmux", "send-keys", "-t", self.name, "-l", text], check=True)
        subprocess.run(["tmux", "send-keys", "-t", self.name, "Enter"], check=True)

    def answer_again(self, prompt: str, problem: str, text: str) -> None:
        """After a refused answer: the problem is shown and the same question asked again."""
        screen = self.wait_for(problem)
        assert screen.count(prompt) >= 2, screen
        self.answer(prompt, text)

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], check=False)


def test_console_questions_validate_confirm_and_install(tmp_path: Path) -> None:
    command = (f"cd {tmp_path} && {sys.executable} -I -S -c \"import sys, runpy; sys.path.insert(0, '{REPO}'); "
               f"runpy.run_module('installer', run_name='__main__')\" --simulate {FIXTURE} "
               f"--image /run/live/medium/pvc/target.squashfs --log {tmp_path}/install.log "
               f"--report {tmp_path}/report.json")
    term = Terminal(f"pvc-console-{tmp_path.name}", command)
    try:
        term.answer("Fully-qualified hostname", "hv2")
        term.answer_again("Fully-qualified hostname", "is not a fully-qualified", "hv2.cluster.test")
        screen = term.wait_for("Disk to install")
        assert "/dev/vdb (0x1af4, 100.0 GiB, serial unknown)" in screen
        assert "(boot medium: not allowed)" in screen  # the CD the live system runs from
        term.answer("Disk to install", "/dev/sr0")
        term.answer_again("Disk to install", "booted from", "serial:small")
        term.answer_again("Disk to install", "smaller than", "serial:pvc-disk-1")
        term.answer("Filesystem", "")
        term.answer("Primary network interface", "eth9")
        term.answer_again("Primary network interface", "is not one of enp0s2", "enp0s2")
        term.answer("tagged VLAN", "y")
        term.answer("VLAN ID", "5000")
        term.answer_again("VLAN ID", "a number from 1 to 4094", "70")
        term.answer("IP address in CIDR form", "10.10.0.5")
        term.answer_again("IP address in CIDR form", "give the prefix length", "10.10.0.5/24")
        term.answer("Default gateway", "10.20.0.1")
        term.answer_again("Default gateway", "is not in 10.10.0.0/24", "10.10.0.1")
        term.answer("DNS servers", "10.10.0.1 bad")
        term.answer_again("DNS servers", "'bad' is not an IP address", "10.10.0.1 10.10.0.2")
        term.answer("Debian release", "")
        term.answer("Install method", "")
        term.answer("Debian mirror URL", "ftp:/x")
        term.answer_again("Debian mirror URL", "an http(s) URL", "http://127.0.0.1:9/debian")
        term.answer("Additional packages", "htop,Bad_Name")
        term.answer_again("Additional packages", "is not a Debian package name", "htop,ceph-common")
        term.answer("SSH public key", "not a key")
        term.answer_again("SSH public key", "neither an OpenSSH public key", KEY)
        screen = term.wait_for("Type 'yes' to wipe it")
        assert "ALL DATA on /dev/vda will be WIPED" in screen
        assert "size   30.0 GiB (32212254720 bytes)" in screen and "serial pvc-disk-1" in screen
        assert "wipe:" not in screen  # nothing started before the confirmation
        term.answer("Type 'yes' to wipe it", "yes")
        screen = term.wait_for("EXIT-STATUS=", timeout=30)
        assert "Install finished" in screen and "EXIT-STATUS=0" in screen, screen
        assert "[ 82%] bootloader: starting" in screen
    finally:
        term.close()
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert plan["hostname"] == "hv2.cluster.test" and plan["disk"] == "/dev/vda"
    assert plan["network"] == {"interface": "enp0s2", "mac": None, "vlan": 70, "bond_mode": None, "bond_slaves": [],
                               "address": "10.10.0.5/24", "gateway": "10.10.0.1", "dns": ["10.10.0.1", "10.10.0.2"]}
    assert plan["packages"] == ["htop", "ceph-common"] and plan["ssh_keys"] == [KEY]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["disk"]["serial"] == "pvc-disk-1" and report["network"]["interface"] == "enp0s2.70"


def test_console_password_login_and_stop_without_yes(tmp_path: Path) -> None:
    command = (f"cd {tmp_path} && {sys.executable} -m installer --simulate {FIXTURE} --image /x.squashfs "
               f"--log {tmp_path}/install.log --report {tmp_path}/report.json")
    term = Terminal(f"pvc-console-no-{tmp_path.name}", f"cd {REPO} && {command}")
    try:
        for prompt, text in [("hostname", "hv3.cluster.test"), ("Disk to install", "largest"), ("Filesystem", "xfs"),
                             ("Primary network interface", "enp0s2"), ("tagged VLAN", ""),
                             ("IP address in CIDR form", ""), ("DNS servers", ""), ("Debian release", ""),
                             ("Install method", "debootstrap"), ("Debian mirror URL", "http://127.0.0.1:9/debian"),
                             ("Additional packages", ""), ("SSH public key", ""),
                             ("Password for the deploy user", "short")]:
            term.answer(prompt, text)
        term.answer_again("Password for the deploy user", "shorter than 8", "long enough pw")
        screen = term.wait_for("Again: ")
        assert "long enough pw" not in screen  # typed without echo
        subprocess.run(["tmux", "send-keys", "-t", term.name, "-l", "long enough pw"], check=True)
        subprocess.run(["tmux", "send-keys", "-t", term.name, "Enter"], check=True)
        screen = term.wait_for("Type 'yes' to wipe it")
        assert "ALL DATA on /dev/vdb will be WIPED" in screen
        term.answer("Type 'yes' to wipe it", "y")
        screen = term.wait_for("EXIT-STATUS=")
        assert "stopped; nothing was touched" in screen and "EXIT-STATUS=3" in screen
    finally:
        term.close()
    assert not (tmp_path / "report.json").exists()
