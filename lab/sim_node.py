"""The simulated machine's software: a live node when it boots the ISO, the installed system after.

Plugged into `lab.machine.SimulatedMachine`'s boot hooks behind the BMC emulator (`lab.server`):
when a machine boots from the inserted ISO URL, its `SimulatedNode` fetches the ISO like a BMC
would, reads the seed from it (xorriso), and brings up a live node on its own loopback address: a
real asyncssh server holding the ISO's pinned host key, trusting the controller key from the seed,
that runs commands in a per-node home directory and checks in to the controller as the ISO does.
The real installer runs there, in simulated-disk mode: the node's own `python3` (first on its
PATH) adds `--simulate` with the machine's recorded disks to `python3 installer.pyz run ...`, so
the controller runs the same command as on a real live system. Booted from disk after an install,
it serves SSH as the installed system: the deploy user, the plan's keys, and the host key the
installer generated (kept on the "disk" by an ssh-keygen wrapper, because a simulated install
throws its keys away).

`lab.sim.SimLab` runs N such machines behind emulated BMCs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shlex
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncssh

from core.keys import fingerprint
from installer.actions import replace_file
from installer.layout import PARTITIONS, VG_NAME, partition_path
from installer.proof import COMPLETE, MARKER_PATH, SIM_ROOT_ENV, STARTED, marker_text
from iso.seed import Seed
from lab.machine import BootEvent, BootSource, Machine

log = logging.getLogger(__name__)

CHECKIN_INTERVAL = 0.5
SIMULATE_FILE = "pvc-simulate.json"  # the machine's recorded disks, in its home (bench/ansible reads it too)
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"  # after the node's own bin directory

_KEYGEN_WRAPPER = """#!/bin/sh
# A simulated install throws its host keys away; the simulated machine keeps them on its "disk".
/usr/bin/ssh-keygen "$@" || exit $?
key=""; prev=""
for arg in "$@"; do [ "$prev" = "-f" ] && key="$arg"; prev="$arg"; done
if [ -n "$key" ] && [ -n "$PVC_SIM_DISK" ]; then mkdir -p "$PVC_SIM_DISK" && cp "$key" "$key.pub" "$PVC_SIM_DISK/"; fi
"""

# The installer that `python3 installer.pyz run ...` starts here has no devices to touch: it reads the
# machine's recorded disks instead, and takes its time per step. A command that says --simulate itself
# (bench/ansible) is left as it is, and so is every other use of python3.
_PYTHON_WRAPPER = """#!/bin/sh
case "$1 $2" in
  *installer.pyz" run")
    case " $* " in *" --simulate "*) ;; *) exec {python} "$@" --simulate {disks} --step-delay {delay} \
      --simulate-root {root} ;; esac ;;
  *installer.pyz" inspect")
    case " $* " in *" --simulate "*) ;; *) exec {python} "$@" --simulate {disks} ;; esac ;;
esac
exec {python} "$@"
"""


@dataclass(frozen=True)
class SimDisk:
    """A simulated disk, and what it holds now (`fstypes`: one partition each; `volume_group`: LVM on the last)."""

    name: str = "sda"
    size: int = 480_103_981_056
    model: str = "SIMULATED SSD"
    rotational: bool = False
    removable: bool = False
    fstypes: tuple[str, ...] = ()
    volume_group: str = ""


@dataclass(frozen=True)
class SimHardware:
    """A simulated machine's hardware (tests give a node less memory, a spinning disk, a slow NIC)."""

    memory_gib: int = 64
    cores: int = 16
    cpu_model: str = "PVCLAB Virtual CPU @ 2.40GHz"
    virtualization: str = "Intel VT-x"
    disks: tuple[SimDisk, ...] = (SimDisk(),)
    nic_speed_mbps: int | None = 10000
    link: str = "up"


def simulated_disks(serial: str, macs: tuple[str, ...], hardware: SimHardware | None = None) -> dict[str, Any]:
    """What the installer's --simulate reads: the machine's disks (one 480 GB SSD by default), NICs, UEFI."""
    hw = hardware or SimHardware()
    devices, lvm = [], []
    for i, disk in enumerate(hw.disks):
        path = f"/dev/{disk.name}"
        parts = list(disk.fstypes) + (["LVM2_member"] if disk.volume_group else [])
        children = [{"name": f"{disk.name}{n}", "path": f"{path}{n}", "type": "part", "size": disk.size // 8,
                     "fstype": fs} for n, fs in enumerate(parts, start=1)]
        if disk.volume_group:
            lvm.append([f"{path}{len(parts)}", disk.volume_group])
        devices.append({"name": disk.name, "path": path, "type": "disk", "size": disk.size, "model": disk.model,
                        "vendor": "PVCLAB", "serial": f"{serial}-D{i}", "tran": "sata", "rm": disk.removable,
                        "ro": False, "rota": disk.rotational, "pttype": "gpt" if parts else None,
                        "children": children})
    nics = [{"name": f"eth{i}", "mac": mac, "link": hw.link, "speed_mbps": hw.nic_speed_mbps}
            for i, mac in enumerate(macs)]
    return {
        "lsblk": {"blockdevices": devices},
        "udev": {f"/dev/{d.name}": f"DEVLINKS=/dev/disk/by-id/ata-PVCLAB_{d.model.replace(' ', '_')}_{serial}-D{i}"
                 for i, d in enumerate(hw.disks)},
        "lvm": lvm,
        "interfaces": {f"eth{i}": mac for i, mac in enumerate(macs)},
        "efi": True,
        "hardware": {"cpu": {"model": hw.cpu_model, "cores": hw.cores, "virtualization": hw.virtualization},
                     "memory_bytes": hw.memory_gib * 1024**3, "nics": nics},
    }


class _Server(asyncssh.SSHServer):
    """Public-key logins for one user only."""

    def __init__(self, node: SimulatedNode, user: str, keys: asyncssh.SSHAuthorizedKeys):
        self.node, self.user, self.keys = node, user, keys

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        self.node.connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        self.node.connections.discard(self.conn)

    def begin_auth(self, username: str) -> bool:
        if username == self.user:
            self.conn.set_authorized_keys(self.keys)
        return True


class _HomeSFTP(asyncssh.SFTPServer):
    """As OpenSSH's sftp-server: relative paths start in the login's home, absolute paths are absolute."""

    def __init__(self, chan: asyncssh.SSHServerChannel[bytes], home: Path):
        super().__init__(chan)
        self.home = os.fsencode(home)

    def map_path(self, path: bytes) -> bytes:
        return path if path.startswith(b"/") else os.path.join(self.home, path)


class SimulatedNode:
    """One machine's software; `on_boot`/`on_power_off` are the machine's hooks."""

    def __init__(self, machine: Machine, home: Path, address: str, live_key: Path, *, step_delay: float = 0.05,
                 claimed_key: Path | None = None, ssh_port: int = 0, bmc_address: str | None = None,
                 hardware: SimHardware | None = None):
        self.machine = machine
        self.bmc_address = bmc_address  # the virtual CD is streamed by the BMC: its image comes from there
        self.hardware = hardware or SimHardware()
        self.claimed_key = claimed_key  # an impostor: checks in with this key's fingerprint, serves live_key
        self.home = home
        self.address = address
        self.live_key = live_key
        self.step_delay = step_delay
        self.diskless_boots = 0
        # given, or chosen on the first boot and kept (the live and the installed system share it)
        self.port = ssh_port
        self.hostname = ""
        self.connections: set[asyncssh.SSHServerConnection] = set()
        self.checkins: list[int] = []  # the controller's answers, in order
        self._server: asyncssh.SSHAcceptor | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.bin = home / "bin"
        self.disk = home / "disk"  # what the machine's disks keep across boots: host keys, the install marker
        self.installed_root: Path | None = None  # set while it runs the installed system (its root directory)
        # faults for tests: the install's last writes never reached the disk (a power cut before they were
        # synced), so the installed system boots with its marker still "started"; or the firmware boots
        # another of its disks (an index into hardware.disks) than the one the install chose
        self.loses_last_writes = False
        self.boots_disk: int | None = None

    # -- the machine's hooks -------------------------------------------------------------------------

    async def on_boot(self, machine: Machine, event: BootEvent) -> None:
        # a real machine boots on its own time: the BMC's power request returns first
        task = asyncio.create_task(self._boot(event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def on_power_off(self, machine: Machine) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self._stop_ssh()
        self._kill_processes()

    def _kill_processes(self) -> None:
        """Power off stops everything the machine ran, the detached installer included: every process
        started by its SSH server carries PVC_SIM_MACHINE (children inherit it, setsid or not)."""
        mark = f"PVC_SIM_MACHINE={self.home}".encode()
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                if mark in (proc / "environ").read_bytes().split(b"\0"):
                    os.kill(int(proc.name), signal.SIGKILL)
            except (OSError, ProcessLookupError):
                continue  # gone already, or not ours to read

    async def _boot(self, event: BootEvent) -> None:
        try:
            if event.source is BootSource.CD:
                await self._boot_live(event.image_url)
            else:
                await self._boot_installed()
        except Exception:  # a simulated machine that fails to boot just sits there, like a real one
            log.exception("%s: boot from %s failed", self.machine.name, event.source)

    # -- live system ---------------------------------------------------------------------------------

    async def _boot_live(self, image_url: str) -> None:
        self.installed_root = None
        self.home.mkdir(parents=True, exist_ok=True)
        iso = self.home / "live.iso"
        connector = aiohttp.TCPConnector(local_addr=(self.bmc_address, 0)) if self.bmc_address else None
        async with aiohttp.ClientSession(connector=connector) as http, http.get(image_url) as answer:
            answer.raise_for_status()
            iso.write_bytes(await answer.read())
        seed = Seed.from_json(await self._extract(iso, "/pvc/seed.json"))
        iso.unlink()  # the simulated machine needs only the seed from it
        mine = seed.match(set(self.machine.macs), self.machine.serial)
        if mine is not None and mine.address:
            self.address = mine.address.split("/")[0]
        self._write_tools()
        disks = simulated_disks(self.machine.serial, self.machine.macs, self.hardware)
        if self.diskless_boots > 0:  # a fault for tests: the disk does not show up on this boot
            self.diskless_boots -= 1
            disks["lsblk"]["blockdevices"] = []
        (self.home / SIMULATE_FILE).write_text(json.dumps(disks))
        keys = asyncssh.import_authorized_keys(seed.controller_key + "\n")
        await self._serve("root", keys, self.live_key)
        public = asyncssh.read_private_key(str(self.claimed_key or self.live_key)).export_public_key().decode()
        await self._check_in(seed, fingerprint(public), mine.name if mine else "")

    async def _extract(self, iso: Path, member: str) -> str:
        out = self.home / "seed.json"
        proc = await asyncio.create_subprocess_exec(
            "xorriso", "-osirrox", "on", "-indev", str(iso), "-extract", member, str(out),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        _, err = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"xorriso could not read {member} from {iso}: {err.decode()[-300:]}")
        return out.read_text()

    def _write_tools(self) -> None:
        """The node's own commands, first on its PATH: python3 (simulated installs), ssh-keygen (kept keys)."""
        python = shutil.which("python3", path=SYSTEM_PATH)
        if python is None:
            raise RuntimeError(f"no python3 in {SYSTEM_PATH} for the simulated node to run the installer with")
        python3 = _PYTHON_WRAPPER.format(python=shlex.quote(python), disks=shlex.quote(str(self.home / SIMULATE_FILE)),
                                         delay=shlex.quote(str(self.step_delay)), root=shlex.quote(str(self.disk)))
        self.bin.mkdir(parents=True, exist_ok=True)
        for name in ("findmnt", "lsblk"):  # the installed system's (_installed_disk_tools), not the live one's
            (self.bin / name).unlink(missing_ok=True)
        for name, text in (("python3", python3), ("ssh-keygen", _KEYGEN_WRAPPER)):
            (self.bin / name).write_text(text)
            (self.bin / name).chmod(0o755)

    async def _check_in(self, seed: Seed, host_key: str, name: str) -> None:
        body = {"serial": self.machine.serial, "macs": list(self.machine.macs), "addresses": [f"{self.address}/8"],
                "boot_mode": "uefi", "host_key_fingerprint": host_key, "node": name, "ssh_port": self.port}
        url = seed.controller_url.rstrip("/") + "/api/v1/checkin"
        # From its own address, as a live node's check-in comes: the controller refuses a claim from elsewhere.
        connector = aiohttp.TCPConnector(local_addr=(self.address, 0))
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=5)) as http:
            while True:  # as the live ISO does: until acknowledged
                try:
                    async with http.post(url, json=body) as answer:
                        self.checkins.append(answer.status)
                        if answer.status == 200 and (await answer.json()).get("ack"):
                            return
                except (aiohttp.ClientError, TimeoutError):
                    self.checkins.append(0)
                await asyncio.sleep(CHECKIN_INTERVAL)

    # -- installed system ----------------------------------------------------------------------------

    async def _boot_installed(self) -> None:
        # the newest install's report, wherever the tool that ran the installer kept it (pvcctl: pvcctl/<run>/)
        reports = sorted(self.home.rglob("report.json"), key=lambda p: p.stat().st_mtime)
        host_key = self.disk / "ssh_host_ed25519_key"
        if not reports or not host_key.is_file():
            log.info("%s: no installed system on the disk", self.machine.name)
            return
        plan = json.loads((reports[-1].parent / "plan.json").read_text())
        self.hostname = plan["hostname"]
        hostname = self.bin / "hostname"
        hostname.write_text(f"#!/bin/sh\necho {self.hostname}\n")
        hostname.chmod(0o755)
        self._installed_disk_tools()
        keys = asyncssh.import_authorized_keys("\n".join(plan["ssh_keys"]) + "\n")
        await self._serve(plan["deploy_user"], keys, host_key)

    def _installed_disk_tools(self) -> None:
        """The installed system's root is on the disk the install chose (by the marker's serial), or on
        `boots_disk`: its findmnt and lsblk say so, as installer/proof.py asks them."""
        marker_path = self.disk / MARKER_PATH.lstrip("/")
        marker = json.loads(marker_path.read_text()) if marker_path.is_file() else {}
        if self.loses_last_writes and marker.get("state") == COMPLETE:
            marker = {k: v for k, v in marker.items() if k not in ("summary", "completed_at")} | {"state": STARTED}
            replace_file(marker_path, marker_text(marker))
        devices = simulated_disks(self.machine.serial, self.machine.macs, self.hardware)["lsblk"]["blockdevices"]
        wanted = str((marker.get("disk") or {}).get("serial") or "")
        disk = devices[self.boots_disk] if self.boots_disk is not None else \
            next((d for d in devices if d["serial"] == wanted), devices[0])
        lvm = next(p.number for p in PARTITIONS if p.name == "pvc-lvm")
        root = f"/dev/mapper/{VG_NAME}-root"
        tree = {"blockdevices": [{"path": root, "type": "lvm", "serial": None, "wwn": None, "children": [
            {"path": partition_path(disk["path"], lvm), "type": "part", "serial": None, "wwn": None, "children": [
                {"path": disk["path"], "type": "disk", "serial": disk["serial"], "wwn": None}]}]}]}
        self.installed_root = self.disk
        tools = {"findmnt": f"#!/bin/sh\necho {root}\n",
                 "lsblk": f"#!/bin/sh\ncat <<'EOF'\n{json.dumps(tree)}\nEOF\n"}
        for name, text in tools.items():
            (self.bin / name).write_text(text)
            (self.bin / name).chmod(0o755)

    # -- SSH -----------------------------------------------------------------------------------------

    async def _serve(self, user: str, keys: asyncssh.SSHAuthorizedKeys, host_key: Path) -> None:
        await self._stop_ssh()
        self._server = await asyncssh.create_server(
            lambda: _Server(self, user, keys), self.address, self.port, server_host_keys=[str(host_key)],
            process_factory=self._run, sftp_factory=lambda chan: _HomeSFTP(chan, self.home),
            allow_scp=False, reuse_address=True, encoding=None,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop_ssh(self) -> None:
        self.drop_links()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def drop_links(self) -> None:
        """Cut every SSH connection (a flaky network); the server keeps listening."""
        for conn in list(self.connections):
            conn.abort()

    async def _run(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        """A command as sshd runs one: the login's shell, in its home, stdin and output streamed both ways."""
        env = {"PATH": f"{self.bin}:{SYSTEM_PATH}", "HOME": str(self.home),
               "PVC_SIM_DISK": str(self.disk), "PVC_SIM_MACHINE": str(self.home), "LANG": "C.UTF-8",
               "USER": process.get_extra_info("username") or "root"}
        if self.installed_root is not None:
            env[SIM_ROOT_ENV] = str(self.installed_root)  # installer/proof.py reads the marker there
        pipe = asyncio.subprocess.PIPE
        proc = await asyncio.create_subprocess_shell(
            process.command or "true", cwd=self.home, env=env, stdin=pipe, stdout=pipe, stderr=pipe)
        feeding = asyncio.create_task(self._feed(process, proc))
        try:
            # no EOF until both outputs are done: exit() closes the channel after the last byte
            await process.redirect(stdout=proc.stdout, stderr=proc.stderr, send_eof=False)
            await process.stdout.drain()  # returns once the output has reached its end and been sent
            await process.stderr.drain()
            code = await proc.wait()
            process.exit(code if code >= 0 else 255)
        except (OSError, asyncssh.Error):
            if proc.returncode is None:
                proc.kill()
        finally:
            feeding.cancel()

    @staticmethod
    async def _feed(process: asyncssh.SSHServerProcess[bytes], proc: asyncio.subprocess.Process) -> None:
        """The client's stdin to the command (Ansible's pipelining sends its modules this way), then EOF."""
        assert proc.stdin is not None
        try:
            while data := await process.stdin.read(65536):
                proc.stdin.write(data)
                await proc.stdin.drain()
        except (OSError, asyncssh.Error):
            pass
        finally:
            proc.stdin.close()
