"""The simulated machine's software: a live node when it boots the ISO, the installed system after.

Plugged into `lab.machine.SimulatedMachine`'s boot hooks behind the BMC emulator (`lab.server`):
when a machine boots from the inserted ISO URL, its `SimulatedNode` fetches the ISO like a BMC
would, reads the seed from it (xorriso), and brings up a live node on its own loopback address: a
real asyncssh server holding the ISO's pinned host key, trusting the controller key from the seed,
that runs commands in a per-node home directory (the real installer runs there, in simulated-disk
mode: `pvc-simulate.json` in that home says so), and that checks in to the controller as the ISO
does. Booted from disk after an install, it serves SSH as the installed system: the deploy user,
the plan's keys, and the host key the installer generated (kept on the "disk" by an ssh-keygen
wrapper, because a simulated install throws its keys away).

`SimLab` runs N such machines behind emulated BMCs and writes their inventory; `pvcctl lab up
--sim N` runs one until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from pathlib import Path
from typing import Any

import aiohttp
import asyncssh
import typer

from controller.live import SIMULATE_FILE, STEP_DELAY_FILE
from core.errors import UserError
from core.keys import fingerprint
from iso.seed import Seed
from lab.machine import BootEvent, BootSource, Machine

log = logging.getLogger(__name__)

CHECKIN_INTERVAL = 0.5

_KEYGEN_WRAPPER = """#!/bin/sh
# A simulated install throws its host keys away; the simulated machine keeps them on its "disk".
/usr/bin/ssh-keygen "$@" || exit $?
key=""; prev=""
for arg in "$@"; do [ "$prev" = "-f" ] && key="$arg"; prev="$arg"; done
if [ -n "$key" ] && [ -n "$PVC_SIM_DISK" ]; then mkdir -p "$PVC_SIM_DISK" && cp "$key" "$key.pub" "$PVC_SIM_DISK/"; fi
"""


def simulated_disks(serial: str, macs: tuple[str, ...]) -> dict[str, Any]:
    """What the installer's --simulate reads: one 480 GB disk, the machine's NICs, UEFI."""
    return {
        "lsblk": {"blockdevices": [{"name": "sda", "path": "/dev/sda", "type": "disk", "size": 480_103_981_056,
                                    "model": "SIMULATED SSD", "vendor": "PVCLAB", "serial": f"{serial}-D0",
                                    "tran": "sata", "rm": False, "ro": False, "children": []}]},
        "interfaces": {f"eth{i}": mac for i, mac in enumerate(macs)},
        "efi": True,
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
                 claimed_key: Path | None = None, ssh_port: int = 0):
        self.machine = machine
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
        self.disk = home / "disk"

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
        self.home.mkdir(parents=True, exist_ok=True)
        iso = self.home / "live.iso"
        async with aiohttp.ClientSession() as http, http.get(image_url) as answer:
            answer.raise_for_status()
            iso.write_bytes(await answer.read())
        seed = Seed.from_json(await self._extract(iso, "/pvc/seed.json"))
        iso.unlink()  # the simulated machine needs only the seed from it
        mine = seed.match(set(self.machine.macs), self.machine.serial)
        if mine is not None and mine.address:
            self.address = mine.address.split("/")[0]
        self._write_tools()
        disks = simulated_disks(self.machine.serial, self.machine.macs)
        if self.diskless_boots > 0:  # a fault for tests: the disk does not show up on this boot
            self.diskless_boots -= 1
            disks["lsblk"]["blockdevices"] = []
        (self.home / SIMULATE_FILE).write_text(json.dumps(disks))
        (self.home / STEP_DELAY_FILE).write_text(f"{self.step_delay}\n")
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
        self.bin.mkdir(parents=True, exist_ok=True)
        wrapper = self.bin / "ssh-keygen"
        wrapper.write_text(_KEYGEN_WRAPPER)
        wrapper.chmod(0o755)

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
        keys = asyncssh.import_authorized_keys("\n".join(plan["ssh_keys"]) + "\n")
        await self._serve(plan["deploy_user"], keys, host_key)

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
        env = {"PATH": f"{self.bin}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(self.home),
               "PVC_SIM_DISK": str(self.disk), "PVC_SIM_MACHINE": str(self.home), "LANG": "C.UTF-8",
               "USER": process.get_extra_info("username") or "root"}
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


# -- a whole simulated cluster ---------------------------------------------------------------------------


# PVC node ids stop at 255, so an inventory holds 250 machines at most; larger labs are for bench/deploy.py,
# which builds its cluster model itself.
MAX_MACHINES = 1000


class SimLab:
    """N simulated machines behind emulated BMCs, their ISO and their inventory, in `directory`.

    `rogue` names impostor nodes (tests): they check in claiming the ISO's host key but present another.
    `ssh_port` fixes every node's SSH port (each node has its own address) for tools that cannot learn
    it from a check-in (bench/deploy.py's Ansible baseline); 0 lets each node pick a free one.
    """

    def __init__(self, count: int, directory: Path, *, step_delay: float = 0.05, controller_port: int = 0,
                 rogue: frozenset[str] = frozenset(), deploy: dict[str, Any] | None = None,
                 base_iso: Path | None = None, live_key: Path | None = None, ssh_port: int = 0):
        if not 1 <= count <= MAX_MACHINES:
            raise LabUsageError(f"--sim {count}: give 1 to {MAX_MACHINES} machines")
        self.count = count
        self.dir = directory.resolve()
        self.step_delay = step_delay
        self.controller_port = controller_port or _free_port()
        self.rogue = rogue
        self.deploy = deploy or {}
        self.ssh_port = ssh_port
        self.nodes: dict[str, SimulatedNode] = {}
        self.inventory = self.dir / "inventory.yml"
        self.bmc_lab: Any = None
        # the real live ISO (re-seeded for this lab) and its host key, or else a tiny xorriso image
        self.base_iso = base_iso
        self.live_key = live_key

    @property
    def controller_url(self) -> str:
        return f"http://127.0.0.1:{self.controller_port}"

    def hostname(self, index: int) -> str:
        return f"hv{index + 1}"

    async def start(self) -> SimLab:
        from lab.server import BmcLab, BmcModel, LabConfig

        self.dir.mkdir(parents=True, exist_ok=True)
        live_key = self.live_key or _host_key(self.dir / "live-key")
        rogue_key = _host_key(self.dir / "rogue-key")
        controller_key = _host_key(self.dir / "controller", "controller_ed25519")
        config = LabConfig.from_flags(count=self.count, personalities=["standard"], state_dir=self.dir / "bmc",
                                      port=0, base_address="127.0.1.1")

        def machine(spec: BmcModel) -> Machine:
            from lab.machine import SimulatedMachine

            index = int(spec.name.removeprefix("node")) - 1
            name = self.hostname(index)
            box = SimulatedMachine(name=spec.name, serial=spec.serial, macs=tuple(spec.macs))
            rogue = name in self.rogue
            node = SimulatedNode(box, self.dir / "machines" / name, _node_address(index),
                                 rogue_key if rogue else live_key, step_delay=self.step_delay,
                                 claimed_key=live_key if rogue else None, ssh_port=self.ssh_port)
            box.on_boot, box.on_power_off = node.on_boot, node.on_power_off
            self.nodes[name] = node
            return box

        self.bmc_lab = BmcLab(config, machine_factory=machine)
        await self.bmc_lab.start()
        public = _public_line(controller_key)
        if self.base_iso is not None:
            from iso.seed import write_iso_with_seed

            iso = await asyncio.to_thread(write_iso_with_seed, self.base_iso, self._seed(public),
                                          self.dir / "pvc-live.iso")
        else:
            iso = await make_sim_iso(self.dir / "pvc-live.iso", self._seed(public))
        (self.dir / "pvc-live.iso.hostkey.pub").write_text(_public_line(live_key) + "\n")
        self.inventory.write_text(self._inventory(iso, controller_key))
        return self

    async def stop(self) -> None:
        for node in self.nodes.values():
            await node.on_power_off(node.machine)
        if self.bmc_lab is not None:
            await self.bmc_lab.stop()

    async def __aenter__(self) -> SimLab:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def bmc(self, hostname: str) -> Any:
        """The emulated BMC (lab.bmc.LabBmc) of a node: tests change its `faults`."""
        index = int(hostname.removeprefix("hv")) - 1
        return self.bmc_lab.bmcs[index].bmc

    def _seed(self, controller_public: str) -> Seed:
        from iso.seed import SeedNode

        nodes = tuple(SeedNode(name=self.hostname(i), macs=(self.bmc_lab.config.bmcs[i].macs[0],),
                               address=f"{_node_address(i)}/8") for i in range(self.count))
        return Seed(self.controller_url, controller_public, nodes)

    def _inventory(self, iso: Path, controller_key: Path) -> str:
        assert self.bmc_lab.pki is not None
        doc = {
            "version": 1,
            "cluster": {"name": "simlab", "domain": "sim.pvc.test"},
            "controller": {"listen": f"127.0.0.1:{self.controller_port}", "url": self.controller_url,
                           "ssh_key": str(controller_key), "state_dir": str(self.dir / "runs"), "iso": str(iso),
                           "lab": True},
            "defaults": {
                "bmc": {"username": self.bmc_lab.config.username, "password": {"file": "bmc/password"},
                        "ca_bundle": str(self.bmc_lab.pki.ca_path)},
                "install": {"method": "image", "disk": "largest", "dns": ["127.0.0.53"]},
                "install_network": {"interface": "eth0"},
                "deploy": {"retries": 1, **self.deploy},
            },
            "networks": {
                "upstream": {"subnet": "127.2.0.0/16", "gateway": "127.2.255.254", "floating_ip": "127.2.255.250",
                             "device": "eth0"},
                "cluster": {"subnet": "10.250.0.0/16", "floating_ip": "10.250.255.250", "device": "eth1"},
                "storage": {"subnet": "10.251.0.0/16", "floating_ip": "10.251.255.250", "device": "eth1"},
                "bmc": {"subnet": "127.0.0.0/16", "gateway": "127.0.255.254"},  # the emulated BMCs (127.0.1.x)
            },
            "nodes": [{"hostname": self.hostname(i), "coordinator": i < min(3, self.count) if self.count >= 3
                       else i == 0, "bmc": {"address": b.url}} for i, b in enumerate(self.bmc_lab.bmcs)],
        }
        return dump_inventory(doc, "A simulated PVC cluster written by pvcctl lab up --sim; deploy it with "
                              "pvcctl deploy.")


async def serve_stand_in(lab: SimLab) -> Any:
    """A controller's part without pvcctl, where the lab's seed says the controller is: the lab's ISO
    at /pvc-live.iso, and an answer to every check-in (a live system checks in until answered).
    For what drives the machines otherwise: bench/deploy.py's Ansible baseline, tests of a machine
    alone. Returns the aiohttp runner; `await runner.cleanup()` stops it."""
    from aiohttp import web

    async def iso(_: web.Request) -> web.StreamResponse:
        return web.FileResponse(lab.dir / "pvc-live.iso")

    async def checkin(_: web.Request) -> web.StreamResponse:
        return web.json_response({"ack": True})

    app = web.Application()
    app.router.add_get("/pvc-live.iso", iso)
    app.router.add_post("/api/v1/checkin", checkin)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", lab.controller_port).start()
    return runner


def dump_inventory(doc: dict[str, Any], header: str) -> str:
    """A lab's inventory as YAML, one line per value however long the lab's paths, under a comment."""
    import io

    from ruamel.yaml import YAML

    out = io.StringIO()
    yaml = YAML()
    yaml.width = 4096
    yaml.dump(doc, out)
    return f"# {header}\n{out.getvalue()}"


class LabUsageError(UserError):
    """`pvcctl lab up` was asked for something it cannot run."""


def _node_address(index: int) -> str:
    return f"127.2.{(index + 1) >> 8}.{(index + 1) & 255}"


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _host_key(directory: Path, name: str = "ssh_host_ed25519_key") -> Path:
    path = directory / name
    if not path.is_file():
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(path))
        path.chmod(0o600)
    return path


def _public_line(private: Path) -> str:
    return asyncssh.read_private_key(str(private)).export_public_key().decode().strip()


async def make_sim_iso(out: Path, seed: Seed) -> Path:
    """A tiny but valid ISO 9660 image (xorriso) carrying the seed at /pvc/seed.json: what the
    simulated lab boots. It has no live system in it: the simulated machine plays that part."""
    staging = out.parent / "iso-root"
    (staging / "pvc").mkdir(parents=True, exist_ok=True)
    (staging / "pvc" / "seed.json").write_text(seed.to_json())
    proc = await asyncio.create_subprocess_exec(
        "xorriso", "-as", "mkisofs", "-quiet", "-V", "PVC_SIM", "-R", "-J", "-o", str(out), str(staging),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"xorriso failed: {err.decode()[-300:]}")
    return out


def lab_up(
    sim: int = typer.Option(0, "--sim", help="how many simulated machines (1-250: PVC node ids end at 255)"),
    qemu: int = typer.Option(0, "--qemu", help="how many QEMU machines (1-8; run it in a network namespace "
                             "of its own: ip netns exec NS pvcctl lab up --qemu 1)"),
    directory: Path = typer.Option(Path("simlab"), "--dir", help="where the lab keeps its state and inventory"),
    step_delay: float = typer.Option(0.05, "--step-delay", help="seconds each simulated install step takes"),
    iso_cache: Path | None = typer.Option(None, "--iso-cache", help="with --qemu: a pvcctl iso build cache for "
                                          "deploy to reuse (default: /var/cache/pvcctl/iso when it exists)"),
) -> None:
    """Start a simulated (--sim) or virtual (--qemu) cluster behind emulated BMCs until Ctrl-C; print its
    inventory."""
    if (sim > 0) == (qemu > 0):
        raise LabUsageError("give --sim N (simulated machines) or --qemu N (QEMU machines), one of the two")
    if sim and not 1 <= sim <= 250:
        raise LabUsageError(f"--sim {sim}: give 1 to 250 machines (a PVC cluster's node ids end at 255)")

    async def run() -> None:
        lab: Any
        if qemu:
            from iso.cli import DEFAULT_CACHE
            from lab.qemu import QemuLab

            cache = iso_cache or (DEFAULT_CACHE if DEFAULT_CACHE.is_dir() else None)
            lab, what = QemuLab(qemu, directory, iso_cache=cache), f"virtual lab of {qemu} QEMU machines"
        else:
            lab, what = SimLab(sim, directory, step_delay=step_delay), f"simulated lab of {sim} machines"
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):  # either way the machines are powered off first
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        async with lab:
            typer.echo(f"{what} is up; its inventory: {lab.inventory}")
            prefix = _netns_prefix() if qemu else ""
            typer.echo(f"deploy it with: {prefix}pvcctl deploy {lab.inventory}   (Ctrl-C here stops the lab)")
            await stop.wait()

    asyncio.run(run())


def _netns_prefix() -> str:
    """`ip netns exec NAME ` when this process runs in a named network namespace."""
    mine = os.stat("/proc/self/ns/net").st_ino
    for entry in sorted(Path("/run/netns").glob("*")) if Path("/run/netns").is_dir() else []:
        with contextlib.suppress(OSError):
            if entry.stat().st_ino == mine:
                return f"ip netns exec {entry.name} "
    return ""
