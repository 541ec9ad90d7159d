"""Who says yes to the wipe: `--yes`, a lab's inventory, or the person at the terminal (asked once, by
controller/wipe_gate.py). With none of them the deploy refuses before it touches anything, as
`terraform apply` does without `-auto-approve`."""

from __future__ import annotations

import asyncio
import os
import sys

from core.errors import UserError
from inventory.model import Cluster


class WipeNotConfirmed(UserError):
    """No terminal to ask and no --yes: a deploy would wipe disks nobody agreed to."""


def needs_question(cluster: Cluster, *, yes: bool, inspect: bool) -> bool:
    """True when the run must ask before wiping; WipeNotConfirmed when it must and cannot."""
    if yes or inspect or cluster.controller.lab:
        return False
    if not sys.stdin.isatty():
        raise WipeNotConfirmed(f"deploying {cluster.name} wipes a disk on every node, and there is no terminal to "
                               "ask: add --yes to confirm, or run pvcctl deploy --inspect first to see which disks")
    return True


async def ask_on_terminal(statements: list[str]) -> bool:
    """Print every node's wipe and ask "wipe these N disks? [y/N]" on the terminal; only y or yes is yes.
    Read through the event loop (no thread), so a Ctrl-C while asking stops the run at once."""
    for line in statements:
        print(f"  {line}", flush=True)
    print(f"wipe these {len(statements)} disks? [y/N] ", end="", flush=True)
    loop = asyncio.get_running_loop()
    answered: asyncio.Future[str] = loop.create_future()
    fd = sys.stdin.fileno()

    def readable() -> None:
        data = os.read(fd, 1024).decode(errors="replace")
        if not answered.done():
            answered.set_result(data)

    loop.add_reader(fd, readable)
    try:
        text = await answered
    finally:
        loop.remove_reader(fd)
    return text.strip().lower() in ("y", "yes")
