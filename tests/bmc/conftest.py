"""Fixtures for BMC tests: an ISO server on a real loopback socket, lab BMCs over HTTPS, fast timings."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr

from controller.bmc.endpoint import BmcEndpoint
from controller.bmc.redfish import BmcTimings, RedfishBmc
from controller.bmc.retry import RetryPolicy
from controller.bmc.transport import new_http_session
from lab.pki import make_lab_pki
from lab.server import BmcLab, LabConfig

# Quirk windows in the personalities are real seconds; the lab runs them 100 times faster.
TIME_SCALE = 0.01
FAST = BmcTimings(
    request_timeout=2.0,
    step=RetryPolicy(deadline=4.0, wait_initial=0.01, wait_max=0.05, wait_jitter=0.0),
    power_deadline=4.0,
    media_deadline=4.0,
    poll_interval=0.02,
    task_deadline=4.0,
    task_missing_grace=2.0,
    config_job_wait=0.02,
    config_job_deadline=4.0,
)


def write_iso(path: Path, size: int = 48 * 1024) -> Path:
    """A file a BMC takes for an ISO: the ISO 9660 'CD001' magic at sector 16."""
    data = bytearray(size)
    data[0x8001:0x8006] = b"CD001"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(data))
    return path


class IsoServer:
    """Serves a directory with aiohttp's static files (HEAD, Range) over HTTP and HTTPS."""

    def __init__(self, http_base: str, https_base: str):
        self.http = http_base
        self.https = https_base


@pytest.fixture
async def iso_server(tmp_path: Path) -> AsyncIterator[IsoServer]:
    www = tmp_path / "www"
    write_iso(www / "pvc.iso")
    write_iso(www / "pvc-image")  # a good image whose name does not end in .iso
    (www / "broken.iso").write_bytes(b"not an iso" * 10000)
    app = web.Application()
    app.router.add_static("/", www)
    pki = make_lab_pki(tmp_path / "iso-pki", ["127.0.0.1"])
    plain, secure = web.AppRunner(app), web.AppRunner(app)
    await plain.setup()
    await secure.setup()
    await web.TCPSite(plain, "127.0.0.1", 0).start()
    await web.TCPSite(secure, "127.0.0.1", 0, ssl_context=pki.server_context()).start()
    yield IsoServer(f"http://127.0.0.1:{plain.addresses[0][1]}", f"https://127.0.0.1:{secure.addresses[0][1]}")
    await plain.cleanup()
    await secure.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with new_http_session() as session:
        yield session


LabFactory = Callable[..., AbstractAsyncContextManager[BmcLab]]


@pytest.fixture
def lab_factory(tmp_path: Path) -> LabFactory:
    counter = iter(range(1000))

    @asynccontextmanager
    async def start(personalities: list[str], *, count: int | None = None, **extra: Any) -> AsyncIterator[BmcLab]:
        config = LabConfig.from_flags(
            count=count or len(personalities), personalities=personalities,
            state_dir=tmp_path / f"lab{next(counter)}", port=0, time_scale=TIME_SCALE, **extra,
        )
        async with BmcLab(config) as lab:
            yield lab

    return start


def endpoint_for(lab: BmcLab, index: int = 0, **overrides: Any) -> BmcEndpoint:
    assert lab.pki is not None
    values: dict[str, Any] = {
        "url": lab.bmcs[index].url, "username": "admin", "password": SecretStr(lab_password(lab)),
        "ca_bundle": lab.pki.ca_path,
    } | overrides
    return BmcEndpoint(**values)


def lab_password(lab: BmcLab) -> str:
    return lab.bmcs[0].bmc.password


def connect(lab: BmcLab, http: aiohttp.ClientSession, index: int = 0, *, timings: BmcTimings = FAST,
            **overrides: Any) -> RedfishBmc:
    return RedfishBmc(endpoint_for(lab, index, **overrides), session=http, node=lab.bmcs[index].name,
                      timings=timings)


async def raw_request(lab: BmcLab, method: str, path: str, *, index: int = 0, json: Any = None,
                      data: bytes | None = None, headers: dict[str, str] | None = None) -> aiohttp.ClientResponse:
    """One Basic-authenticated request straight to a lab BMC, to show what the BMC itself does."""
    assert lab.pki is not None
    context = ssl.create_default_context(cafile=lab.pki.ca_path)
    auth = {"Authorization": aiohttp.encode_basic_auth("admin", lab_password(lab))}
    async with aiohttp.ClientSession() as session, session.request(
        method, lab.bmcs[index].url + path, json=json, data=data, headers=auth | (headers or {}), ssl=context
    ) as response:
        await response.read()
        return response


async def finished(lab: BmcLab, location: str) -> dict[str, Any]:
    """Read a job until it is done; its body."""
    for _ in range(500):
        answer = await raw_request(lab, "GET", location)
        if answer.status == 200:
            return dict(await answer.json())
        await asyncio.sleep(0.01)
    raise AssertionError(f"job {location} never finished")
