"""The console screen on tty1 and the serial console: what this is, its addresses, whether it
has checked in, and a menu to run the interactive installer or a shell (stdlib only)."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys

from iso.live import STATE_DIR
from iso.live.sysinfo import boot_mode, global_addresses, host_key_fingerprint, physical_links

REFRESH_SECONDS = 5.0
INSTALLER = "/usr/local/sbin/pvc-installer"


def _read(name: str, default: str) -> str:
    try:
        return (STATE_DIR / name).read_text().strip()
    except OSError:
        return default


def screen() -> str:
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
        f" addresses:  {', '.join(global_addresses()) or 'none yet'}",
        f" seed:       {seed.get('seed', 'not applied yet')}; node {seed.get('node') or '-'}; "
        f"network {seed.get('network', '-')}",
        f" check-in:   {_read('checkin', 'not yet')}",
        f" SSH key:    {host_key_fingerprint() or 'none'} (root, controller key only)",
        "",
        " [i] run the interactive installer   [s] shell   [r] refresh",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    """Show the screen until the user picks; returns to the login shell on [s]."""
    while True:
        sys.stdout.write("\033[2J\033[H" + screen() + " choice: ")
        sys.stdout.flush()
        ready, _, _ = select.select([sys.stdin], [], [], REFRESH_SECONDS)
        if not ready:
            continue
        choice = sys.stdin.readline()
        if choice == "":  # end of input: no console user to serve
            return 0
        choice = choice.strip().lower()
        if choice == "i":
            subprocess.call([INSTALLER], env={**os.environ})
            input(" installer finished; press Enter ")
        elif choice == "s":
            print(" shell: type 'exit' to get back to this screen (or run pvc-console)")
            return 0


if __name__ == "__main__":
    sys.exit(main())
