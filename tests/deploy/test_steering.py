"""Steering a running deploy through its API: a failed node is started over while the others go on
(`pvcctl retry` reaches the running controller), with the run's token only."""

from __future__ import annotations

import asyncio

import aiohttp

from tests.deploy.conftest import LabFactory, Pvcctl, journal_rows, node_states, run_dir, until


async def test_retry_reaches_the_running_deploy_and_the_others_carry_on(make_lab: LabFactory,
                                                                         pvcctl: Pvcctl) -> None:
    lab = await make_lab(3, step_delay=1.0, deploy={"retries": 0, "deadlines": {"preflight": 4}})
    lab.bmc("hv3").faults.error_rate = 1.0  # hv3 fails at once; hv1 and hv2 install slowly
    deploy = asyncio.create_task(pvcctl.run("deploy", str(lab.inventory)))
    await until(lambda: node_states(lab).get("hv3") == "failed", 60, "hv3 to fail")
    assert node_states(lab)["hv1"] not in ("done", "failed")  # the run goes on
    run = run_dir(lab)
    controller = dict(journal_rows(lab, "SELECT key, value FROM meta"))["controller"]
    token = (run / "token").read_text().strip()
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{controller}/api/v1/nodes/hv3/retry") as anonymous:
            assert anonymous.status == 401  # nobody on the network steers a deploy
        async with http.post(f"{controller}/api/v1/nodes/hv1/retry",
                             headers={"Authorization": f"Bearer {token}"}) as busy:
            assert busy.status == 409 and "still running" in (await busy.json())["reason"]
        async with http.post(f"{controller}/api/v1/nodes/hv9/retry",
                             headers={"Authorization": f"Bearer {token}"}) as unknown:
            assert unknown.status == 404

    lab.bmc("hv3").faults.error_rate = 0.0
    retried = await pvcctl.run("retry", "hv3", "-i", str(lab.inventory))
    assert retried.code == 0, retried.out + retried.err
    assert retried.out.strip() == "hv3: started over by the running deploy (attempt 2)"
    result = await deploy
    assert result.code == 0, result.out + result.err
    assert node_states(lab) == dict.fromkeys(("hv1", "hv2", "hv3"), "done") and run_dir(lab) == run
    assert dict(journal_rows(lab, "SELECT node, attempt FROM nodes")) == {"hv1": 1, "hv2": 1, "hv3": 2}
    hosts = (run / "pvc-ansible" / "hosts").read_text()
    assert all(f"hv{n}.sim.pvc.test" in hosts for n in (1, 2, 3))
    assert (run / "logs" / "hv3.1.log").is_file() and (run / "logs" / "hv3.2.log").is_file()  # each attempt's own
