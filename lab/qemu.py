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

The machines boot UEFI (OVMF, each with its own NVRAM) by default, as real servers do, or SeaBIOS
(`firmware=bios`). A UEFI machine whose BMC has Secure Boot on at a reset (lab/secure_boot.py) starts
Debian's Secure Boot OVMF instead, with Microsoft's keys enrolled, from an NVRAM of its own. Each
gets as many vCPUs as the host has cores per machine (at least one): three machines with two vCPUs
each on a 2-core host spend their time contending, not emulating. The ISO a BMC is told to mount is
fetched once per URL and version and shared by the machines (they all mount the same file
read-only), as the deploy serves all of them one ISO.

Under TCG a node takes minutes: about 50 s to its live system, 1 minute to install, 35 s to boot.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import time
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
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS.fd")  # the template each machine's NVRAM starts from
# Debian's Secure Boot OVMF (package ovmf): the SMM-protected code, and NVRAM with Microsoft's keys
# enrolled (UserMode), which a machine starts from when its BMC has Secure Boot on at a reset
# (lab/secure_boot.py). The 4 MiB code needs 4 MiB vars, so it has an NVRAM file of its own.
OVMF_SECBOOT_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.secboot.fd")
OVMF_SECBOOT_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.ms.fd")
# The lab's disks are scratch: guest flushes need not reach the host's disk (QEMU still writes every
# block to the file, so a power-off by SIGKILL loses nothing the guest wrote).
DISK_CACHE = "unsafe"


class LabFirmware(enum.StrEnum):
    UEFI = "uefi"  # OVMF
    BIOS = "bios"  # SeaBIOS


def default_cpus(count: int) -> int:
    """vCPUs per machine: the host's cores shared out, at least one."""
    return max(1, (os.cpu_count() or 1) // count)


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
    firmware: LabFirmware = LabFirmware.UEFI
    cpus: int = 2
    media: CdCache | None = None  # shared by the lab's machines
    _power: str = "Off"
    _process: asyncio.subprocess.Process | None = field(default=None, repr=False)
    _starting: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def disk(self) -> Path:
        return self.workdir / "disk.raw"

    @property
    def nvram(self) -> Path:
        return self.workdir / "OVMF_VARS.fd"

    @property
    def secure_nvram(self) -> Path:
        """The NVRAM the Secure Boot firmware uses (its own: the boot entries of one are not the other's)."""
        return self.workdir / "OVMF_VARS_4M.ms.fd"

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
            if self.secure_boot and self.firmware is LabFirmware.UEFI:
                self._copy_nvram(OVMF_SECBOOT_VARS, self.secure_nvram)
            with (self.workdir / "qemu.err").open("ab") as errors:
                self._process = await asyncio.create_subprocess_exec(
                    *self.command(medium), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors)
            log.info("%s boots from %s (pid %s)", self.name, event.source, self._process.pid)
        except Exception:  # a machine that cannot start stays dark, as a real one would
            log.exception("%s: power-on failed", self.name)
            self._power = "Off"

    async def _fetch(self, url: str) -> Path:
        media = self.media or CdCache(self.workdir / "cd")
        return await media.fetch(url, self.bmc_address, self.workdir / "cd-fetch.log")

    def command(self, cd: Path | None) -> list[str]:
        # bootindex, not -boot: OVMF honours it over its NVRAM entries (a reinstall boots the CD
        # although the installed system's entry is there), and SeaBIOS does too
        if cd:
            boot = ["-drive", f"file={cd},if=none,id=cd,media=cdrom,readonly=on,format=raw",
                    "-device", "ide-cd,drive=cd,bus=ide.0,bootindex=0"]
        else:
            boot = []
        machine, firmware = self._firmware()
        serial_log = self.workdir / f"serial-{len(self.boots)}.log"
        return ["qemu-system-x86_64", "-accel", "tcg", "-machine", machine, "-m", str(MEMORY_MIB),
                "-smp", str(self.cpus), *firmware,
                "-display", "none", "-monitor", "none", "-serial", f"file:{serial_log}",
                "-smbios", f"type=1,serial={self.serial}",
                "-drive", f"file={self.disk},if=none,id=disk,format=raw,cache={DISK_CACHE}",
                "-device", f"virtio-blk-pci,drive=disk,addr=0x4,bootindex={1 if cd else 0}",
                "-netdev", f"tap,id=n0,ifname={self.tap},script=no,downscript=no",
                "-device", f"virtio-net-pci,netdev=n0,mac={self.macs[0]},addr=0x5", *boot]

    def _firmware(self) -> tuple[str, list[str]]:
        """The machine type and firmware options: SeaBIOS, OVMF, or (its BMC has Secure Boot on at this
        reset) Debian's Secure Boot OVMF, which needs SMM and its flash locked to SMM (secure=on)."""
        if self.firmware is LabFirmware.BIOS:
            return "q35", []  # SeaBIOS has no Secure Boot: a real BIOS-mode server boots without it too
        if self.secure_boot:
            return "q35,smm=on", ["-global", "driver=cfi.pflash01,property=secure,value=on",
                                  "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_SECBOOT_CODE}",
                                  "-drive", f"if=pflash,format=raw,unit=1,file={self.secure_nvram}"]
        return "q35", ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
                       "-drive", f"if=pflash,format=raw,unit=1,file={self.nvram}"]

    @staticmethod
    def _copy_nvram(template: Path, nvram: Path) -> None:
        """A machine's own NVRAM, made once from `template` (kept across boots: the boot entries live there)."""
        if nvram.exists():
            return
        if not template.is_file():
            raise LabUsageError(f"UEFI machines need OVMF ({template} is missing): apt-get install ovmf, "
                                "or give --firmware bios")
        shutil.copyfile(template, nvram)

    def prepare(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.disk.exists():
            subprocess.run(["truncate", "-s", DISK_SIZE, str(self.disk)], check=True)
        if self.firmware is LabFirmware.UEFI:
            if not OVMF_CODE.is_file():
                raise LabUsageError(f"UEFI machines need OVMF ({OVMF_CODE} is missing): apt-get install ovmf, "
                                    "or give --firmware bios")
            self._copy_nvram(OVMF_VARS, self.nvram)  # its own NVRAM: the installer writes its boot entry here
        if _ip("link", "show", self.tap, check=False).returncode != 0:
            _ip("tuntap", "add", "dev", self.tap, "mode", "tap")
        _ip("link", "set", self.tap, "master", BRIDGE)
        _ip("link", "set", self.tap, "up")


class CdCache:
    """The images the lab's BMCs were told to mount, fetched once per URL and version (ETag).

    Every BMC still asks the server (a HEAD from its own address, as a BMC checks its image), but only
    the first downloads it; the rest mount the same read-only file, so N machines cost one transfer
    of the ISO through Python, not N at once while the VMs hold the cores.
    """

    def __init__(self, directory: Path):
        self.dir = directory
        self._locks: dict[str, asyncio.Lock] = {}

    async def fetch(self, url: str, local_address: str, log_file: Path) -> Path:
        started = time.monotonic()
        lock = self._locks.setdefault(url, asyncio.Lock())
        connector = aiohttp.TCPConnector(local_addr=(local_address, 0))
        async with lock, aiohttp.ClientSession(connector=connector) as http:
            async with http.head(url) as head:
                head.raise_for_status()
                version = head.headers.get("ETag", "") + head.headers.get("Content-Length", "")
            out = self.dir / (hashlib.sha256(f"{url} {version}".encode()).hexdigest()[:24] + ".iso")
            fetched = not out.exists()
            if fetched:
                await self._download(http, url, out)
        with log_file.open("a") as log_:  # bench/lab.py reads how long the ISO took to arrive
            log_.write(f"{time.time():.0f} {'fetched' if fetched else 'shared'} {out.stat().st_size} bytes "
                       f"in {time.monotonic() - started:.1f} s\n")
        return out

    async def _download(self, http: aiohttp.ClientSession, url: str, out: Path) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        partial = out.with_suffix(".part")
        async with http.get(url) as answer:
            answer.raise_for_status()
            with partial.open("wb") as sink:
                async for chunk in answer.content.iter_chunked(4 << 20):
                    sink.write(chunk)
        partial.rename(out)


class QemuLab:
    """N QEMU machines behind emulated BMCs, and their inventory, in `directory`.

    `iso_cache` (a `pvcctl iso build` cache) is linked where deploy builds the cluster's ISO, so the
    build reuses its stages and only writes this cluster's seed.
    """

    def __init__(self, count: int, directory: Path, *, iso_cache: Path | None = None,
                 controller_port: int = 0, deploy: dict[str, Any] | None = None,
                 firmware: LabFirmware = LabFirmware.UEFI, cpus: int | None = None, secure_boot: bool = False):
        if not 1 <= count <= 8:
            raise LabUsageError(f"--qemu {count}: give 1 to 8 machines (each is a QEMU VM under software emulation)")
        if secure_boot and firmware is not LabFirmware.UEFI:
            raise LabUsageError("--secure-boot needs UEFI machines: leave out --firmware bios")
        self.count = count
        self.firmware = firmware
        # the machines come with Secure Boot off, as servers often do; the inventory asks the deploy to turn
        # it on through each BMC (bmc.secure_boot: on), so their next reset starts Secure Boot OVMF
        self.secure_boot = secure_boot
        self.cpus = cpus or default_cpus(count)
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

        media = CdCache(self.dir / "virtual-media")

        def machine(spec: BmcModel) -> QemuMachine:
            index = int(spec.name.removeprefix("node")) - 1
            box = QemuMachine(name=spec.name, serial=spec.serial, macs=tuple(spec.macs),
                              workdir=self.dir / "machines" / f"hv{index + 1}", tap=f"{TAP_PREFIX}{index}",
                              bmc_address=spec.address, firmware=self.firmware, cpus=self.cpus,
                              media=media,
                              boot=BootOverride(mode="UEFI" if self.firmware is LabFirmware.UEFI else "Legacy"))
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
                        "ca_bundle": str(self.bmc_lab.pki.ca_path),
                        **({"secure_boot": "on"} if self.secure_boot else {})},
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
