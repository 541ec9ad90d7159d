"""`pvcctl bmc`: operate the BMCs of one node or of every node in an inventory."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Operate BMCs over Redfish.")
