"""Run many lab BMCs in one process, each on its own loopback address, from flags or a YAML file.

    lab = BmcLab(LabConfig.from_flags(count=3, personalities=["idrac9", "ilo"], state_dir=d))
    async with lab:
        for b in lab.bmcs: print(b.url)

A lab YAML (`pvcctl lab bmc --config lab.yml`):

    state_dir: /tmp/pvcctl-lab          # CA, certificates, generated password
    port: 8443
    username: admin
    password_env: LAB_BMC_PASSWORD      # or password_file: PATH; else generated into state_dir
    time_scale: 1.0                     # vendor delays (iDRAC 10's 60 s of 409) times this
    bmcs:
      - {name: hv1, address: 127.0.1.1, personality: idrac9, serial: 7XK2M93,
         macs: ["b4:7a:f1:00:00:01"], power_delay: 0, faults: {latency: 0.05, error_rate: 0.1}}

Every BMC has its own HTTPS certificate from a CA the lab makes in its state directory. The password
comes from an environment variable, a file, or is generated into `<state_dir>/password` (0600).
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ruamel.yaml import YAML, YAMLError

from core.errors import UserError
from lab.bmc import LabBmc
from lab.bmc_http import build_app
from lab.faults import Faults
from lab.machine import Machine, SimulatedMachine
from lab.personalities import PERSONALITIES
from lab.pki import LabPki, make_lab_pki


class LabConfigError(UserError):
    """The lab's flags or YAML cannot be used."""


class FaultsModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    latency: float = Field(0.0, ge=0)
    error_rate: float = Field(0.0, ge=0, le=1)
    hang_rate: float = Field(0.0, ge=0, le=1)
    reset_rate: float = Field(0.0, ge=0, le=1)
    busy_after_power_off: float = Field(0.0, ge=0)
    max_sessions: int | None = Field(None, ge=1)
    license_missing: bool = False
    lost_reply_rate: float = Field(0.0, ge=0, le=1)
    reject_if_match: bool = False
    sessions_disabled: bool = False
    config_jobs_fail: bool = False


class BmcModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    address: str
    personality: str = "standard"
    serial: str
    macs: list[str]
    power_delay: float = Field(0.0, ge=0)
    faults: FaultsModel = Field(default_factory=FaultsModel)


class LabConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state_dir: Path
    port: int = Field(8443, ge=0, le=65535)
    username: str = "admin"
    password_env: str | None = None
    password_file: Path | None = None
    time_scale: float = Field(1.0, gt=0)
    bmcs: list[BmcModel]

    @classmethod
    def from_flags(cls, *, count: int, personalities: list[str], state_dir: Path, port: int = 8443,
                   base_address: str = "127.0.1.1", faults: dict[str, Any] | None = None,
                   **extra: Any) -> LabConfig:
        try:
            base = ipaddress.ip_address(base_address)
        except ValueError:
            raise LabConfigError(f"--base-address {base_address!r} is not an IP address") from None
        names = personalities or ["standard"]
        bmcs = [
            {"name": f"node{i + 1:03d}", "address": str(base + i), "personality": names[i % len(names)],
             "serial": f"PVC{i + 1:06d}", "macs": [f"52:54:00:{(i >> 8) & 255:02x}:{i & 255:02x}:{n:02x}"
                                                   for n in (1, 2)],
             "faults": faults or {}}
            for i in range(count)
        ]
        try:
            return cls.model_validate({"state_dir": state_dir, "port": port, "bmcs": bmcs, **extra})
        except ValidationError as err:
            raise LabConfigError(f"lab flags: {_first_problem(err)}") from None

    @classmethod
    def from_yaml(cls, path: Path) -> LabConfig:
        try:
            data = YAML(typ="safe").load(path.read_text())
            return cls.model_validate(data)
        except (OSError, YAMLError) as err:
            raise LabConfigError(f"lab config {path}: cannot read it: {err}") from None
        except ValidationError as err:
            raise LabConfigError(f"lab config {path}: {_first_problem(err)}") from None

    def check(self) -> None:
        for bmc in self.bmcs:
            if bmc.personality not in PERSONALITIES:
                raise LabConfigError(f"BMC {bmc.name}: unknown personality {bmc.personality!r}; "
                                     f"choose from {', '.join(PERSONALITIES)}")
            if not ipaddress.ip_address(bmc.address).is_loopback:
                raise LabConfigError(f"BMC {bmc.name}: address {bmc.address} is not loopback (127.0.0.0/8)")


def _first_problem(err: ValidationError) -> str:
    first = err.errors()[0]
    return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"


@dataclass(frozen=True)
class RunningBmc:
    name: str
    url: str
    bmc: LabBmc


MachineFactory = Callable[[BmcModel], Machine]


def simulated_machine(spec: BmcModel) -> Machine:
    return SimulatedMachine(name=spec.name, serial=spec.serial, macs=tuple(spec.macs),
                            power_delay=spec.power_delay)


class BmcLab:
    """Many lab BMCs served from this process (see the module docstring)."""

    def __init__(self, config: LabConfig, *, machine_factory: MachineFactory = simulated_machine):
        config.check()
        self.config = config
        self.machine_factory = machine_factory
        self.bmcs: list[RunningBmc] = []
        self.password_source = ""
        self.pki: LabPki | None = None
        self._runners: list[web.AppRunner] = []
        self._fetchers: list[aiohttp.ClientSession] = []

    def _password(self) -> str:
        cfg = self.config
        if cfg.password_env:
            value = os.environ.get(cfg.password_env)
            if not value:
                raise LabConfigError(f"environment variable {cfg.password_env} (the lab BMC password) is empty")
            self.password_source = f"environment variable {cfg.password_env}"
            return value
        path = cfg.password_file or cfg.state_dir / "password"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(12) + "\n")
            path.chmod(0o600)
        self.password_source = f"file {path}"
        return path.read_text().strip()

    async def start(self) -> None:
        cfg = self.config
        password = self._password()
        self.pki = make_lab_pki(cfg.state_dir / "pki", [b.address for b in cfg.bmcs])
        for index, spec in enumerate(cfg.bmcs):
            bmc = LabBmc(PERSONALITIES[spec.personality], self.machine_factory(spec), cfg.username, password,
                         faults=Faults(**spec.faults.model_dump()), time_scale=cfg.time_scale, seed=index,
                         fetcher=self._fetcher_for(spec.address))
            runner = web.AppRunner(build_app(bmc), access_log=None, handler_cancellation=True)
            await runner.setup()
            self._runners.append(runner)
            context: ssl.SSLContext = self.pki.server_context(spec.address)
            site = web.TCPSite(runner, spec.address, cfg.port, ssl_context=context, backlog=128)
            try:
                await site.start()
            except OSError as err:
                await self.stop()
                raise LabConfigError(f"BMC {spec.name}: cannot listen on {spec.address}:{cfg.port}: "
                                     f"{err.strerror}") from None
            port = runner.addresses[-1][1]  # the real port when the config says 0
            self.bmcs.append(RunningBmc(spec.name, f"https://{spec.address}:{port}", bmc))

    def _fetcher_for(self, address: str) -> aiohttp.ClientSession:
        """A BMC fetches the image from its own address, as a real one does: the controller's ISO
        server answers only the inventory's BMC addresses."""
        connector = aiohttp.TCPConnector(local_addr=(address, 0))
        fetcher = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30))
        self._fetchers.append(fetcher)
        return fetcher

    async def stop(self) -> None:
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()
        for fetcher in self._fetchers:
            await fetcher.close()
        self._fetchers.clear()

    async def __aenter__(self) -> BmcLab:
        await self.start()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, err: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()
