"""The Debian mirror this machine's apt uses: pvcctl's default mirror, read at run time.

One reader of apt's sources serves the whole of pvcctl: `iso.mirror` (it also finds the security
archive); here it only answers "which mirror, if any".
"""

from __future__ import annotations

from pathlib import Path

from iso.errors import IsoUserError
from iso.mirror import APT_DIR, host_mirrors


def host_debian_mirror(apt_dir: Path = APT_DIR) -> str | None:
    """The Debian archive URL in apt's sources (deb822 or one-line), or None when there is none."""
    try:
        return host_mirrors(apt_dir).debian.rstrip("/")
    except IsoUserError:
        return None
