"""`pvcctl lab`: a virtual cluster on this machine (BMC emulator, simulated and QEMU machines).

    pvcctl lab bmc --count 3 --personality idrac9 --personality ilo      # 127.0.1.1-3:8443
    pvcctl lab bmc --config lab.yml
    pvcctl lab up --sim 5 --dir simlab                                   # simulated machines (lab/sim.py)
    ip netns exec pvclab pvcctl lab up --qemu 1 --dir vlab               # QEMU machines (lab/qemu.py)

Each runs until Ctrl-C. `bmc` prints each BMC's URL, the CA to give pvcctl (--ca-bundle) and where the
password is; `up` prints the cluster's inventory for `pvcctl deploy`.
"""

from __future__ import annotations

import asyncio
import resource
import signal
from pathlib import Path
from typing import Annotated, Any

import typer

from lab.cluster import LabUsageError, netns_prefix
from lab.personalities import PERSONALITIES
from lab.server import BmcLab, LabConfig, LabConfigError
from lab.sim import SimLab

app = typer.Typer(no_args_is_help=True, help="Run emulated BMCs or a whole virtual cluster on this machine.")


async def _serve(config: LabConfig) -> None:
    # Each BMC listens on its own socket and holds its clients' connections: 500 need > 1024 files.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with BmcLab(config) as lab:
        assert lab.pki is not None
        for running, spec in zip(lab.bmcs, config.bmcs, strict=True):
            typer.echo(f"bmc {running.name} {running.url} personality={spec.personality} serial={spec.serial} "
                       f"macs={','.join(spec.macs)} fingerprint={lab.pki.fingerprint(spec.address)}")
        typer.echo(f"ca {lab.pki.ca_path}")
        typer.echo(f"credentials user={config.username} password from {lab.password_source}")
        typer.echo("ready: Ctrl-C stops the lab", err=True)
        await stop.wait()
    typer.echo("stopped", err=True)


@app.command("bmc", epilog="Examples:\n\n  pvcctl lab bmc --count 3 -p idrac9 -p ilo -p supermicro\n\n"
                           "  pvcctl lab bmc --config lab.yml")
def bmc(
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", metavar="FILE", help="Lab YAML (bmcs, port, ...).")] = None,
    count: Annotated[int, typer.Option("--count", metavar="N", help="How many BMCs (1-1000).")] = 1,
    personality: Annotated[list[str] | None, typer.Option(
        "--personality", "-p", metavar="NAME", autocompletion=lambda: list(PERSONALITIES),
        help=f"Vendor personality, repeatable, cycled: {', '.join(PERSONALITIES)}.")] = None,
    base_address: Annotated[str, typer.Option(
        "--base-address", metavar="ADDRESS", help="Address of the first BMC.")] = "127.0.1.1",
    port: Annotated[int, typer.Option("--port", metavar="PORT", help="Port on every address (0: any free).")] = 8443,
    state_dir: Annotated[Path, typer.Option(
        "--state-dir", metavar="DIR", help="Where the CA, keys and password go.")] = Path("/tmp/pvcctl-lab"),
    password_env: Annotated[str | None, typer.Option(
        "--password-env", metavar="VAR", help="Environment variable holding the password.")] = None,
    time_scale: Annotated[float, typer.Option(
        "--time-scale", metavar="FACTOR", help="Multiply vendor delays by this.")] = 1.0,
    latency: Annotated[float, typer.Option("--latency", metavar="SECONDS", help="Added to every request.")] = 0.0,
    error_rate: Annotated[float, typer.Option(
        "--error-rate", metavar="SHARE", help="Share of requests answered 503.")] = 0.0,
    hang_rate: Annotated[float, typer.Option(
        "--hang-rate", metavar="SHARE", help="Share of requests never answered.")] = 0.0,
    busy_after_power_off: Annotated[float, typer.Option(
        "--busy-after-power-off", metavar="SECONDS", help="Answer 503 this long after a power-off.")] = 0.0,
    max_sessions: Annotated[int | None, typer.Option("--max-sessions", metavar="N", help="Session limit.")] = None,
) -> None:
    """Serve emulated Redfish BMCs over HTTPS, one per loopback address, until Ctrl-C."""
    if not 1 <= count <= 1000:
        raise LabUsageError(f"--count {count}: give 1 to 1000 BMCs")
    if config is not None:
        lab_config = LabConfig.from_yaml(config)
    else:
        unknown = [p for p in personality or [] if p not in PERSONALITIES]
        if unknown:
            raise LabConfigError(f"unknown personality {', '.join(unknown)}; choose from {', '.join(PERSONALITIES)}")
        faults = {"latency": latency, "error_rate": error_rate, "hang_rate": hang_rate,
                  "busy_after_power_off": busy_after_power_off, "max_sessions": max_sessions}
        lab_config = LabConfig.from_flags(count=count, personalities=personality or [], state_dir=state_dir,
                                          port=port, base_address=base_address, faults=faults,
                                          password_env=password_env, time_scale=time_scale)
    asyncio.run(_serve(lab_config))


@app.command("up", help=(
    "Start a simulated (--sim) or virtual (--qemu) cluster behind emulated BMCs, until Ctrl-C.\n\n"
    "It prints the cluster's inventory, ready for pvcctl deploy."),
    epilog="Examples:\n\n  pvcctl lab up --sim 5\n\n  ip netns exec pvclab pvcctl lab up --qemu 1 --dir vlab")
def up(
    sim: int = typer.Option(0, "--sim", metavar="N", show_default=False,
                            help="How many simulated machines (1-250: PVC node ids end at 255)."),
    qemu: int = typer.Option(0, "--qemu", metavar="N", show_default=False,
                             help="How many QEMU machines (1-8), in a network namespace of its own."),
    directory: Path = typer.Option(Path("simlab"), "--dir", metavar="DIR",
                                   help="Where the lab keeps its state and inventory."),
    step_delay: float = typer.Option(0.05, "--step-delay", metavar="SECONDS",
                                     help="How long each simulated install step takes."),
    iso_cache: Path | None = typer.Option(None, "--iso-cache", metavar="DIR",
                                          help="With --qemu: an ISO build cache for deploy to reuse "
                                          "(default: /var/cache/pvcctl/iso when it exists)."),
    firmware: str = typer.Option("uefi", "--firmware", metavar="uefi|bios",
                                 help="With --qemu: uefi (OVMF, as real servers) or bios (SeaBIOS)."),
    cpus: int = typer.Option(0, "--cpus", metavar="N", show_default=False,
                             help="With --qemu: vCPUs per machine (default: the cores shared out)."),
    secure_boot: bool = typer.Option(False, "--secure-boot",
                                     help="With --qemu: the inventory asks for UEFI Secure Boot on; the deploy "
                                     "turns it on through each BMC (Debian's Secure Boot OVMF, Microsoft's keys)."),
) -> None:
    if (sim > 0) == (qemu > 0):
        raise LabUsageError("give --sim N (simulated machines) or --qemu N (QEMU machines), one of the two")
    if secure_boot and not qemu:
        raise LabUsageError("--secure-boot goes with --qemu N: simulated machines have no firmware to switch")
    if sim and not 1 <= sim <= 250:
        raise LabUsageError(f"--sim {sim}: give 1 to 250 machines (a PVC cluster's node ids end at 255)")
    if firmware not in ("uefi", "bios"):
        raise LabUsageError(f"--firmware {firmware}: give uefi (OVMF) or bios (SeaBIOS)")
    if not 0 <= cpus <= 64:
        raise LabUsageError(f"--cpus {cpus}: give 1 to 64 vCPUs per machine, or 0 for the default")

    async def run() -> None:
        lab: Any
        if qemu:
            from iso.cli import DEFAULT_CACHE
            from lab.qemu import LabFirmware, QemuLab

            cache = iso_cache or (DEFAULT_CACHE if DEFAULT_CACHE.is_dir() else None)
            lab = QemuLab(qemu, directory, iso_cache=cache, firmware=LabFirmware(firmware), cpus=cpus or None,
                          secure_boot=secure_boot)
            firmware_name = "UEFI, Secure Boot asked" if secure_boot else lab.firmware.value.upper()
            what = f"virtual lab of {qemu} QEMU machines ({firmware_name}, {lab.cpus} vCPU each)"
        else:
            lab, what = SimLab(sim, directory, step_delay=step_delay), f"simulated lab of {sim} machines"
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):  # either way the machines are powered off first
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        async with lab:
            typer.echo(f"{what} is up; its inventory: {lab.inventory}")
            prefix = netns_prefix() if qemu else ""
            typer.echo(f"deploy it with: {prefix}pvcctl deploy {lab.inventory}   (Ctrl-C here stops the lab)")
            await stop.wait()

    asyncio.run(run())
