"""From the inventory to what the nodes get: each node's install `Plan`, the ISO's `Seed`, and the ISO.

Pure functions of the resolved `Cluster` (plus the controller's public key), except `resolve_iso`,
which finds or builds the ISO the run serves and the live host key to pin for it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from core.errors import OperationError, UserError
from installer.plan import Network, Plan, PlanError
from inventory.model import Cluster, Node
from iso.inventory_seed import seed_for

# Where the live system keeps the target root image (iso/build.py's LIVE_TARGET_IMAGE).
DEFAULT_LIVE_IMAGE = "/run/live/medium/pvc/target.squashfs"
HOST_KEY_SUFFIX = ".hostkey.pub"


class PlanInputError(UserError):
    """The inventory makes a plan the installer would refuse."""


def live_image_path() -> str:
    try:
        from iso.build import LIVE_TARGET_IMAGE
    except ImportError:
        return DEFAULT_LIVE_IMAGE
    return str(LIVE_TARGET_IMAGE)


def plan_for(node: Node, controller_key: str) -> Plan:
    """The node's install plan; the controller's key is added so verify can log in as the deploy user."""
    install, net = node.install, node.install_network
    plan = Plan(
        hostname=node.fqdn,
        disk=install.disk,
        network=Network(
            interface=net.interface, mac=net.mac, vlan=net.vlan, bond_mode=net.bond_mode,
            bond_slaves=net.bond_slaves, address=str(net.address) if net.address else None,
            gateway=net.gateway, dns=install.dns,
        ),
        filesystem=install.filesystem,
        method=install.method,
        release=install.release,
        mirror=install.mirror,
        packages=install.packages,
        deploy_user=install.deploy_user,
        ssh_keys=tuple(dict.fromkeys([*install.ssh_keys, controller_key.strip()])),
        root_password_hash=install.root_password_hash.get_secret_value() if install.root_password_hash else None,
        timezone=install.timezone,
        image=live_image_path() if install.method == "image" else None,
        boot_mode=install.boot_mode,
    )
    try:
        plan.check()
    except PlanError as err:
        raise PlanInputError(f"node {node.hostname}: its install plan is wrong: {err}") from None
    return plan


async def _check_iso_url(url: str) -> None:
    """Before any BMC is touched: an ISO URL that does not answer here will not answer a BMC either."""
    import aiohttp

    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http, http.head(url) as head:
            if head.status != 200:
                raise UserError(f"controller.iso {url} answers HEAD with {head.status}; give a URL that serves the ISO")
    except (aiohttp.ClientError, TimeoutError) as err:
        raise UserError(f"controller.iso {url} cannot be reached from here ({err.__class__.__name__}); "
                        "check the URL and that its server runs") from None


@dataclass(frozen=True)
class IsoSource:
    """The ISO the BMCs boot: a local file served by the controller, or a URL elsewhere."""

    local: Path | None
    url: str | None
    host_keys: tuple[str, ...]  # the live system's host key(s) to pin

    @property
    def served(self) -> bool:
        return self.local is not None


def _read_host_key(path: Path, what: str) -> tuple[str, ...]:
    if not path.is_file():
        raise UserError(f"{what}: the live host key {path} is missing; the ISO build writes it beside the "
                        "ISO (pvcctl iso build), or put the live system's ssh_host_ed25519_key.pub there")
    lines = tuple(line.strip() for line in path.read_text().splitlines() if line.strip())
    if not lines:
        raise UserError(f"{path} is empty: it must hold the live system's SSH host public key")
    return lines


def named_iso(cluster: Cluster) -> IsoSource:
    """The ISO the inventory names (controller.iso), with its pinned host key beside it."""
    text = cluster.controller.iso or ""
    scheme = urlsplit(text).scheme
    if scheme in ("http", "https"):
        key = cluster.controller.state_dir / cluster.name / ("live" + HOST_KEY_SUFFIX)
        return IsoSource(None, text, _read_host_key(key, f"controller.iso {text}"))
    path = Path(text)
    if not path.is_absolute():
        path = cluster.source.parent / path
    if not path.is_file():
        raise UserError(f"controller.iso: {path} does not exist; build one with pvcctl iso build "
                        "or remove controller.iso to let deploy build it")
    return IsoSource(path, None, _read_host_key(Path(str(path) + HOST_KEY_SUFFIX), f"controller.iso {path}"))


class IsoBuildError(OperationError):
    """The inventory names no controller.iso and deploy could not build one."""


Say = Callable[..., None]  # say(message, **data): a line of the run's own story (its log, the terminal)


def _quiet(message: str, **data: Any) -> None:
    pass


async def resolve_iso(cluster: Cluster, controller_key: str, say: Say = _quiet) -> IsoSource:
    """The inventory's ISO, or one built (and cached) by the ISO part with this run's seed; `say` tells
    what a build is doing, since it can take minutes."""
    if cluster.controller.iso:
        source = named_iso(cluster)
        if source.url is not None:
            await _check_iso_url(source.url)
        return source
    from iso.build import build_iso  # heavy: only when no ISO is named
    from iso.errors import BuildError

    seed = seed_for(cluster, controller_key)
    cluster_dir = cluster.controller.state_dir / cluster.name
    cache, out = cluster_dir / "iso-cache", cluster_dir / "pvc-live.iso"
    install = cluster.nodes[0].install
    say(f"building the live ISO {out} (the inventory names no controller.iso): stages already in {cache} are "
        "reused; a first build fetches Debian packages and takes minutes", iso=str(out), cache=str(cache))
    started = time.monotonic()
    try:
        report = await asyncio.to_thread(build_iso, cache, out, seed=seed, mirror=install.mirror,
                                         release=install.release, proxy=install.apt_proxy)
    except UserError as err:  # not root, a build tool missing, a bad mirror: one line already
        raise UserError(f"cannot build the live ISO (the inventory names no controller.iso): {err}") from None
    except BuildError as err:  # its message carries the tail of the tool's output: keep the first and last line
        lines = [line.strip() for line in str(err.args[0]).splitlines() if line.strip()]
        what = lines[0].rstrip(":") + (f": {lines[-1]}" if len(lines) > 1 else "")
        hint = "; ".join(h for h in (err.hint, "or build one with pvcctl iso build and name it in controller.iso")
                         if h)
        raise IsoBuildError(f"building the live ISO failed at {err.phase or 'a build step'}: {what}",
                            hint=hint) from None
    except OSError as err:
        where = f": {err.filename}" if err.filename else ""
        raise IsoBuildError(f"building the live ISO in {cache} failed: {err.strerror or err}{where}",
                            hint=f"check that {cache} is a writable directory with room") from None
    built = [stage.name for stage in report.stages if not stage.cached]
    reused = [stage.name for stage in report.stages if stage.cached]
    say(f"live ISO ready in {time.monotonic() - started:.1f}s: {report.iso} (built: {', '.join(built) or 'nothing'}; "
        f"from the cache: {', '.join(reused) or 'nothing'}); live host key {report.host_key_fingerprint}",
        iso=report.iso, stages={stage.name: {"cached": stage.cached, "seconds": stage.seconds}
                                for stage in report.stages})
    return IsoSource(Path(report.iso), None, (report.host_key_public.strip(),))


class ControllerAddressError(UserError):
    """The controller URL names an address this machine does not have: nothing could reach it."""


def check_controller_address(cluster: Cluster) -> None:
    """Before any BMC is touched: controller.url must be an address of this machine."""
    import socket

    url = cluster.controller.url
    host = urlsplit(url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        raise ControllerAddressError(f"controller.url {url}: cannot resolve {host!r}; write an address "
                                     "of this machine that the BMCs and nodes can reach") from None
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as probe:
            try:
                probe.bind((address[0], 0))
                return
            except OSError:
                continue
    raise ControllerAddressError(f"controller.url {url}: {host} is not an address of this machine, so no BMC "
                                 "or node could reach the controller; write one of this machine's addresses")
