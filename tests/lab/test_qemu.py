"""The QEMU machines' pieces that need no VM: what QEMU is told to boot, and the virtual media they
share (fetched from a real aiohttp server on loopback, from each BMC's own address)."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

from aiohttp import web

from lab.bmc import LabBmc
from lab.machine import BootEvent, BootOverride
from lab.personalities import ILO
from lab.qemu import OVMF_CODE, OVMF_SECBOOT_CODE, CdCache, LabFirmware, QemuMachine, default_cpus


def _machine(tmp_path: Path, firmware: LabFirmware) -> QemuMachine:
    return QemuMachine(name="node001", serial="PVC000001", macs=("52:54:00:00:00:01",), workdir=tmp_path,
                       tap="pvctap0", bmc_address="127.0.1.1", firmware=firmware, cpus=1,
                       boot=BootOverride(mode="UEFI"))


def _value(argv: list[str], option: str, contains: str) -> str:
    return next(v for o, v in itertools.pairwise(argv) if o == option and contains in v)


def test_a_uefi_machine_boots_ovmf_with_its_own_nvram_and_the_cd_first_when_asked(tmp_path: Path) -> None:
    box = _machine(tmp_path, LabFirmware.UEFI)
    cd = box.command(tmp_path / "live.iso")
    assert f"readonly=on,file={OVMF_CODE}" in _value(cd, "-drive", "pflash")
    assert _value(cd, "-drive", "unit=1").endswith(f"file={tmp_path / 'OVMF_VARS.fd'}")
    # bootindex, which OVMF puts before its NVRAM entries (a reinstall must boot the CD)
    assert "bootindex=0" in _value(cd, "-device", "ide-cd") and "bootindex=1" in _value(cd, "-device", "virtio-blk")
    assert "-boot" not in cd and cd[cd.index("-smp") + 1] == "1"
    disk = box.command(None)
    assert "bootindex=0" in _value(disk, "-device", "virtio-blk") and not any("cdrom" in a for a in disk)
    assert "cache=unsafe" in _value(disk, "-drive", "disk.raw")


def test_a_bios_machine_has_no_pflash(tmp_path: Path) -> None:
    assert not any("pflash" in arg for arg in _machine(tmp_path, LabFirmware.BIOS).command(tmp_path / "x.iso"))


def test_secure_boot_on_starts_debians_secure_boot_ovmf_with_its_own_nvram(tmp_path: Path) -> None:
    box = _machine(tmp_path, LabFirmware.UEFI)
    box.secure_boot = True
    argv = box.command(None)
    assert argv[argv.index("-machine") + 1] == "q35,smm=on"  # the secure flash is SMM's to write
    assert _value(argv, "-global", "cfi.pflash01") == "driver=cfi.pflash01,property=secure,value=on"
    assert f"unit=0,readonly=on,file={OVMF_SECBOOT_CODE}" in _value(argv, "-drive", "pflash")
    assert _value(argv, "-drive", "unit=1").endswith(f"file={tmp_path / 'OVMF_VARS_4M.ms.fd'}")
    assert str(OVMF_CODE) not in " ".join(argv) and "OVMF_VARS.fd" not in " ".join(argv)
    box.secure_boot = False
    plain = box.command(None)
    assert plain[plain.index("-machine") + 1] == "q35" and "-global" not in plain


def test_a_bios_machine_ignores_secure_boot(tmp_path: Path) -> None:
    box = _machine(tmp_path, LabFirmware.BIOS)
    box.secure_boot = True
    argv = box.command(None)
    assert argv[argv.index("-machine") + 1] == "q35" and not any("pflash" in a for a in argv)


class _Unstarted(QemuMachine):
    """A QEMU machine that records the command line it would start, and starts nothing."""

    started: list[list[str]]

    async def _start(self, event: BootEvent) -> None:
        self.started.append(self.command(None))


async def test_the_bmcs_secure_boot_at_the_reset_decides_the_firmware(tmp_path: Path) -> None:
    box = _Unstarted(name="node001", serial="PVC000001", macs=("52:54:00:00:00:01",), workdir=tmp_path,
                     tap="pvctap0", bmc_address="127.0.1.1", cpus=1)
    box.started = []
    bmc = LabBmc(ILO, box, "admin", "pw")
    bmc.secure_boot.change(True, ignored=False)  # as a PATCH does: pending until the reset
    assert box.secure_boot is False
    await bmc.reset("On")
    await asyncio.sleep(0)  # the machine starts in a task of its own
    await bmc.reset("ForceOff")
    bmc.secure_boot.change(False, ignored=False)
    await bmc.reset("On")
    await asyncio.sleep(0)
    first, second = box.started
    assert OVMF_SECBOOT_CODE.name in " ".join(first) and "q35,smm=on" in first
    assert OVMF_SECBOOT_CODE.name not in " ".join(second) and str(OVMF_CODE) in " ".join(second)


def test_the_cores_are_shared_out() -> None:
    assert default_cpus(1) >= 1 and default_cpus(64) == 1 and default_cpus(1) >= default_cpus(3)


async def test_machines_mounting_one_iso_download_it_once(tmp_path: Path) -> None:
    served = tmp_path / "served.iso"
    served.write_bytes(b"\x01" * (3 << 20))
    gets: list[str] = []
    heads: list[str] = []

    async def iso(request: web.Request) -> web.StreamResponse:
        (heads if request.method == "HEAD" else gets).append(request.remote or "")
        return web.FileResponse(served)

    app = web.Application()
    app.router.add_get("/iso/t/pvc.iso", iso)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/iso/t/pvc.iso"
    try:
        media = CdCache(tmp_path / "media")
        got = await asyncio.gather(*(media.fetch(url, f"127.0.1.{i}", tmp_path / f"fetch-{i}.log")
                                     for i in (1, 2, 3)))
        assert len(set(got)) == 1 and got[0].read_bytes() == served.read_bytes()
        assert len(gets) == 1 and sorted(heads) == ["127.0.1.1", "127.0.1.2", "127.0.1.3"]  # each BMC asks
        served.write_bytes(b"\x02" * (3 << 20))  # a new ISO at the same URL (new ETag): fetched again
        again = await media.fetch(url, "127.0.1.1", tmp_path / "fetch-1.log")
        assert again != got[0] and again.read_bytes() == served.read_bytes() and len(gets) == 2
        assert "fetched" in (tmp_path / "fetch-1.log").read_text()
    finally:
        await runner.cleanup()
