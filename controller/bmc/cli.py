"""`pvcctl bmc`: operate the BMCs of one node or of every node in an inventory.

    pvcctl bmc info --inventory cluster.yml                 # every node, at once
    pvcctl bmc power off --inventory cluster.yml --node hv2
    pvcctl bmc media insert http://10.0.0.5:8740/pvc.iso --url https://10.0.1.1 --user root \\
        --password-env BMC_PASSWORD --ca-bundle bmc-ca.pem

A password is never taken on the command line: --password-env or --password-file. Powering off,
restarting or ejecting media on more than one node, or on a node a deploy of the cluster installed,
asks first (once, naming the nodes) unless --yes; without a terminal to ask on, it refuses. A BMC
given by --url that has several systems (a multi-node chassis) acts on the one --system names.
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
from controller.bmc.secure_boot import turn_secure_boot
from controller.bmc.transport import new_http_session
from core.errors import PvcctlError
from inventory.completion import complete_nodes

app = typer.Typer(no_args_is_help=True,
                  help="Operate nodes' BMCs over Redfish: identity, power, media, boot, Secure Boot.")

Action = Callable[[RedfishBmc], Awaitable[dict[str, Any]]]


class SystemChoiceError(BmcTargetError):
    """A BMC given by --url has several systems and none was chosen."""


@dataclass(frozen=True)
class Target:
    node: str  # "" for a BMC given by --url
    endpoint: BmcEndpoint
    system: str | None = None  # --system: which of the BMC's systems
    installed: bool = False  # a deploy of the node's cluster recorded it as installed


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


class SecureBootAction(enum.StrEnum):
    on = "on"
    off = "off"
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
    system: str | None = None
    yes: bool = False


Inventory = Annotated[Path | None, typer.Option(
    "--inventory", "-i", metavar="FILE", help="Inventory file: act on its nodes.")]
Nodes = Annotated[list[str] | None, typer.Option(
    "--node", "-n", metavar="NAME", help="Only this node of the inventory (repeatable).",
    autocompletion=complete_nodes)]
Url = Annotated[str | None, typer.Option("--url", metavar="URL", help="One BMC: https://host[:port].")]
System = Annotated[str | None, typer.Option(
    "--system", metavar="ID", help="With --url: the system to act on when the BMC has several.")]
User = Annotated[str | None, typer.Option("--user", "-u", metavar="NAME", help="BMC user name (with --url).")]
PasswordEnv = Annotated[str | None, typer.Option(
    "--password-env", metavar="VAR", help="Environment variable holding the password.")]
PasswordFile = Annotated[Path | None, typer.Option(
    "--password-file", metavar="FILE", help="File whose first line is the password.")]
CaBundle = Annotated[Path | None, typer.Option(
    "--ca-bundle", metavar="FILE", help="PEM CA bundle that signs the BMC certificate.")]
Fingerprint = Annotated[str | None, typer.Option(
    "--fingerprint", metavar="SHA256", help="Pinned SHA-256 fingerprint of the BMC certificate.")]
Insecure = Annotated[bool, typer.Option("--insecure", help="Do not verify the BMC certificate (warns).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Log every retry.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask first (several or installed nodes).")]


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
        if opts.system:
            raise BmcTargetError("--system picks one system of a BMC given by --url")
        from inventory.load import load_inventory

        cluster = load_inventory(opts.inventory)
        known = [n.hostname for n in cluster.nodes]
        unknown = [n for n in opts.nodes if n not in known]
        if unknown:
            raise BmcTargetError(f"no node {', '.join(unknown)} in {opts.inventory}; its nodes: {', '.join(known)}")
        chosen = [n for n in cluster.nodes if not opts.nodes or n.hostname in opts.nodes]
        installed = _installed(cluster)
        return [Target(n.hostname, BmcEndpoint.from_config(n.bmc), installed=n.hostname in installed) for n in chosen]
    if not opts.url:
        raise BmcTargetError("say which BMCs: --inventory FILE [--node NAME], or --url https://host --user NAME")
    if opts.nodes:
        raise BmcTargetError("--node picks nodes of an inventory; with --url there is one BMC")
    if not opts.user:
        raise BmcTargetError(f"--user is required with --url {opts.url}")
    endpoint = BmcEndpoint(opts.url, opts.user, _password(opts), verify_tls=not opts.insecure,
                           ca_bundle=opts.ca_bundle, fingerprint=opts.fingerprint)
    return [Target("", endpoint, opts.system)]


def _installed(cluster: Any) -> set[str]:
    """The nodes a deploy of `cluster` recorded as installed. Only read: a cluster no deploy has run
    for has no state directory, and asking about its BMCs must not make one."""
    from inventory.state import ClusterState, cluster_dir

    directory = cluster_dir(cluster)
    return set(ClusterState(directory, cluster).installed()) if directory.is_dir() else set()


def _consent(targets: list[Target], what: str, yes: bool) -> None:
    """Ask once before `what` acts on several nodes or on an installed one; refuse when nobody can answer."""
    if yes or not (len(targets) > 1 or any(t.installed for t in targets)):
        return
    names = ", ".join(f"{t.node or t.endpoint.url}{' (installed)' if t.installed else ''}" for t in targets)
    if not sys.stdin.isatty():
        raise BmcTargetError(f"{what} {len(targets)} node(s): {names}: nothing done; there is no terminal to "
                             "ask on, so give --yes to go ahead")
    if not typer.confirm(f"pvcctl: {what} {len(targets)} node(s): {names}. Go ahead?", err=True):
        typer.echo("pvcctl: nothing done", err=True)
        raise typer.Exit(1)


async def _act(target: Target, action: Action, http: Any, *, every_system: bool) -> list[dict[str, Any]]:
    """`action` on the target's system. A BMC given by --url with several systems and no --system:
    every system for `every_system` (reading), else a SystemChoiceError listing them."""
    base: dict[str, Any] = {"node": target.node or "-", "bmc": target.endpoint.url}
    async with RedfishBmc(target.endpoint, session=http, node=target.node, system_id=target.system) as bmc:
        systems = bmc.system_ids
        several = not target.node and len(systems) > 1
        if several and target.system is None and not every_system:
            raise SystemChoiceError(f"the BMC at {target.endpoint.url} has {len(systems)} systems: "
                                    f"{', '.join(systems)}; choose one with --system ID")
        if not several:
            return [base | {"ok": True, **await action(bmc)}]
        chosen = target.system or systems[0]
        rows = [base | {"system": chosen, "ok": True, **await action(bmc)}]
    for other in systems[1:] if target.system is None else ():
        async with RedfishBmc(target.endpoint, session=http, node=target.node, system_id=other) as bmc:
            rows.append(base | {"system": other, "ok": True, **await action(bmc)})
    return rows


async def _run_one(target: Target, action: Action, http: Any, *, every_system: bool) -> list[dict[str, Any]]:
    try:
        return await _act(target, action, http, every_system=every_system)
    except SystemChoiceError:
        raise
    except PvcctlError as err:
        return [{"node": target.node or "-", "bmc": target.endpoint.url, "ok": False, "error": str(err)}]


async def _run_all(targets: list[Target], action: Action, *, every_system: bool = False) -> list[dict[str, Any]]:
    async with new_http_session() as http:
        found = await asyncio.gather(*(_run_one(t, action, http, every_system=every_system) for t in targets))
    return [row for rows in found for row in rows]


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
        if table.row_count:  # a pipe gets it whole, never squashed (as pvcctl status does)
            (Console() if sys.stdout.isatty() else Console(width=400)).print(table)
    for row in rows:
        if not row.get("ok"):
            typer.echo(f"pvcctl: {row['error']}", err=True)
    if any(not row.get("ok") for row in rows):
        raise typer.Exit(1)


def _cell(value: Any) -> str:
    if isinstance(value, dict) and "summary" in value:
        return str(value["summary"])  # a nested status (Secure Boot): its one-line form; --json has it all
    return ", ".join(str(v) for v in value) if isinstance(value, list | tuple) else str(value)


def _execute(opts: TargetOptions, action: Action, title: str, *, announce: str = "", ask: str = "",
             every_system: bool = False) -> None:
    """Resolve the targets, ask first for `ask` (a destructive step), run `action` on each, print."""
    logging.basicConfig(level=logging.INFO if opts.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(message)s")
    targets = resolve_targets(opts)
    if ask:
        _consent(targets, ask, opts.yes)
    for target in targets if announce else []:
        # A destructive step says what it acts on before it acts.
        system = f", system {target.system}" if target.system else ""
        typer.echo(f"pvcctl: {announce} node {target.node or '-'} (BMC {target.endpoint.url}{system}) now", err=True)
    _print(asyncio.run(_run_all(targets, action, every_system=every_system)), opts.as_json, title)


def _options(inventory: Path | None, node: list[str] | None, url: str | None, user: str | None,
             password_env: str | None, password_file: Path | None, ca_bundle: Path | None, fingerprint: str | None,
             insecure: bool, as_json: bool, verbose: bool, system: str | None, yes: bool = False) -> TargetOptions:
    return TargetOptions(inventory, node or [], url, user, password_env, password_file, ca_bundle, fingerprint,
                         insecure, as_json, verbose, system, yes)


@app.command(epilog="Examples:\n\n  pvcctl bmc info -i cluster.yml\n\n"
                    "  pvcctl bmc info --url https://10.0.1.1 -u root --password-env BMC_PW")
def info(inventory: Inventory = None, node: Nodes = None, url: Url = None, system: System = None, user: User = None,
         password_env: PasswordEnv = None, password_file: PasswordFile = None, ca_bundle: CaBundle = None,
         fingerprint: Fingerprint = None, insecure: Insecure = False, as_json: AsJson = False,
         verbose: Verbose = False) -> None:
    """Show each BMC's identity: vendor, model, firmware, serial, MACs, power, boot mode, Secure Boot, profile.

    A BMC given by --url with several systems shows each of them, unless --system picks one.
    """
    opts = _options(inventory, node, url, user, password_env, password_file, ca_bundle, fingerprint, insecure,
                    as_json, verbose, system)

    async def action(bmc: RedfishBmc) -> dict[str, Any]:
        return (await bmc.identity()).as_dict()

    _execute(opts, action, "BMC identity", every_system=True)


@app.command(epilog="Examples:\n\n  pvcctl bmc power status -i cluster.yml\n\n"
                    "  pvcctl bmc power off -i cluster.yml --node hv2")
def power(action_name: Annotated[PowerAction, typer.Argument(
              metavar="on|off|restart|status", help="On, off (forced), restart (forced) or status.")],
          inventory: Inventory = None, node: Nodes = None, url: Url = None, system: System = None,
          user: User = None, password_env: PasswordEnv = None, password_file: PasswordFile = None,
          ca_bundle: CaBundle = None, fingerprint: Fingerprint = None, insecure: Insecure = False,
          yes: Yes = False, as_json: AsJson = False, verbose: Verbose = False) -> None:
    """Power nodes on, force them off, force a restart, or show their power state.

    Each change is read back. Off and restart ask first on several nodes or an installed one (--yes: no).
    """
    opts = _options(inventory, node, url, user, password_env, password_file, ca_bundle, fingerprint, insecure,
                    as_json, verbose, system, yes)
    change = {PowerAction.on: "power_on", PowerAction.off: "force_off", PowerAction.restart: "force_restart"}

    async def action(bmc: RedfishBmc) -> dict[str, Any]:
        if action_name in change:
            await getattr(bmc, change[action_name])()
        return {"power": (await bmc.power_state()).value}

    announce = {PowerAction.off: "powering off (force)", PowerAction.restart: "restarting (force)"}
    ask = {PowerAction.off: "power off (force)", PowerAction.restart: "restart (force)"}
    _execute(opts, action, "BMC power", announce=announce.get(action_name, ""), ask=ask.get(action_name, ""))


@app.command(epilog="Examples:\n\n  pvcctl bmc media status -i cluster.yml\n\n"
                    "  pvcctl bmc media insert http://10.0.0.5:8740/pvc.iso -i cluster.yml -n hv1")
def media(action_name: Annotated[MediaAction, typer.Argument(
              metavar="insert|eject|status", help="Insert URL, eject all, or status.")],
          image_url: Annotated[str | None, typer.Argument(metavar="[URL]", help="Image URL for insert.")] = None,
          inventory: Inventory = None, node: Nodes = None, url: Url = None, system: System = None,
          user: User = None, password_env: PasswordEnv = None, password_file: PasswordFile = None,
          ca_bundle: CaBundle = None, fingerprint: Fingerprint = None, insecure: Insecure = False,
          yes: Yes = False, as_json: AsJson = False, verbose: Verbose = False) -> None:
    """Insert an image URL into the virtual CD, eject all media, or show what is inserted.

    Insert ejects what is there first. Eject asks first on several nodes or an installed one (--yes: no).
    """
    opts = _options(inventory, node, url, user, password_env, password_file, ca_bundle, fingerprint, insecure,
                    as_json, verbose, system, yes)
    if (action_name is MediaAction.insert) != (image_url is not None):
        raise BmcTargetError("give an image URL with `media insert URL`, and only with insert")

    async def action(bmc: RedfishBmc) -> dict[str, Any]:
        if action_name is MediaAction.insert:
            assert image_url is not None
            return (await bmc.insert_media(image_url)).as_dict()
        if action_name is MediaAction.eject:
            await bmc.eject_all_media()
        return (await bmc.media_status()).as_dict()

    _execute(opts, action, "BMC virtual media", ask="eject the media of" if action_name is MediaAction.eject else "")


@app.command(epilog="Examples:\n\n  pvcctl bmc boot status -i cluster.yml\n\n"
                    "  pvcctl bmc boot cd -i cluster.yml --node hv3")
def boot(action_name: Annotated[BootAction, typer.Argument(
             metavar="cd|disk|status", help="Boot once from CD, boot from disk, or status.")],
         inventory: Inventory = None, node: Nodes = None, url: Url = None, system: System = None,
         user: User = None, password_env: PasswordEnv = None, password_file: PasswordFile = None,
         ca_bundle: CaBundle = None, fingerprint: Fingerprint = None, insecure: Insecure = False,
         as_json: AsJson = False, verbose: Verbose = False) -> None:
    """Boot once from the virtual CD (UEFI), boot from disk, or show the boot override."""
    opts = _options(inventory, node, url, user, password_env, password_file, ca_bundle, fingerprint, insecure,
                    as_json, verbose, system)

    async def action(bmc: RedfishBmc) -> dict[str, Any]:
        if action_name is BootAction.cd:
            return (await bmc.set_boot_once_cd()).as_dict()
        if action_name is BootAction.disk:
            return (await bmc.set_boot_disk()).as_dict()
        return (await bmc.boot_status()).as_dict()

    _execute(opts, action, "BMC boot override")


@app.command(epilog="Examples:\n\n  pvcctl bmc secureboot status -i cluster.yml\n\n"
                    "  pvcctl bmc secureboot on -i cluster.yml --node hv3")
def secureboot(action_name: Annotated[SecureBootAction, typer.Argument(
                   metavar="on|off|status", help="Turn UEFI Secure Boot on or off, or show it.")],
               inventory: Inventory = None, node: Nodes = None, url: Url = None, system: System = None,
               user: User = None, password_env: PasswordEnv = None, password_file: PasswordFile = None,
               ca_bundle: CaBundle = None, fingerprint: Fingerprint = None, insecure: Insecure = False,
               yes: Yes = False, as_json: AsJson = False, verbose: Verbose = False) -> None:
    """Show UEFI Secure Boot (the system's Redfish SecureBoot resource), or turn it on or off.

    A change takes effect at a restart: a node that is on is force-restarted (announced), then read back.

    A node that is off takes it at its next power-on. On and off ask first on several nodes or an installed one.
    """
    opts = _options(inventory, node, url, user, password_env, password_file, ca_bundle, fingerprint, insecure,
                    as_json, verbose, system, yes)
    if action_name is SecureBootAction.status:
        async def show(bmc: RedfishBmc) -> dict[str, Any]:
            return (await bmc.secure_boot_status()).as_dict()

        _execute(opts, show, "BMC Secure Boot")
        return
    word = action_name.value
    _execute(opts, lambda bmc: turn_secure_boot(bmc, action_name is SecureBootAction.on), "BMC Secure Boot",
             announce=f"setting Secure Boot {word} (and force-restarting it if it is on) on",
             ask=f"set Secure Boot {word} and force-restart")

