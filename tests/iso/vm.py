"""Test helpers: boot an ISO in QEMU (TCG) with a watchdog, reach it over SSH, hear its check-in.

Everything stays on this machine: QEMU user networking forwards a loopback port to the guest's
SSH, and the guest reaches the test's HTTP server on the host loopback through 10.0.2.2.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncssh

from tests import ovmf

SSH_DEADLINE = 240.0  # TCG boots take ~60 s; a rare early-boot hang is killed after this and retried once


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Vm:
    """One QEMU machine booted from an ISO."""

    iso: Path
    workdir: Path
    uefi: bool
    mac: str
    guest_address: str = ""  # the guest address SSH is forwarded to ("" = QEMU's DHCP default)
    serial: str = "PVC-TEST-0001"
    usb: bool = False  # the ISO as a USB stick (hybrid MBR/GPT) instead of a CD-ROM
    secure_boot: bool = False  # OVMF enforcing Secure Boot with Microsoft's keys (tests/ovmf.py)
    ssh_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def serial_log(self) -> Path:
        firmware = "uefi-sb" if self.secure_boot else "uefi" if self.uefi else "bios"
        return self.workdir / f"serial-{firmware}-{'usb' if self.usb else 'cd'}.log"

    def command(self) -> list[str]:
        forward = f"hostfwd=tcp:127.0.0.1:{self.ssh_port}-{self.guest_address}:22"
        cmd = ["qemu-system-x86_64", "-accel", "tcg", "-machine", ovmf.machine(self.secure_boot), "-m", "3072",
               "-smp", "2",
               "-display", "none", "-monitor", "none", "-serial", f"file:{self.serial_log}",
               "-smbios", f"type=1,serial={self.serial}",
               "-netdev", f"user,id=n0,{forward}", "-device", f"virtio-net-pci,netdev=n0,mac={self.mac}",
               *self._medium()]
        if self.uefi or self.secure_boot:
            cmd += ovmf.uefi_args(self.workdir / "OVMF_VARS.fd", secure_boot=self.secure_boot)
        return cmd

    def _medium(self) -> list[str]:
        if not self.usb:
            return ["-cdrom", str(self.iso), "-boot", "d"]
        return ["-device", "qemu-xhci,id=xhci",
                "-drive", f"if=none,id=stick,format=raw,readonly=on,file={self.iso}",
                "-device", "usb-storage,bus=xhci.0,drive=stick,bootindex=0"]

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        self.process = None


async def connect(vm: Vm, known_hosts: Path, client_key: asyncssh.SSHKey) -> asyncssh.SSHClientConnection:
    return await asyncssh.connect("127.0.0.1", vm.ssh_port, username="root", known_hosts=str(known_hosts),
                                  client_keys=[client_key], agent_path=None, connect_timeout=15,
                                  login_timeout=15)


async def boot_until_ssh(vm: Vm, host_key_line: str, client_key: asyncssh.SSHKey,
                         attempts: int = 2) -> tuple[asyncssh.SSHClientConnection, float]:
    """Boot the VM and return an SSH connection to it (host key pinned) and the seconds it took.

    Only the pinned key is accepted: a different host key fails the connection like any other error,
    and after SSH_DEADLINE the VM is killed and booted again (once), for TCG's rare boot hang.
    """
    known_hosts = vm.workdir / "known_hosts"
    vm.workdir.mkdir(parents=True, exist_ok=True)
    known_hosts.write_text(f"[127.0.0.1]:{vm.ssh_port} {host_key_line}\n")
    last: Exception | None = None
    for _ in range(attempts):
        vm.start()
        start = time.monotonic()
        while time.monotonic() - start < SSH_DEADLINE:
            assert vm.process is not None
            if vm.process.poll() is not None:
                raise AssertionError(f"QEMU exited with {vm.process.returncode}; see {vm.serial_log}")
            try:
                return await connect(vm, known_hosts, client_key), time.monotonic() - start
            except (TimeoutError, OSError, asyncssh.Error) as err:
                last = err
                if isinstance(err, asyncssh.HostKeyNotVerifiable):
                    vm.stop()
                    raise
                await asyncio.sleep(3)
        vm.stop()
    raise AssertionError(f"no SSH on port {vm.ssh_port} after {attempts} boots (last error: {last!r}); "
                         f"see {vm.serial_log}")


class CheckinServer:
    """A controller's check-in endpoint on the host loopback; refuses the first `refusals` check-ins."""

    def __init__(self, refusals: int = 1):
        self.received: list[dict[str, Any]] = []
        self.refusals = refusals
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                ok = self.path == "/api/v1/checkin"
                if ok:
                    server.received.append(json.loads(body))
                refuse = not ok or len(server.received) <= server.refusals
                answer = json.dumps({"ack": not refuse}).encode()
                self.send_response(503 if refuse else 200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> CheckinServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def wait_for_ack(self, deadline: float) -> list[dict[str, Any]]:
        end = time.monotonic() + deadline
        while time.monotonic() < end and len(self.received) <= self.refusals:
            time.sleep(0.5)
        return list(self.received)
