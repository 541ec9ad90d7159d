"""Nobody on the network can fail a deploy with check-ins: from the first moment of a deploy, an impostor
checks in for every node, with the node's serial (a BMC reports it) and the pinned fingerprint (public),
pointing at SSH servers of its own. Each such place is tried, rejected as a possible impostor (logged
with its source), and the nodes' real live systems are installed all the same."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
import asyncssh

from core.keys import fingerprint
from tests.deploy.conftest import LabFactory, Pvcctl, node_states, run_dir

NODES = ("hv1", "hv2", "hv3")


async def _impostor_ssh(address: str) -> asyncssh.SSHAcceptor:
    """An SSH server with a host key of its own, where an impostor would want the controller to log in."""
    return await asyncssh.listen(address, 0, server_host_keys=[asyncssh.generate_private_key("ssh-ed25519")],
                                 process_factory=lambda process: process.exit(0))


async def _forge(url: str, source: str, body: dict[str, object], stop: asyncio.Event) -> list[int]:
    answers: list[int] = []
    connector = aiohttp.TCPConnector(local_addr=(source, 0))
    async with aiohttp.ClientSession(connector=connector) as http:
        while not stop.is_set():
            with contextlib.suppress(aiohttp.ClientError):
                async with http.post(url, json=body) as answer:
                    answers.append(answer.status)
            await asyncio.sleep(0.5)  # within the controller's rate limit for one source
    return answers


async def test_forged_checkins_for_every_node_from_the_start_fail_no_node(make_lab: LabFactory,
                                                                          pvcctl: Pvcctl) -> None:
    lab = await make_lab(len(NODES), deploy={"retries": 0})
    pinned = fingerprint(asyncssh.read_private_key(str(lab.dir / "live-key" / "ssh_host_ed25519_key"))
                         .export_public_key().decode())
    servers, forgers, stop = [], [], asyncio.Event()
    deploy = asyncio.create_task(pvcctl.run("deploy", str(lab.inventory)))
    try:
        for n, name in enumerate(NODES, start=1):
            machine = lab.nodes[name].machine
            machine.power_delay = 2.0  # its real live system comes late: the impostor's check-ins come first
            server = await _impostor_ssh(f"127.9.9.{n}")
            servers.append(server)
            # a foreign host key at one place, nothing answering at another (each its own source address)
            for source, port in ((f"127.9.9.{n}", server.get_port()), (f"127.9.10.{n}", 9)):
                body = {"serial": machine.serial, "macs": list(machine.macs), "addresses": [f"{source}/8"],
                        "boot_mode": "uefi", "host_key_fingerprint": pinned, "node": name, "ssh_port": port}
                forgers.append(asyncio.create_task(_forge(lab.controller_url + "/api/v1/checkin", source, body,
                                                          stop)))
        result = await deploy
    finally:
        stop.set()
        answers = [status for forger in forgers for status in await forger]
        for server in servers:
            server.close()
    assert result.code == 0, result.out + result.err
    assert node_states(lab) == dict.fromkeys(NODES, "done")
    assert 200 in answers  # the impostor's check-ins matched the nodes: they were tried, not just turned away
    logs = run_dir(lab) / "logs"
    run_log = (logs / "run.log").read_text()
    for n, name in enumerate(NODES, start=1):
        log = (logs / f"{name}.1.log").read_text()
        rejected = [line for line in log.splitlines() if "rejected a check-in as a possible impostor" in line]
        assert any(f"it came from 127.9.9.{n}" in line and "not the pinned one" in line for line in rejected), log
        assert f"{name}: rejected a check-in as a possible impostor: it came from 127.9.9.{n}" in run_log
        assert f"live system up at 127.2.0.{n}:" in log  # the real one, at its own address
