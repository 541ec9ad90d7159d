"""A real headless Chromium for the tests, driven over the DevTools protocol (aiohttp's websocket client).

Debian's `chromium`, started as CI runs it (root, no GPU, no network of its own): a fresh profile in
the test's tmp dir, `--remote-debugging-port=0`, the port read back from DevToolsActivePort. Only what
the dashboard tests need: navigate, evaluate, wait for a condition, set the viewport, screenshot.
A machine without chromium fails the test (scripts/setup installs it from scripts/apt/browser.txt).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--remote-debugging-port=0")


class CdpError(AssertionError):
    """The browser refused a command, or a page script threw."""


class Page:
    """One page target: commands by id, answers matched by id (events are not needed here)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse):
        self._ws = ws
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.errors: list[str] = []  # the page's uncaught exceptions and console errors, for failure messages
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self._ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            body = json.loads(message.data)
            self._note(body)
            future = self._waiting.pop(body.get("id", -1), None)
            if future is not None and not future.done():
                future.set_result(body)
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(CdpError("the browser closed its DevTools connection"))

    def _note(self, body: dict[str, Any]) -> None:
        params = body.get("params", {})
        if body.get("method") == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.errors.append(str(details.get("exception", {}).get("description") or details.get("text")))
        elif body.get("method") == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))

    async def send(self, method: str, timeout: float = 30, **params: Any) -> dict[str, Any]:
        ident = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[ident] = future
        await self._ws.send_str(json.dumps({"id": ident, "method": method, "params": params}))
        body = await asyncio.wait_for(future, timeout)
        if "error" in body:
            raise CdpError(f"{method}: {body['error']}")
        return body.get("result", {})

    async def evaluate(self, expression: str) -> Any:
        """The expression's value (awaited when it is a promise), as JSON."""
        result = await self.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise CdpError(f"{expression[:80]!r} threw: {details.get('exception', {}).get('description', details)}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 30, what: str = "") -> Any:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what or expression}; "
                                     f"the page's errors: {self.errors or 'none'}")
            await asyncio.sleep(0.2)

    async def goto(self, url: str, timeout: float = 30) -> None:
        await self.send("Page.navigate", url=url)
        await self.wait_for(f"location.href.startsWith({json.dumps(url.split('?')[0])}) && "
                            "document.readyState === 'complete'", timeout, f"{url} to load")

    async def viewport(self, width: int, height: int, mobile: bool = False) -> None:
        await self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                        mobile=mobile)

    async def screenshot(self, path: Path) -> Path:
        shot = await self.send("Page.captureScreenshot", timeout=60, format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


async def _port(profile: Path, proc: asyncio.subprocess.Process, timeout: float) -> int:
    active = profile / "DevToolsActivePort"
    deadline = asyncio.get_running_loop().time() + timeout
    while not (active.is_file() and active.read_text().strip()):
        if proc.returncode is not None:
            raise AssertionError(f"chromium exited with {proc.returncode} before it listened; see its stderr log")
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"chromium did not write {active} within {timeout}s")
        await asyncio.sleep(0.1)
    return int(active.read_text().split()[0])


@contextlib.asynccontextmanager
async def chromium(tmp: Path, timeout: float = 60) -> AsyncIterator[Page]:
    """A headless Chromium with a fresh profile under tmp, and its first page; killed afterwards."""
    binary = shutil.which("chromium")
    if binary is None:
        pytest.fail("chromium is not installed: run scripts/setup as root (scripts/apt/browser.txt lists it)")
    profile = tmp / "chromium-profile"
    profile.mkdir(parents=True)
    with (tmp / "chromium.stderr.log").open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(binary, *FLAGS, f"--user-data-dir={profile}", "about:blank",
                                                    stdout=asyncio.subprocess.DEVNULL, stderr=stderr,
                                                    start_new_session=True)
    try:
        port = await _port(profile, proc, timeout)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/json/list") as answer:
                targets = await answer.json()
            target = next(t for t in targets if t.get("type") == "page")
            async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=64 * 2**20) as ws:
                page = Page(ws)
                await page.send("Page.enable")
                await page.send("Runtime.enable")
                yield page
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
