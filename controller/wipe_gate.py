"""The one question before any disk is wiped: every node's chosen disk, stated, then "wipe these N disks?".

Each node's job comes to the gate after its inspection, with the line that states its wipe; the
question is asked once every node of the run has come (or has ended without coming: a failed BMC,
an unmet requirement), and its answer lets all of them go on, or none. With `--yes` or for a lab's
inventory there is no question (`ask` is None). Whether a question can be asked at all (a terminal)
is decided before the run touches anything (controller/consent.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

from core.errors import UserError

Ask = Callable[[list[str]], Awaitable[bool]]


class WipeDeclined(UserError):
    """The person at the terminal did not confirm the wipe: nothing was written."""


class WipeGate:
    def __init__(self, nodes: Iterable[str], ask: Ask | None):
        self._expected = set(nodes)
        self._arrived: dict[str, str] = {}
        self._ask = ask
        self._decision: asyncio.Future[bool] | None = None
        self._asking: asyncio.Task[None] | None = None

    async def confirm(self, node: str, statement: str) -> None:
        """Return once the wipe is confirmed for this run; WipeDeclined when it is not."""
        if self._ask is None:
            return
        if self._decision is None:
            self._decision = asyncio.get_running_loop().create_future()
        self._arrived[node] = statement
        self._maybe_ask()
        if not await asyncio.shield(self._decision):
            raise WipeDeclined("the wipe was not confirmed; nothing was written")

    def withdraw(self, node: str) -> None:
        """A node that ended (done, failed, stopped) is waited for no longer."""
        self._expected.discard(node)
        self._maybe_ask()

    def _maybe_ask(self) -> None:
        if self._ask is None or self._asking is not None or not self._arrived:
            return
        if not self._expected <= set(self._arrived):
            return
        statements = [self._arrived[n] for n in sorted(self._arrived)]
        self._asking = asyncio.get_running_loop().create_task(self._run_ask(statements))

    async def _run_ask(self, statements: list[str]) -> None:
        assert self._ask is not None and self._decision is not None
        try:
            answer = await self._ask(statements)
        except Exception:  # an unreadable terminal is no yes
            answer = False
        if not self._decision.done():
            self._decision.set_result(answer)
