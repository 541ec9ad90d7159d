"""The Debian mirror this machine's apt uses: pvcctl's default mirror, read at run time."""

from __future__ import annotations

import re
from pathlib import Path

APT_DIR = Path("/etc/apt")


def host_debian_mirror(apt_dir: Path = APT_DIR) -> str | None:
    """The first Debian archive URL in apt's sources (deb822 `.sources` or one-line `.list`),
    skipping the security archive; None when there is none."""
    for url in _source_urls(apt_dir):
        if "security" not in url and url.rstrip("/").endswith("debian"):
            return url.rstrip("/")
    return None


def _source_urls(apt_dir: Path) -> list[str]:
    urls: list[str] = []
    files = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*"))]
    for path in files:
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError):
            continue
        if path.name.endswith(".sources"):
            urls += [u for m in re.finditer(r"^URIs:\s*(.+)$", text, re.M) for u in m.group(1).split()]
        elif path.name.endswith(".list"):
            urls += re.findall(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)", text, re.M)
    return [u for u in urls if u.startswith(("http://", "https://"))]
