"""The dashboard in a real headless Chromium during a 5-node simulated deploy, then `pvcctl serve` of the
finished run: rows appear and advance, a forced failure shows, the retry button (the token's cookie)
starts the node over while the token-less POST is refused, the phone width has no horizontal scroll.
Screenshots stay in the test's tmp dir (dashboard-*.png)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

from tests.cdp import Page, chromium
from tests.deploy.conftest import LabFactory, Pvcctl, journal_rows, node_states, run_dir, until

NODES = [f"hv{n}" for n in range(1, 6)]
STATES = ("Object.fromEntries([...document.querySelectorAll('#nodes tr.node')]"
          ".map(r => [r.dataset.node, r.dataset.state]))")
NO_SIDEWAYS = "document.scrollingElement.scrollWidth <= window.innerWidth"
WIDEST = ("JSON.stringify({inner: innerWidth, scroll: document.scrollingElement.scrollWidth, wide: "
          "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 390)"
          ".slice(0, 8).map(e => e.tagName + '#' + e.id + '.' + e.className + ' ' + e.getBoundingClientRect().right)})")


async def post_from_page(page: Page, path: str, credentials: str) -> int:
    return int(await page.evaluate(f"fetch({json.dumps(path)}, {{method: 'POST', credentials: '{credentials}'}})"
                                   ".then(r => r.status)"))


async def watch_states(page: Page, seen: dict[str, list[str]], until_expr: str, timeout: float, what: str) -> None:
    """Poll the table's states (each node's distinct states, in order) until the expression holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        for node, state in (await page.evaluate(STATES)).items():
            if not seen.setdefault(node, []) or seen[node][-1] != state:
                seen[node].append(state)
        if await page.evaluate(until_expr):
            return
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}; table went {seen}"
        await asyncio.sleep(0.2)


async def test_dashboard_in_chromium_during_a_deploy_and_served_after(make_lab: LabFactory, pvcctl: Pvcctl,
                                                                     tmp_path: Path) -> None:
    lab = await make_lab(5, step_delay=1.0, deploy={"retries": 0, "deadlines": {"preflight": 4}})
    lab.bmc("hv3").faults.error_rate = 1.0  # hv3 fails in preflight; the others install slowly
    deploy = asyncio.create_task(pvcctl.run("deploy", str(lab.inventory)))
    async with chromium(tmp_path) as page:
        await until(lambda: "controller" in dict(journal_rows(lab, "SELECT key, value FROM meta")), 60,
                    "the controller to listen")
        run = run_dir(lab)
        token = (run / "token").read_text().strip()
        await page.viewport(1200, 900)
        await page.goto(f"{lab.controller_url}/?token={token}")  # sets the cookie, redirects to /
        assert await page.evaluate("location.search") == ""  # the token does not stay in the address bar
        await page.wait_for("document.querySelectorAll('#nodes tr.node').length === 5", 30, "the five rows")
        seen: dict[str, list[str]] = {}
        await watch_states(page, seen, "document.querySelector('#row-hv3')?.dataset.state === 'failed' && "
                                       "!!document.querySelector('#row-hv3 button.retry')", 60, "hv3's failure")
        assert "ETA" in await page.evaluate("document.getElementById('summary').textContent")
        assert await page.evaluate("document.querySelector('#row-hv3 .message').textContent.length > 0")
        await page.screenshot(tmp_path / "dashboard-failed.png")

        assert await post_from_page(page, "api/v1/nodes/hv3/retry", "omit") == 401  # no token, no steering
        lab.bmc("hv3").faults.error_rate = 0.0
        await page.evaluate("document.querySelector('#row-hv3 button.retry').click()")
        notice = await page.wait_for("document.getElementById('notice').textContent", 30, "the retry's answer")
        assert notice == "hv3: started over (attempt 2)", notice
        await until(lambda: dict(journal_rows(lab, "SELECT node, attempt FROM nodes")).get("hv3") == 2, 30,
                    "hv3's second attempt")

        await page.evaluate("document.querySelector('#row-hv3 .message').click()")  # the row opens its detail
        await page.wait_for("!document.getElementById('detail').hidden && "
                            "document.querySelectorAll('#d-timeline tr').length >= 2 && "
                            "document.getElementById('d-log').textContent.includes('[preflight]')", 30, "hv3's detail")
        await page.viewport(390, 844, mobile=True)
        await asyncio.sleep(0.5)  # a frame or two to lay the page out again
        assert await page.evaluate(NO_SIDEWAYS) and await page.evaluate("window.innerWidth") == 390, \
            await page.evaluate(WIDEST)
        await page.screenshot(tmp_path / "dashboard-phone.png")

        all_done = f"Object.values({STATES}).every(s => s === 'done')"
        await watch_states(page, seen, all_done, 90, "every row to show done")  # the last events too
        result = await asyncio.wait_for(deploy, 60)
        assert result.code == 0, result.out + result.err
        assert node_states(lab) == dict.fromkeys(NODES, "done")
        for node in NODES:  # each row advanced through the phases, as the events came
            assert seen[node][-1] == "done" and len(seen[node]) >= 3, seen
        assert "failed" in seen["hv3"] and seen["hv3"].index("failed") < len(seen["hv3"]) - 1, seen

        await served(page, pvcctl, run, tmp_path)


async def served(page: Page, pvcctl: Pvcctl, run: Path, tmp_path: Path) -> None:
    """`pvcctl serve --run DIR`: the same page, read-only, from the journal."""
    proc = await pvcctl.start("serve", "--run", str(run), "--listen", "127.0.0.1:0")
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert line.startswith("dashboard (read-only): http://127.0.0.1:"), line
        url = line.split()[2]
        await page.viewport(1200, 900)
        await page.goto(url)
        await page.wait_for(f"JSON.stringify(Object.values({STATES})) === '{json.dumps(['done'] * 5)}'".replace(
            '", "', '","'), 30, "the finished run's five rows")
        assert not await page.evaluate("document.getElementById('mode').hidden")  # says it is read-only
        assert await page.evaluate("document.getElementById('stop').hidden")
        assert await post_from_page(page, "api/v1/nodes/hv3/retry", "same-origin") == 409
        await page.evaluate("document.querySelector('#row-hv3 .message').click()")
        await page.wait_for("[...document.querySelectorAll('#d-timeline tr td:nth-child(1)')]"
                            ".some(td => td.textContent === '2')", 30, "hv3's two attempts in the timeline")
        await page.screenshot(tmp_path / "dashboard-served.png")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 30)
    assert code == 0
