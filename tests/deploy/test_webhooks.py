"""Webhooks: node done, node failed and deploy ended reach a local listener, signed; a failing webhook is
tried again in the background and never fails or holds up the deploy."""

from __future__ import annotations

import json
import re

from aiohttp import web

from controller.webhooks import SIGNATURE, signature
from tests.deploy.conftest import LabFactory, Pvcctl, node_states, serving


async def test_webhooks_are_told_and_a_failing_one_harms_nothing(make_lab: LabFactory, pvcctl: Pvcctl) -> None:
    received: list[tuple[dict, str]] = []
    broken: list[int] = []

    async def good(request: web.Request) -> web.Response:
        body = await request.read()
        received.append((json.loads(body), request.headers.get(SIGNATURE, "")))
        assert request.headers[SIGNATURE] == signature("hook-secret", body)
        return web.Response(status=204)

    async def failing(request: web.Request) -> web.Response:
        broken.append(1)
        return web.Response(status=500)

    app = web.Application()
    app.router.add_post("/good", good)
    app.router.add_post("/broken", failing)
    async with serving(app) as port:
        lab = await make_lab(2, deploy={"retries": 0, "deadlines": {"preflight": 4}})
        lab.bmc("hv2").faults.error_rate = 1.0  # hv2 fails
        text = lab.inventory.read_text()
        hooks = (f"  webhooks:\n  - url: http://127.0.0.1:{port}/good\n    token:\n      env: HOOK_TOKEN\n"
                 f"  - url: http://127.0.0.1:{port}/broken?key=private\n")
        lab.inventory.write_text(re.sub(r"(  lab: true\n)", lambda m: m.group(1) + hooks, text, count=1))
        pvcctl.env["HOOK_TOKEN"] = "hook-secret"
        result = await pvcctl.run("deploy", str(lab.inventory))
    assert result.code == 1 and node_states(lab) == {"hv1": "done", "hv2": "failed"}, result.err
    events = sorted((body["event"], body["node"]) for body, _ in received)
    assert events == [("deploy_ended", ""), ("node_done", "hv1"), ("node_failed", "hv2")]
    failed = next(body for body, _ in received if body["event"] == "node_failed")
    assert failed["cluster"] == "simlab" and failed["attempt"] == 1 and "BMC" in failed["error"]
    ended = next(body for body, _ in received if body["event"] == "deploy_ended")
    assert ended["exit_status"] == 1
    assert len(broken) >= 2  # the failing one was tried again, in the background
    run_log = next((lab.dir / "runs" / "simlab").glob("*/logs/run.log")).read_text()
    assert "not delivered after 4 tries (HTTP 500)" in run_log and "private" not in run_log
