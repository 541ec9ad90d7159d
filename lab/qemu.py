"""The virtual lab: QEMU machines behind the emulated BMCs, where `pvcctl deploy` does it all for real.

Each machine is a QEMU (TCG) virtual server with a 30 GiB disk and one NIC on a bridge. Its BMC is
the lab's HTTPS Redfish emulator; when powered on with the virtual CD as its one-time boot target,
the machine fetches the inserted ISO from its BMC's own address, as a BMC does, and boots it; else
it boots its disk. So a deploy onto it builds (or reuses) the real ISO, boots its live system, runs
the real installer onto the virtual disk, restarts the machine from that disk and logs in to it.

The bridge (`pvcbr0`, 10.254.0.254/24: the controller's address) and the machines' tap devices are
made in the current network namespace, which must be one of its own, never the host's:

    ip netns add pvclab
    ip netns exec pvclab pvcctl lab up --qemu 1 --dir vlab
    ip netns exec pvclab pvcctl deploy vlab/inventory.yml

Under TCG a node takes minutes: about 50 s to its live system, 2 minutes to install, 40 s to boot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from lab.cluster import LabUsageError, dump_inventory, free_port, host_key
from lab.machine import BootEvent, BootOverride, BootSource, Firmware

log = logging.getLogger(__name__)

BRIDGE = "pvcbr0"
TAP_PREFIX = "pvctap"
SUBNET = "10.254.0.0/24"
CONTROLLER_ADDRESS = "10.254.0.254"  # on the bridge: the machines' gateway and the controller
DISK_SIZE = "30G"  # pvc-installer's smallest layout needs about 29 GiB (sparse: costs what is written)
MEMORY_MIB = 3072


class NetnsError(LabUsageError):
    """The virtual lab would change the host's own network."""


def require_own_netns() -> None:
    """The bridge and taps go into this network namespace: refuse one with interfaces not the lab's own
    (the host's, or anyone's), so the lab never touches a real network."""
    import socket

    foreign = sorted(name for _, name in socket.if_nameindex()
                     if name not in ("lo", BRIDGE) and not name.startswith(TAP_PREFIX))
    if foreign:
        raise NetnsError(f"pvcctl lab up --qemu makes a bridge and tap devices, so it runs only in a network "
                         f"namespace of its own (this one has {', '.join(foreign)}): ip netns add pvclab; "
                         "ip netns exec pvclab pvcctl lab up --qemu 1, and deploy with ip netns exec pvclab too")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    answer = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and answer.returncode != 0:
        raise LabUsageError(f"ip {' '.join(args)} failed: {answer.stderr.strip()}")
    return answer


def make_bridge() -> None:
    """Loopback up (the BMCs listen on 127.0.1.x), and the machines' bridge with the controller's address."""
    _ip("link", "set", "lo", "up")
    if _ip("link", "show", BRIDGE, check=False).returncode != 0:
        _ip("link", "add", BRIDGE, "type", "bridge")
        _ip("addr", "add", f"{CONTROLLER_ADDRESS}/24", "dev", BRIDGE)
    _ip("link", "set", BRIDGE, "up")


@dataclass(eq=False)
class QemuMachine(Firmware):
    """A QEMU virtual server; the `Machine` a lab BMC drives (see lab.machine)."""

    name: str
    serial: str
    macs: tuple[str, ...]
    workdir: Path
    tap: str
    bmc_address: str  # the ISO is fetched from here, as the BMC itself would
    _power: str = "Off"
    _process: asyncio.subprocess.Process | None = field(default=None, repr=False)
    _starting: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def disk(self) -> Path:
        return self.workdir / "disk.raw"

    @property
    def power_state(self) -> str:
        if self._power == "On" and self._process is not None and self._process.returncode is not None:
            self._power = "Off"  # the guest powered itself off
        return self._power

    async def power_on(self) -> None:
        if self.power_state == "On":
            return
        event = self._boot_source()
        self.boots.append(event)
        self._power = "On"  # at once, as a BMC says; the machine gets going on its own time
        self._starting = asyncio.create_task(self._start(event), name=f"{self.name}-power-on")

    async def power_off(self) -> None:
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._starting
        if self._process is not None and self._process.returncode is None:
            self._process.send_signal(signal.SIGKILL)
            await self._process.wait()
        self._process = None
        self._power = "Off"

    async def graceful_shutdown(self) -> None:
        await self.power_off()

    async def restart(self) -> None:
        await self.power_off()
        await self.power_on()

    async def _start(self, event: BootEvent) -> None:
        try:
            medium = await self._fetch(event.image_url) if event.source is BootSource.CD else None
            with (self.workdir / "qemu.err").open("ab") as errors:
                self._process = await asyncio.create_subprocess_exec(
                    *self.command(medium), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors)
            log.info("%s boots from %s (pid %s)", self.name, event.source, self._process.pid)
        except Exception:  # a machine that cannot start stays dark, as a real one would
            log.exception("%s: power-on failed", self.name)
            self._power = "Off"

    async def _fetch(self, url: str) -> Path:
        out = self.workdir / "virtual-cd.iso"
        connector = aiohttp.TCPConnector(local_addr=(self.bmc_address, 0))
        async with aiohttp.ClientSession(connector=connector) as http, http.get(url) as answer:
            answer.raise_for_status()
            with out.open("wb") as sink:
                async for chunk in answer.content.iter_chunked(1 << 20):
                    sink.write(chunk)
        return out

    def command(self, cd: Path | None) -> list[str]:
        boot = ["-drive", f"file={cd},media=cdrom,readonly=on", "-boot", "once=d"] if cd else ["-boot", "c"]
        serial_log = self.workdir / f"serial-{len(self.boots)}.log"
        return ["qemu-system-x86_64", "-accel", "tcg", "-machine", "q35", "-m", str(MEMORY_MIB), "-smp", "2",
                "-display", "none", "-monitor", "none", "-serial", f"file:{serial_log}",
                "-smbios", f"type=1,serial={self.serial}",
                "-drive", f"file={self.disk},if=none,id=disk,format=raw",
                "-device", "virtio-blk-pci,drive=disk,addr=0x4",
                "-netdev", f"tap,id=n0,ifname={self.tap},script=no,downscript=no",
                "-device", f"virtio-net-pci,netdev=n0,mac={self.macs[0]},addr=0x5", *boot]

    def prepare(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.disk.exists():
            subprocess.run(["truncate", "-s", DISK_SIZE, str(self.disk)], check=True)
        if _ip("link", "show", self.tap, check=False).returncode != 0:
            _ip("tuntap", "add", "dev", self.tap, "mode", "tap")
        _ip("link", "set", self.tap, "master", BRIDGE)
        _ip("link", "set", self.tap, "up")


class QemuLab:
    """N QEMU machines behind emulated BMCs, and their inventory, in `directory`.

    `iso_cache` (a `pvcctl iso build` cache) is linked where deploy builds the cluster's ISO, so the
    build reuses its stages and only writes this cluster's seed.
    """

    def __init__(self, count: int, directory: Path, *, iso_cache: Path | None = None,
                 controller_port: int = 0, deploy: dict[str, Any] | None = None):
        if not 1 <= count <= 8:
            raise LabUsageError(f"--qemu {count}: give 1 to 8 machines (each is a QEMU VM under software emulation)")
        self.count = count
        self.dir = directory.resolve()
        self.iso_cache = iso_cache
        self.controller_port = controller_port or free_port()
        self.deploy = deploy or {}
        self.machines: dict[str, QemuMachine] = {}
        self.inventory = self.dir / "inventory.yml"
        self.bmc_lab: Any = None

    async def start(self) -> QemuLab:
        from lab.server import BmcLab, BmcModel, LabConfig

        require_own_netns()
        make_bridge()
        self.dir.mkdir(parents=True, exist_ok=True)
        controller_key = host_key(self.dir / "controller", "controller_ed25519")
        config = LabConfig.from_flags(count=self.count, personalities=["standard"], state_dir=self.dir / "bmc",
                                      port=0, base_address="127.0.1.1")

        def machine(spec: BmcModel) -> QemuMachine:
            index = int(spec.name.removeprefix("node")) - 1
            box = QemuMachine(name=spec.name, serial=spec.serial, macs=tuple(spec.macs),
                              workdir=self.dir / "machines" / f"hv{index + 1}", tap=f"{TAP_PREFIX}{index}",
                              bmc_address=spec.address, boot=BootOverride(mode="Legacy"))  # SeaBIOS
            box.prepare()
            self.machines[f"hv{index + 1}"] = box
            return box

        self.bmc_lab = BmcLab(config, machine_factory=machine)
        await self.bmc_lab.start()
        cluster_dir = self.dir / "runs" / "vlab"
        if self.iso_cache is not None and not (cluster_dir / "iso-cache").exists():
            cluster_dir.mkdir(parents=True, exist_ok=True)
            (cluster_dir / "iso-cache").symlink_to(self.iso_cache.resolve(), target_is_directory=True)
        self.inventory.write_text(self._inventory(controller_key))
        return self

    async def stop(self) -> None:
        for box in self.machines.values():
            await box.power_off()
        if self.bmc_lab is not None:
            await self.bmc_lab.stop()

    async def __aenter__(self) -> QemuLab:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _inventory(self, controller_key: Path) -> str:
        assert self.bmc_lab.pki is not None
        deadlines = {"live": 900, "install": 1800, "verify": 900}
        doc = {
            "version": 1,
            "cluster": {"name": "vlab", "domain": "vlab.pvc.test"},
            "controller": {"listen": f"{CONTROLLER_ADDRESS}:{self.controller_port}",
                           "url": f"http://{CONTROLLER_ADDRESS}:{self.controller_port}",
                           "ssh_key": str(controller_key), "state_dir": str(self.dir / "runs"), "lab": True},
            "defaults": {
                "bmc": {"username": self.bmc_lab.config.username, "password": {"file": "bmc/password"},
                        "ca_bundle": str(self.bmc_lab.pki.ca_path)},
                "install": {"method": "image", "disk": "largest", "dns": [CONTROLLER_ADDRESS]},
                "deploy": {"retries": 0, **self.deploy, "deadlines": {**deadlines, **self.deploy.get("deadlines", {})}},
                "requirements": {"profile": "lab"},  # small guests behind an emulated BMC with no IPMI
            },
            "networks": {
                "upstream": {"subnet": SUBNET, "gateway": CONTROLLER_ADDRESS, "floating_ip": "10.254.0.250",
                             "device": "enp0s5"},
                "cluster": {"subnet": "10.250.0.0/24", "floating_ip": "10.250.0.250", "device": "enp0s5"},
                "storage": {"subnet": "10.251.0.0/24", "floating_ip": "10.251.0.250", "device": "enp0s5"},
                "bmc": {"subnet": "127.0.0.0/16", "gateway": "127.0.255.254"},  # the emulated BMCs (127.0.1.x)
            },
            "nodes": [{"hostname": name, "coordinator": i < 3 if self.count >= 3 else i == 0,
                       "bmc": {"address": b.url}, "install_network": {"mac": box.macs[0]}}
                      for i, ((name, box), b) in enumerate(zip(self.machines.items(), self.bmc_lab.bmcs,
                                                               strict=True))],
        }
        return dump_inventory(doc, "A virtual PVC cluster (QEMU machines) written by pvcctl lab up --qemu; "
                              "deploy it from the same network namespace.")
