"""The live step finds a node by its check-in, or by SSH at its static address when no check-in comes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest

from controller.node import steps
from controller.node.events import EventBus
from controller.node.results import LiveResult
from controller.node.steps import Limits, NodeContext, Services
from controller.server.checkin import Checkin, CheckinDesk


def _ctx(tmp_path: Path, host_public: str, client: Path, address: str | None) -> NodeContext:
    bus = EventBus()
    services = Services(bmc_for=lambda node: None, iso_url="", live_host_keys=(host_public,),  # type: ignore
                        client_key=client, installer=tmp_path, plans={}, desk=CheckinDesk("SHA256:x", bus), bus=bus,
                        limits=Limits.of(1, 1), logs=tmp_path, run_id="r", poll=0.05)
    node = SimpleNamespace(hostname="hv1", management_address=address)
    return NodeContext(node, 1, services)  # type: ignore[arg-type]


async def test_live_by_checkin(ssh_server: tuple[int, str, Path], tmp_path: Path) -> None:
    port, host_public, client = ssh_server
    ctx = _ctx(tmp_path, host_public, client, None)
    ctx.services.desk.expect("hv1", serial="S1")
    step = asyncio.create_task(steps.live(ctx))
    await asyncio.sleep(0.1)
    assert not step.done()  # DHCP and no check-in yet: nothing to connect to
    ctx.services.desk.receive(Checkin("S1", (), ("127.0.0.1/8",), "uefi", "SHA256:x", "hv1", port), "127.0.0.1")
    assert await asyncio.wait_for(step, 5) == LiveResult("127.0.0.1", port)


async def test_live_by_static_address_without_checkin(ssh_server: tuple[int, str, Path], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    port, host_public, client = ssh_server
    monkeypatch.setattr(steps, "LIVE_SSH_PORT", port)
    monkeypatch.setattr(steps, "PROBE_INTERVAL", 0.05)
    ctx = _ctx(tmp_path, host_public, client, "127.0.0.1")
    assert await asyncio.wait_for(steps.live(ctx), 5) == LiveResult("127.0.0.1", port)
