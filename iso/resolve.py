"""The ISO a deploy serves: the one the inventory names (with the live host key beside it), or one
built (and cached) for the cluster with this run's seed; and the live host key to pin for it.

A build's failure is translated here into one line a person can act on: the tool's first and last
line of output, the phase it failed in, and what to do.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from core.errors import OperationError, UserError
from inventory.model import Cluster
from inventory.state import cluster_dir
from iso.inventory_seed import seed_for

HOST_KEY_SUFFIX = ".hostkey.pub"  # beside an ISO: the live system's host public key (the build writes it)


async def _check_iso_url(url: str) -> None:
    """Before any BMC is touched: an ISO URL that does not answer here will not answer a BMC either."""
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
        key = cluster_dir(cluster) / ("live" + HOST_KEY_SUFFIX)
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


async def check_iso(cluster: Cluster) -> str:
    """Before anything is made or touched: the ISO the inventory names is there (and answers, for a
    URL), or one can be built here (root, the build tools, a mirror). Returns what will be served."""
    if cluster.controller.iso:
        source = named_iso(cluster)
        if source.url is not None:
            await _check_iso_url(source.url)
        return f"the ISO {source.local or source.url}"
    from core.mirror import resolve_mirrors
    from iso.tools import require_root, require_tools

    require_root("building the live ISO (the inventory names no controller.iso)")
    require_tools()
    mirrors = resolve_mirrors(cluster.nodes[0].install.mirror)
    return f"a live ISO built here from {mirrors.debian} (cached in {cluster_dir(cluster) / 'iso-cache'})"


async def resolve_iso(cluster: Cluster, controller_key: str, say: Say = _quiet) -> IsoSource:
    """The inventory's ISO, or one built (and cached) by the ISO part with this run's seed; `say` tells
    what a build is doing, since it can take minutes."""
    if cluster.controller.iso:
        return named_iso(cluster)  # a URL's HEAD was checked by check_iso, before the run began
    from iso.build import build_iso  # heavy: only when no ISO is named
    from iso.errors import BuildError

    seed = seed_for(cluster, controller_key)
    directory = cluster_dir(cluster)
    cache, out = directory / "iso-cache", directory / "pvc-live.iso"
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
