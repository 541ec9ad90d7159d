"""The `pvcctl` command line: one typer app, assembled here at the top; each part of pvcctl brings its own
sub-commands, so no part needs to import another's command line.

Every failure pvcctl can explain is a `PvcctlError`; `main` turns it into a one-line message
(or one line per problem) and its exit status, never a traceback.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import typer

from controller.bmc.cli import app as bmc_app
from controller.deploy_cli import register as register_deploy
from controller.preflight import preflight
from core.errors import PvcctlError
from inventory.cli import INVENTORY_HELP
from inventory.cli import app as inventory_app
from inventory.cli import validate as validate_file
from iso.cli import app as iso_app
from lab.cli import app as lab_app
from pvcctl import __version__

app = typer.Typer(
    name="pvcctl",
    help="Install a whole PVC cluster on bare metal in one command.",
    no_args_is_help=True,
    # typer's --install-completion / --show-completion: bash, zsh and fish complete commands, options,
    # node names from the inventory on the line (inventory/completion.py) and run directories
    add_completion=True,
    pretty_exceptions_enable=False,
    epilog="Start with: pvcctl validate inventory.yml, then pvcctl deploy inventory.yml",
)
app.add_typer(inventory_app, name="inventory")
app.add_typer(bmc_app, name="bmc")
app.add_typer(iso_app, name="iso")
app.add_typer(lab_app, name="lab")
register_deploy(app)


@app.command("validate", epilog="Examples:\n\n  pvcctl validate inventory.yml\n\n"
                                 "  pvcctl validate --file-only examples/cluster.yml")
def validate(
    inventory: Path = typer.Argument(..., metavar="INVENTORY", help=INVENTORY_HELP),
    file_only: bool = typer.Option(False, "--file-only", help="Check the file alone (not on the controller)."),
) -> None:
    """Check an inventory file, then what a deploy checks first; writes nothing.

    Every problem in the file at once; then, on the controller, what a deploy checks before it touches
    anything: controller address and port, secrets, controller key, the ISO. Exit status 2 on any error."""
    cluster = validate_file(inventory)
    if file_only:
        return
    for fact in asyncio.run(preflight(cluster)):
        typer.echo(f"{inventory}: ok: {fact}")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"pvcctl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Install a whole PVC cluster on bare metal in one command."""


def main() -> None:
    """The console script: typer reports usage errors itself (exit 2); ours are caught here."""
    try:
        app()
    except PvcctlError as err:
        typer.echo(err.report(), err=True)
        sys.exit(err.exit_status)
    except KeyboardInterrupt:
        typer.echo("pvcctl: interrupted", err=True)
        sys.exit(130)
