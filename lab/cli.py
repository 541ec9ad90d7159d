"""`pvcctl lab`: a virtual cluster on this machine (BMC emulator, simulated and QEMU machines)."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Run a virtual cluster on this machine.")
