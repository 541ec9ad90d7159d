"""`pvcctl bmc`: operate the BMCs of one node or of every node in an inventory.

    pvcctl bmc info --inventory cluster.yml                 # every node, at once
    pvcctl bmc power off --inventory cluster.yml --node hv2
    pvcctl bmc media insert http://10.0.0.5:8740/pvc.iso --url https://10.0.1.1 --user root \\
        --password-env BMC_PASSWORD --ca-bundle bmc-ca.pem

A password is never taken on the command line: --password-env or --password-file.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from controller.bmc.endpoint import BmcEndpoint
from controller.bmc.errors import BmcTargetError
from controller.bmc.redfish import RedfishBmc
from controller.bmc.transport import new_http_session
from core.errors import PvcctlError

app = typer.Typer(no_args_is_help=True, help="Operate BMCs over Redfish.")

Action = Callable[[RedfishBmc], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Target:
    node: str
    endpoint: BmcEndpoint


class PowerAction(enum.StrEnum):
    on = "on"
    off = "off"
    restart = "restart"
    status = "status"


class MediaAction(enum.StrEnum):
    insert = "insert"
    eject = "eject"
    status = "status"


class BootAction(enum.StrEnum):
    cd = "cd"
    disk = "disk"
    status = "status"


@dataclass(frozen=True)
class TargetOptions:
    inventory: Path | None
    nodes: list[str]
    url: str | None
    user: str | None
    password_env: str | None
    password_file: Path | None
    ca_bundle: Path | None
    fingerprint: str | None
    insecure: bool
    as_json: bool
    verbose: bool


Inventory = Annotated[Path | None, typer.Option("--inventory", "-i", help="Inventory file: all its nodes.")]
Nodes = Annotated[list[str] | None, typer.Option("--node", "-n", help="Only this inventory node (repeatable).")]
Url = Annotated[str | None, typer.Option("--url", help="One BMC: https://host[:port].")]
User = Annotated[str | None, typer.Option("--user", "-u", help="BMC user name (with --url).")]
PasswordEnv = Annotated[str | None, typer.Option("--password-env", help="Environment variable holding the password.")]
PasswordFile = Annotated[Path | None, typer.Option("--password-file", help="File whose first line is the password.")]
CaBundle = Annotated[Path | None, typer.Option("--ca-bundle", help="PEM CA bundle that signs the BMC certificate.")]
Fingerprint = Annotated[str | None, typer.Option("--fingerprint", help="Pinned SHA-256 certificate fingerprint.")]
Insecure = Annotated[bool, typer.Option("--insecure", help="Do not verify the BMC certificate (warns).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Log every retry.")]


def _password(opts: TargetOptions) -> SecretStr:
    if bool(opts.password_env) == bool(opts.password_file):
        raise BmcTargetError("give the BMC password with exactly one of --password-env VAR or --password-file PATH")
    if opts.password_env:
        value = os.environ.get(opts.password_env)
        if not value:
            raise BmcTargetError(f"environment variable {opts.password_env} (the BMC password) is not set")
        return SecretStr(value)
    assert opts.password_file is not None
    try:
        lines = opts.password_file.read_text().splitlines()
    except OSError as err:
        raise BmcTargetError(f"password file {opts.password_file}: {err.strerror}") from None
    if not lines or not lines[0].strip():
        raise BmcTargetError(f"password file {opts.password_file} is empty")
    return SecretStr(lines[0].strip())


def resolve_targets(opts: TargetOptions) -> list[Target]:
    """The BMCs the command acts on, or a BmcTargetError saying what to give."""
    if opts.inventory and opts.url:
        raise BmcTargetError("give either --inventory FILE or --url https://host, not both")
    if opts.inventory:
        if opts.user or opts.password_env or opts.password_file or opts.ca_bundle or opts.fingerprint or opts.insecure:
            raise BmcTargetError("with --inventory, BMC credentials and TLS settings come from the inventory")
        from inventory.load import load_inventory

        cluster = load_inventory(opts.inventory)
        known = [n.hostname for n in cluster.nodes]
        unknown = [n for n in opts.nodes if n not in known]
        if unknown:
            raise BmcTargetError(f"no node {', '.join(unknown)} in {opts.inventory}; its nodes: {', '.join(known)}")
        chosen = [n for n in cluster.nodes if not opts.nodes or n.hostname in opts.nodes]
        return [Target(n.hostname, BmcEndpoint.from_config(n.bmc)) for n in chosen]
    if not opts.url:
        raise BmcTargetError("say which BMCs: --inventory FILE [--node NAME], or --url https://host --user NAME")
    if opts.nodes:
        raise BmcTargetError("--node picks nodes of an inventory; with --url there is one BMC")
    if not opts.user:
        raise BmcTargetError(f"--user is required with --url {opts.url}")
    endpoint = BmcEndpoint(opts.url, opts.user, _password(opts), verify_tls=not opts.insecure,
                           ca_bundle=opts.ca_bundle, fingerprint=opts.fingerprint)
    return [Target("", endpoint)]


async def _run_one(target: Target, action: Action, http: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"node": target.node or "-", "bmc": target.endpoint.url}
    try:
        async with RedfishBmc(target.endpoint, session=http, node=target.node) as bmc:
            row |= {"ok": True, **await action(bmc)}
    except PvcctlError as err:
        row |= {"ok": False, "error": str(err)}
    return row


async def _run_all(targets: list[Target], action: Action) -> list[dict[str, Any]]:
    async with new_http_session() as http:
        return list(await asyncio.gather(*(_run_one(t, action, http) for t in targets)))


def _print(rows: list[dict[str, Any]], as_json: bool, title: str) -> None:
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        columns = list(dict.fromkeys(k for row in rows for k in row if k not in ("ok", "error")))
        table = Table(title=title)
        for column in columns:
            table.add_column(column)
        for row in rows:
            if row.get("ok"):
                table.add_row(*(_cell(row.get(c, "")) for c in columns))
        if table.row_count:
            Console(width=200).print(table)
    for row in rows:
        if not row.get("ok"):
            typer.echo(f"pvcctl: {row['error']}", err=True)
    if any(not row.get("ok") for row in rows):
        raise typer.Exit(1)


def _cell(value: Any) -> str:
    return ", ".join(str(v) for v in value) if isinstance(value, list | tuple) else str(value)


def _execute(opts: TargetOptions, action: Action, title: str, *, announce: str = "") -> None:
    logging.basicConfig(level=logging.INFO if opts.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(message)s")
    targets = resolve_targets(opts)
    for target in targets if announce else []:
        # A destructive step says what it acts on before it acts.
        typer.echo(f"pvcctl: {announce} node {target.node or '-'} (BMC {target.endpoint.url}) now", err=True)
    _print(asyncio.run(_run_all(targets, action)), opts.as_json, title)


@app.command()
def info(inventory: Inventory = None, node: Nodes = None, url: Url = None, user: User = None,
         password_env: PasswordEnv = None, password_file: PasswordFile = None, ca_bundle: CaBundle = None,
         fingerprint: Fingerprint = None, insecure: Insecure = False, as_json: AsJson = False,
         verbose: Verbose = False) -> None:
    """Identity of each BMC: vendor, model, firmware, serial, MACs, power, boot mode, profile."""
    opts = TargetOptions(inventory, node or [], url, user, password_env, password_file, ca_bundle, fingerprint,
                         insecure, as_json, verbose)

    async def action(bmc: RedfishBmc) -> dict[str, Any]:
        return (await bmc.identity()).as_dict()

    _execute(opts, action, "BMC identity")


@app.command()
def power(action_name: Annotated[PowerAction, typer.Argument(metavar="on|off|restart|status")],
          inventory: Inventory = None, node: Nodes = None, url: Url = None, user: User = None,
          password_env: PasswordEnv = None, password_file: PasswordFile = None, ca_bundle: CaBundle = None,
          fingerprint: Fingerprint = None, insecure: Insecure = False, as_json: AsJson = False,
          verbose: Verbose = False) -> None:
    """Power on, force off, force restart, or show the power state; each read back."""
    opts = TargetOptions(inventory, node or [], url, user, password_env, password_file, ca_bundle, fingerprint,
                         insecure, as_json, verbose)
    change = {PowerAction.on: "power_on", PowerAction.off: "force_off", PowerAction.restart: "force_restart"}

    async def action(bmc: RedfishBmc) -> dict[str, Any]:
        if action_name in change:
            await getattr(bmc, change[action_name])()
        return {"power": (await bmc.power_state()).value}

    announce = {PowerAction.off: "powering off (force)", PowerAction.restart: "restarting (force)"}
    _execute(opts, action, "BMC power", announce=announce.get(action_name, ""))


@app.command()
def media(action_name: Annotated[MediaAction, typer.Argument(metavar="insert|eject|status")],
          image_url: Annotated[str | None, typer.Argument(metavar="[URL]", help="Image URL for insert.")] = None,
          inventory: Inventory = None, node: Nodes = None, url: Url = None, user: User = None,
          password_env: PasswordEnv = None, password_file: PasswordFile = None, ca_bundle: CaBundle = None,
          fingerprint: Fingerprint = None, insecure: Insecure = False, as_json: AsJson = False,
          verbose: Verbose = False) -> None:
    """Insert an image URL into the virtual CD (ejecting what is there), eject all, or show."""
    opts = TargetOptions(inventory, node or [], url, user, password_env, password_file, ca_bundle, fingerprint,
                         insecure, as_json, verbose)
    if (action_name is MediaAction.insert) != (image_url is not None):
        raise BmcTargetError("give an image URL with `media insert URL`, and only with insert")

    async def action(bmc: RedfishBmc) -> dict[str, Any]:
        if action_name is MediaAction.insert:
            assert image_url is not None
            return (await bmc.insert_media(image_url)).as_dict()
        if action_name is MediaAction.eject:
            await bmc.eject_all_media()
        return (await bmc.media_status()).as_dict()

    _execute(opts, action, "BMC virtual media")


@app.command()
def boot(action_name: Annotated[BootAction, typer.Argument(metavar="cd|disk|status")],
         inventory: Inventory = None, node: Nodes = None, url: Url = None, user: User = None,
         password_env: PasswordEnv = None, password_file: PasswordFile = None, ca_bundle: CaBundle = None,
         fingerprint: Fingerprint = None, insecure: Insecure = False, as_json: AsJson = False,
         verbose: Verbose = False) -> None:
    """Boot once from the virtual CD (UEFI), boot from disk, or show the boot override."""
    opts = TargetOptions(inventory, node or [], url, user, password_env, password_file, ca_bundle, fingerprint,
                         insecure, as_json, verbose)

    async def action(bmc: RedfishBmc) -> dict[str, Any]:
        if action_name is BootAction.cd:
            return (await bmc.set_boot_once_cd()).as_dict()
        if action_name is BootAction.disk:
            return (await bmc.set_boot_disk()).as_dict()
        return (await bmc.boot_status()).as_dict()

    _execute(opts, action, "BMC boot override")
