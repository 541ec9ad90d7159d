"""The console screen on tty1 and the serial console: what this is, its addresses, whether it
has checked in, and a menu to run the interactive installer or a shell (stdlib only).

The screen is drawn again only when what it shows has changed. Its state files are read every few
seconds (no process started); the addresses come from `ip` once, and again only when the kernel
says an address or link changed (a netlink socket). A live node waits on this screen for most of
its install, and a redraw every few seconds with a fork of `ip` cost it about 6% of a CPU under
software emulation (the virtual lab), and cleared the screen under whoever was reading it.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
from typing import TextIO

from iso.live import STATE_DIR
from iso.live.sysinfo import boot_mode, global_addresses, host_key_fingerprint, physical_links

REFRESH_SECONDS = 5.0
INSTALLER = "/usr/local/sbin/pvc-installer"


def _read(name: str, default: str) -> str:
    try:
        return (STATE_DIR / name).read_text().strip()
    except OSError:
        return default


class AddressWatcher:
    """This machine's global addresses, looked up again only after the kernel announced a change.

    Its file descriptor (a NETLINK_ROUTE socket on the link and address groups) becomes readable on
    a change: select on it, then call `changed()`. Without netlink it looks them up every time."""

    GROUPS = 0x1 | 0x10 | 0x100  # RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR

    def __init__(self, events: socket.socket | None = None):
        self.events = events
        if events is None:
            try:
                self.events = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
                self.events.bind((0, self.GROUPS))
            except OSError:
                self.events = None
        if self.events is not None:
            self.events.setblocking(False)  # changed() drains it
        self._cached: list[str] | None = None

    def fileno(self) -> int:
        return self.events.fileno() if self.events is not None else -1

    def changed(self) -> None:
        """Drain the announcements; the next `addresses()` looks again."""
        if self.events is not None:
            try:
                while self.events.recv(65536):
                    pass
            except OSError:  # BlockingIOError when drained
                pass
        self._cached = None

    def addresses(self) -> list[str]:
        if self._cached is None or self.events is None:
            self._cached = global_addresses()
        return self._cached


def screen(addresses: list[str]) -> str:
    try:
        seed = json.loads(_read("seed.json", "{}"))
    except ValueError:
        seed = {}
    links = ", ".join(f"{name} {mac}" for name, mac in physical_links().items()) or "none found"
    lines = [
        "=" * 64,
        " PVC live installer (pvcctl): this machine is waiting to be installed",
        "=" * 64,
        f" host:       {socket.gethostname()}   boot mode: {boot_mode()}",
        f" links:      {links}",
        f" addresses:  {', '.join(addresses) or 'none yet'}",
        f" seed:       {seed.get('seed', 'not applied yet')}; node {seed.get('node') or '-'}; "
        f"network {seed.get('network', '-')}",
        f" check-in:   {_read('checkin', 'not yet')}",
        f" SSH key:    {host_key_fingerprint() or 'none'} (root, controller key only)",
        "",
        " [i] run the interactive installer   [s] shell   [r] refresh",
        "",
    ]
    return "\n".join(lines)


def main(stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout, refresh: float = REFRESH_SECONDS,
         watcher: AddressWatcher | None = None) -> int:
    """Show the screen until the user picks; returns to the login shell on [s]."""
    watcher = watcher or AddressWatcher()
    keyboard, events = stdin.fileno(), watcher.fileno()
    waits = [keyboard, events] if events >= 0 else [keyboard]
    shown = None
    while True:
        text = screen(watcher.addresses())
        if text != shown:
            stdout.write("\033[2J\033[H" + text + " choice: ")
            stdout.flush()
            shown = text
        ready, _, _ = select.select(waits, [], [], refresh)
        if events in ready:
            watcher.changed()
        if keyboard not in ready:
            continue
        choice = stdin.readline()
        if choice == "":  # end of input: no console user to serve
            return 0
        choice = choice.strip().lower()
        shown = None  # whatever was typed, the screen is drawn again
        if choice == "i":
            subprocess.call([INSTALLER], env={**os.environ})
            input(" installer finished; press Enter ")
        elif choice == "s":
            print(" shell: type 'exit' to get back to this screen (or run pvc-console)", file=stdout)
            return 0


if __name__ == "__main__":
    sys.exit(main())
