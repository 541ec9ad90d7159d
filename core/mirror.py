"""Which Debian mirror to use: given, or read at run time from this machine's apt sources.

Nothing here names a mirror host: the default is whatever this machine's apt already uses. One reader
of apt's sources serves the whole of pvcctl: the ISO build (which also wants the security archive) and
the inventory's default mirror.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from core.errors import UserError

APT_DIR = Path("/etc/apt")


class MirrorError(UserError):
    """No usable Debian mirror: none given and none in apt's sources, or one that is not a URL."""


@dataclass(frozen=True)
class Mirrors:
    """The archive to bootstrap from and, if known, the security archive for updates."""

    debian: str
    security: str | None = None


@dataclass(frozen=True)
class _Source:
    uri: str
    suites: tuple[str, ...]


def host_mirrors(apt_dir: Path = APT_DIR) -> Mirrors:
    """The Debian archive (and security archive) this machine's apt is configured with."""
    sources = _read_sources(apt_dir)
    debian = next((s.uri for s in sources if not _is_security(s)), None)
    if debian is None:
        raise MirrorError(
            f"no Debian mirror found in {apt_dir}/sources.list or sources.list.d/; give one with --mirror URL"
        )
    security = next((s.uri for s in sources if _is_security(s)), None)
    return Mirrors(debian=debian, security=security)


def resolve_mirrors(mirror: str | None, apt_dir: Path = APT_DIR) -> Mirrors:
    """The given mirror (with the host's security archive if any), or the host's own."""
    if mirror is None:
        return host_mirrors(apt_dir)
    if not re.match(r"^https?://\S+$", mirror):
        raise MirrorError(f"mirror {mirror!r} is not an http(s) URL; write it like http://HOST/debian")
    try:
        security = host_mirrors(apt_dir).security
    except MirrorError:
        security = None
    return Mirrors(debian=mirror.rstrip("/"), security=security)


def host_debian_mirror(apt_dir: Path = APT_DIR) -> str | None:
    """The Debian archive URL in apt's sources (deb822 or one-line), or None when there is none."""
    try:
        return host_mirrors(apt_dir).debian.rstrip("/")
    except MirrorError:
        return None


def _is_security(source: _Source) -> bool:
    return any(s.endswith("-security") or "/updates" in s for s in source.suites)


def _read_sources(apt_dir: Path) -> list[_Source]:
    files = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*"))]
    found: list[_Source] = []
    for path in files:
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError):
            continue
        if path.name.endswith(".sources"):
            found += _deb822(text)
        elif path.name.endswith(".list"):
            found += _one_line(text)
    return [s for s in found if s.uri.startswith(("http://", "https://"))]


def _deb822(text: str) -> list[_Source]:
    found = []
    for stanza in re.split(r"\n\s*\n", text):
        fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.*)$", stanza, re.M))
        if "deb" not in fields.get("Types", "").split() or fields.get("Enabled", "yes") == "no":
            continue
        suites = tuple(fields.get("Suites", "").split())
        found += [_Source(uri.rstrip("/"), suites) for uri in fields.get("URIs", "").split()]
    return found


def _one_line(text: str) -> list[_Source]:
    found = []
    for line in text.splitlines():
        words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()  # drop [options]
        if len(words) >= 3 and words[0] == "deb":
            found.append(_Source(words[1].rstrip("/"), (words[2],)))
    return found
