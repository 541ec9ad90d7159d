"""A simulated cluster: N machines behind emulated BMCs, each running a `lab.sim_node.SimulatedNode`,
their ISO (a tiny one carrying the seed, or the real live ISO re-seeded) and their inventory.

`pvcctl lab up --sim N` (lab/cli.py) runs one until Ctrl-C; tests and bench/deploy.py start one in
their own process. `serve_stand_in` plays the controller's part for what drives the machines without
pvcctl.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from iso.seed import Seed
from lab.cluster import LabUsageError, dump_inventory, free_port, host_key, public_line
from lab.machine import Machine
from lab.sim_node import SimHardware, SimulatedNode

# PVC node ids stop at 255, so an inventory holds 250 machines at most; larger labs are for bench/deploy.py,
# which builds its cluster model itself.
MAX_MACHINES = 1000


class SimLab:
    """N simulated machines behind emulated BMCs, their ISO and their inventory, in `directory`.

    `rogue` names impostor nodes (tests): they check in claiming the ISO's host key but present another.
    `ssh_port` fixes every node's SSH port (each node has its own address) for tools that cannot learn
    it from a check-in (bench/deploy.py's Ansible baseline); 0 lets each node pick a free one.
    `hardware` gives named nodes other hardware than the default (tests of PVC's requirements).
    """

    def __init__(self, count: int, directory: Path, *, step_delay: float = 0.05, controller_port: int = 0,
                 rogue: frozenset[str] = frozenset(), deploy: dict[str, Any] | None = None,
                 base_iso: Path | None = None, live_key: Path | None = None, ssh_port: int = 0,
                 hardware: dict[str, SimHardware] | None = None, inventory: dict[str, Any] | None = None,
                 personalities: list[str] | None = None):
        if not 1 <= count <= MAX_MACHINES:
            raise LabUsageError(f"--sim {count}: give 1 to {MAX_MACHINES} machines")
        self.count = count
        self.dir = directory.resolve()
        self.step_delay = step_delay
        self.controller_port = controller_port or free_port()
        self.rogue = rogue
        self.deploy = deploy or {}
        self.ssh_port = ssh_port
        self.hardware = hardware or {}
        self.extra_defaults = inventory or {}  # more keys under the inventory's defaults (tests); bmc: merged
        self.personalities = personalities or ["standard"]  # the BMCs', in turn
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
        live_key = self.live_key or host_key(self.dir / "live-key")
        rogue_key = host_key(self.dir / "rogue-key")
        controller_key = host_key(self.dir / "controller", "controller_ed25519")
        config = LabConfig.from_flags(count=self.count, personalities=self.personalities, state_dir=self.dir / "bmc",
                                      port=0, base_address="127.0.1.1")

        def machine(spec: BmcModel) -> Machine:
            from lab.machine import SimulatedMachine

            index = int(spec.name.removeprefix("node")) - 1
            name = self.hostname(index)
            box = SimulatedMachine(name=spec.name, serial=spec.serial, macs=tuple(spec.macs))
            if name in self.hardware:
                box.memory_gib = self.hardware[name].memory_gib
            rogue = name in self.rogue
            node = SimulatedNode(box, self.dir / "machines" / name, _node_address(index),
                                 rogue_key if rogue else live_key, step_delay=self.step_delay,
                                 claimed_key=live_key if rogue else None, ssh_port=self.ssh_port,
                                 bmc_address=spec.address, hardware=self.hardware.get(name))
            box.on_boot, box.on_power_off = node.on_boot, node.on_power_off
            self.nodes[name] = node
            return box

        self.bmc_lab = BmcLab(config, machine_factory=machine)
        await self.bmc_lab.start()
        public = public_line(controller_key)
        if self.base_iso is not None:
            from iso.seed import write_iso_with_seed

            iso = await asyncio.to_thread(write_iso_with_seed, self.base_iso, self._seed(public),
                                          self.dir / "pvc-live.iso")
        else:
            iso = await make_sim_iso(self.dir / "pvc-live.iso", self._seed(public))
        (self.dir / "pvc-live.iso.hostkey.pub").write_text(public_line(live_key) + "\n")
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
                        "ca_bundle": str(self.bmc_lab.pki.ca_path), **self.extra_defaults.get("bmc", {})},
                "install": {"method": "image", "disk": "largest", "dns": ["127.0.0.53"]},
                "install_network": {"interface": "eth0"},
                "deploy": {"retries": 1, **self.deploy},
                # a simulated machine is no production server: PVC's own minimums would refuse it
                "requirements": {"profile": "lab"},
                **{key: value for key, value in self.extra_defaults.items() if key != "bmc"},
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


def _node_address(index: int) -> str:
    return f"127.2.{(index + 1) >> 8}.{(index + 1) & 255}"


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
