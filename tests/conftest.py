"""Session fixtures shared across parts: the target image and the live ISO, each built once.

Both are cached by content under /var/cache/pvcctl-test/, so later runs on the same machine
reuse them; the Debian mirror is this machine's own (read from its apt sources at run time).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from iso.build import BuildReport

TEST_CACHE = Path("/var/cache/pvcctl-test")


@pytest.fixture(scope="session")
def debian_mirror() -> str:
    """The Debian archive URL this machine's apt uses."""
    from core.mirror import host_mirrors

    return host_mirrors().debian


@pytest.fixture(scope="session")
def target_image(debian_mirror: str) -> Path:
    """A squashfs of the installed PVC base system's root (iso.build.build_target_image)."""
    from iso.build import build_target_image

    return build_target_image(TEST_CACHE / "iso", mirror=debian_mirror)


@pytest.fixture(scope="session")
def live_iso(debian_mirror: str) -> BuildReport:
    """The live installer ISO without a seed (tests give it theirs with write_iso_with_seed)."""
    from iso.build import build_iso

    cache = TEST_CACHE / "iso"
    return build_iso(cache, cache / "pvc-live-test.iso", mirror=debian_mirror)
